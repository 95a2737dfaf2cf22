"""The lab's Kubernetes parts, built once into the lab cache and mounted read-only in every node at
/opt/dgx-spark-lab/k8s: prints the directory.

- repo/: a flat apt repository (the layout of pkgs.k8s.io) with kubeadm, kubelet and kubectl 1.31.13-1.1 and
  1.31.14-1.1, each a package whose program is the lab's double (lab/doubles/k8s_double.py, mounted in the nodes);
  kubelet's package ships the systemd unit, as the real one does.
- helm-repo/: an apt repository with the layout of Helm's (suite any, component main) holding helm 3.16.4-1.
- pylib/: kubernetes-validate (the real Kubernetes OpenAPI schemas) and PyYAML for the doubles.
- artifacts/: the lab's stand-ins for the pinned manifests and chart (lab/k8s/artifacts, the packed chart).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("DGX_SPARK_LAB_CACHE", os.path.expanduser("~/.cache/dgx-spark-lab"))
KUBERNETES = ("1.31.13-1.1", "1.31.14-1.1")
HELM = "3.16.4-1"
PYLIB_REQUIREMENTS = os.path.join(HERE, "pylib-requirements.txt")
KUBELET_UNIT = """[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target containerd.service

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
# the real unit waits 10 s between restarts; the lab's 2 s keep the tests short
RestartSec=2
StartLimitInterval=0

[Install]
WantedBy=multi-user.target
"""


def inputs_key():
    digest = hashlib.sha256(repr((KUBERNETES, HELM)).encode())
    for root, _dirs, files in sorted(os.walk(HERE)):
        for name in sorted(files):
            if name.endswith((".py", ".yaml", ".txt")):
                with open(os.path.join(root, name), "rb") as handle:
                    digest.update(name.encode() + handle.read())
    return digest.hexdigest()[:12]


def deb(out_dir, package, version, files):
    """A .deb of files ({path: (text, mode)}) built with dpkg-deb; returns its path."""
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "DEBIAN"))
        with open(os.path.join(root, "DEBIAN", "control"), "w") as handle:
            handle.write("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: dgx_spark.cluster lab\n"
                         "Description: the DGX Spark lab's double of %s (lab/doubles/k8s_double.py)\n"
                         % (package, version, package))
        for path, (text, mode) in files.items():
            target = os.path.join(root, path.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as handle:
                handle.write(text)
            os.chmod(target, mode)
        out = os.path.join(out_dir, "%s_%s_all.deb" % (package, version))
        subprocess.run(["dpkg-deb", "--root-owner-group", "--build", root, out], check=True,
                       stdout=subprocess.DEVNULL)
    return out


def index(debs, base):
    """The Packages text of debs, Filename relative to base."""
    entries = []
    for path in debs:
        control = subprocess.run(["dpkg-deb", "--field", path], capture_output=True, text=True, check=True).stdout
        with open(path, "rb") as handle:
            data = handle.read()
        entries.append("%sFilename: %s\nSize: %d\nSHA256: %s\n" % (
            control, os.path.relpath(path, base), len(data), hashlib.sha256(data).hexdigest()))
    return "\n".join(entries)


def release(files, base, suite):
    lines = ["Origin: dgx-spark-lab", "Label: dgx-spark-lab", "Suite: %s" % suite, "Codename: %s" % suite,
             "SHA256:"]
    for path in files:
        with open(path, "rb") as handle:
            data = handle.read()
        lines.append(" %s %d %s" % (hashlib.sha256(data).hexdigest(), len(data), os.path.relpath(path, base)))
    return "\n".join(lines) + "\n"


def tool(name, version):
    program = '#!/bin/sh\nexec python3 /opt/dgx-spark-lab/bin/k8s_double.py %s "$@"\n' % name
    files = {"/usr/bin/%s" % name: (program, 0o755),
             "/usr/share/dgx-spark-lab/%s.version" % name: (version.split("-")[0] + "\n", 0o644)}
    if name == "kubelet":
        files["/lib/systemd/system/kubelet.service"] = (KUBELET_UNIT, 0o644)
    return files


def build(target):
    repo = os.path.join(target, "repo")
    os.makedirs(repo)
    debs = [deb(repo, name, version, tool(name, version)) for version in KUBERNETES
            for name in ("kubeadm", "kubelet", "kubectl")]
    write(os.path.join(repo, "Packages"), index(debs, repo))
    write(os.path.join(repo, "Release"), release([os.path.join(repo, "Packages")], repo, "/"))
    helm_repo = os.path.join(target, "helm-repo")
    pool = os.path.join(helm_repo, "pool")
    os.makedirs(pool)
    helm_debs = [deb(pool, "helm", HELM, tool("helm", HELM))]
    lists = []
    for arch in ("amd64", "arm64"):
        packages = os.path.join(helm_repo, "dists", "any", "main", "binary-%s" % arch, "Packages")
        write(packages, index(helm_debs, helm_repo))
        lists.append(packages)
    write(os.path.join(helm_repo, "dists", "any", "Release"),
          release(lists, os.path.join(helm_repo, "dists", "any"), "any").replace(
              "Codename: any\n", "Codename: any\nComponents: main\nArchitectures: amd64 arm64\n"))
    artifacts = os.path.join(target, "artifacts")
    shutil.copytree(os.path.join(HERE, "artifacts"), artifacts)
    subprocess.run([sys.executable, os.path.join(HERE, "pack_chart.py"), os.path.join(HERE, "charts", "gpu-operator"),
                    os.path.join(artifacts, "gpu-operator-v25.10.1.tgz")], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                    "--no-deps", "--target", os.path.join(target, "pylib"), "-r", PYLIB_REQUIREMENTS], check=True)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def main():
    target = os.path.join(CACHE, "k8s-%s" % inputs_key())
    if not os.path.isdir(target):
        work = target + ".tmp"
        shutil.rmtree(work, ignore_errors=True)
        build(work)
        os.rename(work, target)
    print(target)


if __name__ == "__main__":
    main()
