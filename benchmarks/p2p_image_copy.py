"""Image copy between the lab nodes over the fabric: ours against the pipes it replaces, printed, never asserted.

Needs the lab up with the fabric role applied (make lab-up; ansible-playbook playbooks/fabric.yml).
Prints, for a >= 1 GiB image and for a re-copy where only the top layer changed:
  raw TCP of the same bytes (nc), docker save alone, docker load alone, the seed's pipe
  (docker save | pigz -1 | nc -> pigz -d | docker load), the community pipe (docker save | ssh docker load),
  skopeo (docker-daemon to docker-daemon, the head's docker socket forwarded over SSH: what skopeo can do between
  two nodes without a registry), p2p_image_copy as the serving role runs it (source_become: the sender reads the
  head's layer store; the module's own transfer time, and the whole ansible task, with the bytes it sent and left
  out), the same with export=docker_save (the sender streams docker save), and ours when already present.
Ours and the stages alone run --repeat times in turn (medians, with their range); commands on a node are timed
there, without the SSH from this machine.
Usage: .venv/bin/python benchmarks/p2p_image_copy.py [--size-mib 1024] [--repeat 3]
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lab"))
from labbench import WORKER_FABRIC, in_turn, piped, timed  # noqa: E402
from labkit import module, ssh  # noqa: E402  (the lab helpers tests/e2e uses)

HEAD, WORKER, HEAD_FABRIC = "spark-2959", "spark-ba63", "10.10.10.1"
IMAGE, IMAGE2 = "lab/bench:1", "lab/bench:2"
PORT = 19100
# skopeo between two nodes without a registry: the head's docker socket forwarded to the worker over SSH
SKOPEO = ("rm -f /tmp/head-docker.sock; ssh -N -o ExitOnForwardFailure=yes "
          "-L /tmp/head-docker.sock:/var/run/docker.sock 10.10.10.1 & forward=$!; "
          "for i in $(seq 100); do [ -S /tmp/head-docker.sock ] && break; sleep 0.1; done; "
          "skopeo copy -q --src-daemon-host unix:///tmp/head-docker.sock docker-daemon:%(image)s "
          "docker-daemon:%(image)s; rc=$?; kill $forward; rm -f /tmp/head-docker.sock; exit $rc")


def clean_worker(tags):
    ssh(WORKER, "docker image rm -f %s >/dev/null 2>&1; docker image prune -f >/dev/null" % " ".join(tags),
        check=False)


def ours(image, **options):
    start = time.monotonic()
    params = dict({"image": image, "source_host": HEAD_FABRIC, "source_become": True}, **options)
    rc, result = module(WORKER, "p2p_image_copy", params)
    if rc != 0:
        raise RuntimeError(result.get("msg"))
    return time.monotonic() - start, result


def fresh_worker(image, base_on_worker):
    """The worker without image, holding base_on_worker when given: where every copy starts."""
    clean_worker([image])
    if base_on_worker:
        ours(base_on_worker)


def measure(image, repeat, base_on_worker=None):
    """(archive size, figures, spreads): ours and the stages alone `repeat` times in turn (medians; spreads holds
    their min and max), the old pipes once."""
    clean_worker([IMAGE, IMAGE2])
    fresh_worker(image, base_on_worker)
    ssh(HEAD, "docker save %s > /tmp/bench.tar" % image)
    size = int(ssh(HEAD, "stat -c %s /tmp/bench.tar").stdout)
    ssh(HEAD, "scp -q /tmp/bench.tar %s:/tmp/bench.tar" % WORKER_FABRIC)
    tasks = []

    def copy():
        fresh_worker(image, base_on_worker)
        task, result = ours(image)
        tasks.append(task)
        return result["seconds"]

    def load():
        fresh_worker(image, base_on_worker)
        return timed(WORKER, "docker load -i /tmp/bench.tar >/dev/null")
    stages, spreads = in_turn(repeat, {"docker save alone": lambda: timed(HEAD, "docker save %s > /dev/null" % image),
                                       "docker load alone": load, "ours: transfer (module)": copy})
    figures = {"raw TCP (nc) of the same bytes": piped(
        "nc -l -p %d > /dev/null" % PORT, "nc -q 0 %s %d < /tmp/bench.tar" % (WORKER_FABRIC, PORT), PORT)}
    figures.update(stages)
    figures["ours: whole ansible task"] = statistics.median(tasks)
    spreads["ours: whole ansible task"] = (min(tasks), max(tasks))
    fresh_worker(image, base_on_worker)
    figures["seed: save | pigz -1 | nc -> load"] = piped(
        "nc -l -p %d | pigz -d | docker load >/dev/null" % (PORT + 1),
        "docker save %s | pigz -1 | nc -q 0 %s %d" % (image, WORKER_FABRIC, PORT + 1), PORT + 1)
    fresh_worker(image, base_on_worker)
    figures["community: save | ssh load"] = timed(HEAD, "docker save %s | ssh %s docker load >/dev/null"
                                                  % (image, WORKER_FABRIC))
    fresh_worker(image, base_on_worker)
    figures["skopeo: daemon -> daemon (socket over ssh)"] = timed(WORKER, SKOPEO % {"image": image})
    fresh_worker(image, base_on_worker)
    figures["ours, export=docker_save: transfer (module)"] = ours(image, export="docker_save")[1]["seconds"]
    fresh_worker(image, base_on_worker)
    result = ours(image)[1]
    figures["ours: already present (task)"] = ours(image)[0]
    figures["ours: MiB sent"] = result["bytes"] / 1048576.0
    figures["ours: MiB left out (held by the worker)"] = result["bytes_left_out"] / 1048576.0
    ssh(HEAD, "rm -f /tmp/bench.tar")
    ssh(WORKER, "rm -f /tmp/bench.tar")
    return size, figures, spreads


def report(title, size, figures, spreads):
    print("\n%s (%.0f MiB)" % (title, size / 1048576.0))
    fastest_old = min(figures["seed: save | pigz -1 | nc -> load"], figures["community: save | ssh load"])
    slowest_stage = max(figures["docker save alone"], figures["docker load alone"])
    for name, value in figures.items():
        if name.startswith("ours: MiB"):
            print("  %-42s %8.1f MiB" % (name, value))
            continue
        line = "  %-42s %8.2f s  %8.1f MiB/s" % (name, value, size / 1048576.0 / max(value, 1e-6))
        if name in spreads:
            line += "  median, %.2f to %.2f" % spreads[name]
        print(line)
    ours_s = figures["ours: transfer (module)"]
    print("  ours / faster old pipe: %.2f (target <= 0.8)" % (ours_s / fastest_old))
    print("  ours / slowest unavoidable stage: %.2f (target <= 1.1)" % (ours_s / slowest_stage))
    print("  already present: %.2f s (target < 2 s)" % figures["ours: already present (task)"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3, help="copies and stages alone, in turn (medians)")
    args = parser.parse_args()
    os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    ssh(HEAD, "printf 'FROM lab/busybox\\nRUN dd if=/dev/urandom of=/blob bs=1M count=%d 2>/dev/null\\n' | "
              "docker build -q --network host -t %s - >/dev/null" % (args.size_mib, IMAGE), timeout=3600)
    ssh(HEAD, "printf 'FROM %s\\nRUN dd if=/dev/urandom of=/top bs=1M count=16 2>/dev/null\\n' | "
              "docker build -q --network host -t %s - >/dev/null" % (IMAGE, IMAGE2), timeout=3600)
    report("full copy", *measure(IMAGE, args.repeat))
    report("re-copy, only the top layer changed (the base is on the worker)",
           *measure(IMAGE2, args.repeat, base_on_worker=IMAGE))
    print(json.dumps({"note": "figures above; nothing is asserted"}))


if __name__ == "__main__":
    main()
