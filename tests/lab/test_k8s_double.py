"""The lab's Kubernetes doubles on this host (no lab): the API server's validation with the real schemas, the
scheduler, kubectl's formats read back by the collection's own parsers, kubeadm's recorded output and preflight,
and the lab inventory's pins of the lab's stand-in artifacts."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOUBLE = ROOT / "lab" / "doubles" / "k8s_double.py"
HEARTBEAT_SECONDS = 2  # the lab kubelet's period (DGX_LAB_KUBELET_PERIOD)
sys.path.insert(0, str(ROOT / ".collections"))
sys.path.insert(0, str(ROOT / "lab" / "k8s"))
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _k8s  # noqa: E402
import pack_chart  # noqa: E402


def pylib():
    """The lab's pylib (lab/k8s/build.py), built into the lab cache as lab.sh does."""
    target = subprocess.run([sys.executable, str(ROOT / "lab" / "k8s" / "build.py")], capture_output=True, text=True,
                            check=True).stdout.strip()
    return target


@pytest.fixture(scope="module")
def parts():
    return Path(pylib())


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """An API server double on 127.0.0.1 with its state under a temporary root; kubectl and helm against it."""

    def __init__(self, root, parts):
        self.root, self.port = root, free_port()
        self.env = dict(os.environ, DGX_LAB_K8S_ROOT=str(root), DGX_LAB_PYLIB=str(parts / "pylib"),
                        DGX_LAB_FIXTURES=str(ROOT / "tests" / "fixtures"),
                        DGX_LAB_SCENARIO_FILE=str(root / "scenario"))
        (root / "var/lib/etcd").mkdir(parents=True)
        (root / "usr/share/dgx-spark-lab").mkdir(parents=True)
        (root / "usr/share/dgx-spark-lab/kubeadm.version").write_text("1.31.14\n")
        state = {"cluster": {"version": "v1.31.14", "advertise": "127.0.0.1", "port": self.port,
                             "ca_hash": "sha256:" + "0" * 64},
                 "tokens": {}, "heartbeats": {},
                 "objects": {"v1/Namespace//default": {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": "default"}}}}
        (root / "var/lib/etcd/dgx-spark-lab-apiserver.json").write_text(json.dumps(state))
        self.conf = root / "admin.conf"
        server = "https://127.0.0.1:%d" % self.port
        self.conf.write_text(yaml.safe_dump({"clusters": [{"cluster": {"server": server}}]}))
        self.reports, self.stopped = {}, threading.Event()
        self.server = subprocess.Popen([sys.executable, str(DOUBLE), "kube-apiserver",
                                        "--advertise-address=127.0.0.1", "--secure-port=%d" % self.port],
                                       env=self.env)
        deadline = time.time() + 20
        while self.kubectl("get", "--raw", "/readyz", check=False).stdout.strip() != "ok":
            assert time.time() < deadline, "the API server double did not answer"
            time.sleep(0.2)
        threading.Thread(target=self.kubelets, daemon=True).start()

    def run(self, tool, *args, stdin=None, check=True):
        done = subprocess.run([sys.executable, str(DOUBLE), tool, "--kubeconfig", str(self.conf)] + list(args),
                              capture_output=True, text=True, input=stdin, env=self.env, check=False, timeout=60)
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def kubectl(self, *args, **kwargs):
        return self.run("kubectl", *args, **kwargs)

    def apply(self, objects, check=True):
        return self.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(objects), check=check)

    def call(self, method, route, body):
        import urllib.request
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, route), method=method,
                                         data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def node(self, name, control_plane=False, ready=True, gpus=1):
        """A registered node whose kubelet reports every HEARTBEAT_SECONDS until stop(), as the lab's does: a test
        slowed past the double's staleness bound (a loaded machine) still sees the node it registered as it was."""
        self.call("POST", "/nodes/%s/register" % name, {"node_ip": "10.10.10.%d" % (1 + len(name) % 3),
                                                        "control_plane": control_plane})
        self.reports[name] = {"status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status"}],
            "allocatable": {"nvidia.com/gpu": str(gpus)},
            "nodeInfo": {"kubeletVersion": "v1.31.14", "osImage": "Ubuntu 24.04.3 LTS",
                         "kernelVersion": "6.14.0-1015-nvidia", "containerRuntimeVersion": "containerd://1.7.27"}},
            "pods": {}}
        self.beat(name)

    def beat(self, name):
        self.call("POST", "/nodes/%s/heartbeat" % name, self.reports[name])

    def kubelets(self):
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            for name in list(self.reports):
                try:
                    self.beat(name)
                except OSError:
                    if not self.stopped.is_set():
                        raise

    def stop(self):
        self.stopped.set()
        self.server.terminate()
        self.server.wait(10)


@pytest.fixture
def cluster(tmp_path, parts):
    running = Cluster(tmp_path, parts)
    yield running
    running.stop()


def deployment(**spec_extra):
    spec = {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "x", "image": "x"}]}}}
    spec.update(spec_extra)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "default"},
            "spec": spec}


def test_core_kinds_are_validated_against_the_real_schema(cluster):
    assert cluster.apply([deployment()]).stdout.strip() == "deployment.apps/x serverside-applied"
    bad = cluster.apply([deployment(replica=2)], check=False)
    assert bad.returncode != 0 and "strict decoding error" in bad.stderr and "replica" in bad.stderr
    wrong_type = cluster.apply([deployment(replicas="two")], check=False)
    assert wrong_type.returncode != 0 and "The Deployment \"x\" is invalid: spec.replicas" in wrong_type.stderr
    unknown = cluster.apply([{"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                              "metadata": {"name": "p", "namespace": "default"}, "spec": {"addresses": ["a"]}}],
                            check=False)
    assert 'no matches for kind "IPAddressPool" in version "metallb.io/v1beta1"' in unknown.stderr
    assert "ensure CRDs are installed first" in unknown.stderr


def test_custom_resources_follow_their_crd_and_metallbs_webhook(cluster):
    with open(ROOT / "lab" / "k8s" / "artifacts" / "metallb-native.yaml") as handle:
        cluster.kubectl("apply", "--server-side", "-f", "-", stdin=handle.read())
    pool = {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "p", "namespace": "metallb-system"}, "spec": {"addresses": ["10.59.63.200-10.59.63.220"]}}
    refused = cluster.apply([pool], check=False)
    assert refused.returncode != 0 and 'failed calling webhook "ipaddresspoolvalidationwebhook.metallb.io"' \
        in refused.stderr  # no controller pod runs yet
    bad = cluster.apply([dict(pool, spec={"addresses": "10.59.63.200"})], check=False)
    assert "The IPAddressPool \"p\" is invalid: spec.addresses" in bad.stderr


def test_the_scheduler_keeps_gpu_pods_off_nodes_without_gpus_and_off_the_control_plane(cluster):
    cluster.node("spark-2959", control_plane=True)
    cluster.node("spark-ba63", gpus=0)
    smoke = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "s", "namespace": "default"},
             "spec": {"restartPolicy": "Never", "nodeSelector": {"kubernetes.io/hostname": "spark-ba63"},
                      "containers": [{"name": "s", "image": "i", "command": ["nvidia-smi"],
                                      "resources": {"limits": {"nvidia.com/gpu": 1}}}]}}
    cluster.apply([smoke])
    [pod] = json.loads(cluster.kubectl("get", "pods", "-n", "default", "-o", "json").stdout)["items"]
    assert pod["status"]["phase"] == "Pending"
    assert pod["status"]["conditions"][0]["message"] == ("0/2 nodes are available: 1 Insufficient nvidia.com/gpu, "
                                                         "1 node(s) didn't match Pod's node affinity/selector.")
    assert "logs" not in pod["status"]  # kubectl shows what the real one shows


def test_kubectl_tables_read_back_with_the_collections_parsers(cluster):
    cluster.node("spark-2959", control_plane=True)
    cluster.node("spark-ba63", ready=False)
    wide = cluster.kubectl("get", "nodes", "-o", "wide").stdout
    nodes = _k8s.kubectl_nodes(wide)
    assert [(n["name"], n["ready"], n["roles"], n["os_image"], n["container_runtime"]) for n in nodes] == [
        ("spark-2959", True, ["control-plane"], "Ubuntu 24.04.3 LTS", "containerd://1.7.27"),
        ("spark-ba63", False, [], "Ubuntu 24.04.3 LTS", "containerd://1.7.27")]
    assert _k8s.kubectl_nodes(cluster.kubectl("get", "nodes").stdout)[1]["status"] == "NotReady"


def test_the_request_timeout_flag_takes_kubectls_forms_and_refuses_what_kubectl_refuses(cluster):
    for flag in (["--request-timeout=5s"], ["--request-timeout", "1m30s"], ["--request-timeout=7"],
                 ["--request-timeout=0"], ["--request-timeout=500ms"]):
        assert cluster.kubectl(*flag, "get", "--raw", "/readyz").stdout.strip() == "ok", flag
    refused = cluster.kubectl("--request-timeout=5x", "get", "--raw", "/readyz", check=False)
    assert refused.returncode != 0
    assert "Invalid timeout value. Timeout must be a single integer in seconds" in refused.stderr


def test_join_tokens_expire_and_a_ready_node_cannot_join_twice(cluster):
    cluster.node("spark-ba63")
    token = cluster.call("POST", "/tokens", {"ttl": 3})["token"]  # (3 s: room for a loaded machine's first join)
    created = time.monotonic()
    body = {"node": "spark-new", "token": token, "ca_hash": "sha256:" + "0" * 64, "node_ip": "10.10.10.3"}
    assert cluster.call("POST", "/join", body)
    time.sleep(max(0.0, created + 3.2 - time.monotonic()))
    import urllib.error
    with pytest.raises(urllib.error.HTTPError) as expired:
        cluster.call("POST", "/join", dict(body, node="spark-other"))
    message = json.loads(expired.value.read())["message"]
    assert _k8s.kubeadm_join_failure(message)["cause"] == "token_invalid"
    fresh = cluster.call("POST", "/tokens", {"ttl": 60})["token"]
    with pytest.raises(urllib.error.HTTPError) as exists:
        cluster.call("POST", "/join", dict(body, node="spark-ba63", token=fresh))
    assert _k8s.kubeadm_join_failure(json.loads(exists.value.read())["message"])["cause"] == "node_exists"


def test_kubeadm_preflight_reads_the_real_swap_and_sysctls(tmp_path, parts):
    env = dict(os.environ, DGX_LAB_K8S_ROOT=str(tmp_path), DGX_LAB_PYLIB=str(parts / "pylib"),
               DGX_LAB_FIXTURES=str(ROOT / "tests" / "fixtures"))
    for path, text in (("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1 0 -2\n"),
                       ("proc/sys/net/ipv4/ip_forward", "0\n"), ("usr/share/dgx-spark-lab/kubeadm.version", "1.31.14")):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    config = tmp_path / "join.yaml"
    config.write_text("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n"
                      "    apiServerEndpoint: 127.0.0.1:1\n    token: abcdef.0123456789abcdef\n")
    done = subprocess.run([sys.executable, str(DOUBLE), "kubeadm", "join", "--config", str(config)],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 1
    assert "[ERROR Swap]: running with swap on is not supported. Please disable swap" in done.stderr
    assert "[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents are not " \
           "set to 1" in done.stderr
    assert "/proc/sys/net/bridge/bridge-nf-call-iptables does not exist" in done.stderr
    assert "[ERROR CRI]: container runtime is not running" in done.stderr
    flags = subprocess.run([sys.executable, str(DOUBLE), "kubeadm", "join", "10.10.10.1:6443", "--token", "x"],
                           capture_output=True, text=True, env=env, check=False)
    assert flags.returncode == 64 and "the token stays out of argv" in flags.stderr


def test_the_lab_inventory_pins_the_lab_artifacts_by_their_digests(parts, tmp_path):
    inventory = yaml.safe_load((ROOT / "inventory" / "lab.yml").read_text())
    pins = inventory["all"]["children"]["sparks"]["vars"]["k8s_cluster_artifacts"]
    for name, pin in pins.items():
        served = parts / "artifacts" / pin["url"].rsplit("/", 1)[1]
        assert hashlib.sha256(served.read_bytes()).hexdigest() == pin["sha256"], name
    # the chart packs to the same bytes every time
    pack_chart.pack(str(ROOT / "lab" / "k8s" / "charts" / "gpu-operator"), str(tmp_path / "again.tgz"))
    assert hashlib.sha256((tmp_path / "again.tgz").read_bytes()).hexdigest() == pins["gpu_operator"]["sha256"]


def test_a_cordon_moves_nothing_and_a_drain_evicts_unless_a_disruption_budget_forbids(cluster):
    cluster.node("spark-2959", control_plane=True)
    cluster.node("spark-ba63")
    cluster.apply([deployment()])

    def placed():
        [pod] = json.loads(cluster.kubectl("get", "pods", "-n", "default", "-o", "json").stdout)["items"]
        return pod["spec"].get("nodeName"), pod["status"]["phase"]

    assert placed()[0] == "spark-ba63"
    cluster.kubectl("cordon", "spark-ba63")
    assert placed()[0] == "spark-ba63"  # bound pods stay where they run
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "x", "namespace": "default"},
              "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "x"}}}}
    cluster.apply([budget])
    blocked = cluster.kubectl("drain", "spark-ba63", "--ignore-daemonsets", "--timeout=6s", check=False)
    assert blocked.returncode == 1
    assert "node/spark-ba63 already cordoned" in blocked.stdout
    assert ("error when evicting pods/\"x-%s\" -n \"default\" (will retry after 5s): Cannot evict pod as it would "
            "violate the pod's disruption budget." % blocked.stdout.split("evicting pod default/x-", 1)[1].split()[0]
            ) in blocked.stdout
    assert 'global timeout reached: 6s' in blocked.stderr and "There are pending nodes to be drained:" in blocked.stderr
    assert placed()[0] == "spark-ba63"
    assert cluster.kubectl("delete", "pdb", "-n", "default", "x").stdout.strip() == \
        'poddisruptionbudget.policy "x" deleted'

    drained = cluster.kubectl("drain", "spark-ba63", "--ignore-daemonsets", "--timeout=6s")
    assert "evicted" in drained.stdout and drained.stdout.strip().endswith("node/spark-ba63 drained")
    assert placed() == (None, "Pending")  # nowhere else to go: the head is tainted
    cluster.kubectl("uncordon", "spark-ba63")
    assert placed()[0] == "spark-ba63"
