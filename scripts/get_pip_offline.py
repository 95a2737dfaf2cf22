"""Offline stand-in for ansible-test's get-pip bootstrap: ensurepip, then pip install with the given arguments."""
import subprocess
import sys

DROPPED = {"--no-setuptools", "--no-wheel"}


def main():
    subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade"], check=True, stdout=subprocess.DEVNULL)
    args = [a for a in sys.argv[1:] if a not in DROPPED]
    subprocess.run([sys.executable, "-m", "pip", "install"] + args, check=True)


if __name__ == "__main__":
    main()
