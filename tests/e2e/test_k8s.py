"""Kubernetes and the cluster's daily life on the lab (site.yml, k8s_up.yml, k8s_check.yml, k8s_repair.yml,
k8s_down.yml, sleep.yml, wake.yml): bare nodes to a healthy cluster serving a model and changed=0, --check that
changes nothing, each broken state repaired or failed with its cause, a graceful stop and back, sleep and wake. Packages, apt holds, swap, sysctls,
containerd's configuration and restarts, the multipath file and every file kubeadm writes are real on the nodes;
kubeadm, kubelet, the API server, kubectl and helm are the lab's doubles (lab/doubles/k8s_double.py)."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time

import pytest
from labkit import (CURL_AUTH, NODES, REPORTS, ROOT, lab, playbook, recap, rejected_before_connecting, runner, ssh,
                    wait_for)

sys.path.insert(0, str(ROOT / ".collections"))
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _k8s  # noqa: E402

HEAD, WORKER = "spark-2959", "spark-ba63"
KUBECTL = "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf"
# Debian's packaged /etc/containerd/config.toml, what a bare lab node has
DEBIAN_CONTAINERD = base64.b64encode(b"""version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
""").decode()
TEAR_DOWN = ("sudo kubeadm reset -f >/dev/null 2>&1; sudo systemctl disable --now kubelet >/dev/null 2>&1; "
             "sudo rm -rf /etc/cni/net.d/* /var/lib/calico /var/lib/cni /var/lib/dgx-spark/k8s; "
             "for ns in $(ip netns list | awk '/^cni-/{print $1}'); do sudo ip netns delete $ns; done")
MAKE_BARE = (TEAR_DOWN + "; sudo dpkg --purge --force-hold kubeadm kubelet kubectl helm >/dev/null 2>&1; "
             "sudo rm -f /etc/apt/sources.list.d/dgx-spark-*.sources /etc/apt/keyrings/dgx-spark-* "
             "/etc/modules-load.d/dgx-spark-*.conf /etc/sysctl.d/99-dgx-spark-k8s.conf /etc/multipath.conf; "
             "sudo rm -rf /var/lib/apt/lists/*; echo " + DEBIAN_CONTAINERD + " | base64 -d | sudo tee "
             "/etc/containerd/config.toml >/dev/null; sudo systemctl restart containerd; "
             "grep -q '^/swapfile' /etc/fstab || echo '/swapfile none swap sw 0 0' | sudo tee -a /etc/fstab >/dev/null; "
             "sudo sysctl -qw net.ipv4.ip_forward=0; sudo rm -rf /var/lib/dgx-spark")
COMPLETION = ("curl -sf --max-time 120 http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' "
              + CURL_AUTH + " -d '{\"model\": \"tiny-llama\", \"prompt\": \"The DGX Spark\", \"max_tokens\": 4}'")


def on_all(command):
    for node in NODES:
        ssh(node, command, timeout=180)


def nodes_json():
    return json.loads(ssh(HEAD, KUBECTL + " get nodes -o json").stdout)["items"]


def node_ready(name):
    return any(n["metadata"]["name"] == name and any(c["type"] == "Ready" and c["status"] == "True"
                                                     for c in n["status"]["conditions"]) for n in nodes_json())


def changed_in(output, task, host):
    """Whether the task (by a part of its name) reported changed on host in an ansible-playbook output."""
    sections = [section for section in output.split("TASK [") if task in section.split("]", 1)[0]]
    return any("changed: [%s" % host in section for section in sections)


def k8s_up(*args, **kwargs):
    return playbook("k8s_up.yml", *args, timeout=kwargs.pop("timeout", 900))


def assert_ok(out):
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]


@pytest.fixture(scope="module", autouse=True)
def bare_lab():
    lab("up")
    lab("engine")
    for node in NODES:
        lab("scenario", node, "healthy")
    assert_ok(playbook("stop_model.yml"))
    on_all(MAKE_BARE)
    yield
    for node in NODES:
        lab("scenario", node, "healthy", check=False)
        lab("thaw", node, check=False)
    playbook("stop_model.yml")
    # no kubelet or API server left running for the tests after these; docker's containerd running again
    on_all(TEAR_DOWN + "; sudo systemctl start containerd docker")


def answers():
    return json.loads(ssh(HEAD, COMPLETION).stdout)["choices"][0]["text"] != ""


def asleep(node):
    """The lab host froze the node (lab/power.py): its record is there and its container is paused."""
    done = subprocess.run(["podman", "inspect", "-f", "{{.State.Status}}", "dgxspark-lab-" + node],
                          capture_output=True, text=True, check=False, env=lab_env())
    return done.stdout.strip() == "paused"


def lab_env():
    import os
    conf = subprocess.run([str(ROOT / "lab" / "host_prep.sh")], capture_output=True, text=True, check=True).stdout
    return dict(os.environ, CONTAINERS_CONF=conf.strip())


def test_check_mode_on_bare_nodes_says_what_it_would_do_and_changes_nothing():
    out = k8s_up("--check")
    assert_ok(out)
    assert "would install kubeadm, kubelet and kubectl 1.31.14-1.1 and hold them" in out.stdout
    assert "spark-ba63 would join the cluster at 10.10.10.1:6443" in out.stdout
    for node in NODES:
        assert ssh(node, "command -v kubeadm", check=False).returncode != 0
        assert ssh(node, "grep -c '^/swapfile' /etc/fstab").stdout.strip() == "1"
        assert ssh(node, "ls /etc/apt/sources.list.d/ | grep -c dgx-spark", check=False).stdout.strip() == "0"
        assert "SystemdCgroup" not in ssh(node, "cat /etc/containerd/config.toml").stdout


def test_site_takes_bare_nodes_to_a_healthy_cluster_serving_a_model_then_a_second_run_changes_nothing():
    out = playbook("site.yml", "-e", "model=lab-tiny-llama", timeout=1500)
    assert_ok(out)
    for phase in ("Site - preflight", "Site - fabric", "Site - RoCE gate", "Site - NCCL gate", "Site - Kubernetes",
                  "Site - serving"):
        assert "PLAY [%s]" % phase in out.stdout
    assert "PASS cluster metallb_pool=10.59.63.200-10.59.63.220" in out.stdout
    for node in NODES:
        # pinned and held, really installed by apt from the lab's repository
        held = ssh(node, "dpkg-query -W -f='${Package} ${Version} ${Status}\\n' kubeadm kubelet kubectl").stdout
        assert sorted(held.split("\n")[:3]) == [
            "kubeadm 1.31.14-1.1 hold ok installed", "kubectl 1.31.14-1.1 hold ok installed",
            "kubelet 1.31.14-1.1 hold ok installed"]
        assert ssh(node, "grep '/swapfile' /etc/fstab").stdout.startswith("# /swapfile")
        assert ssh(node, "cat /proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
        assert "net.ipv4.ip_forward=1" in ssh(node, "cat /etc/sysctl.d/99-dgx-spark-k8s.conf").stdout
        dump = ssh(node, "sudo containerd config dump").stdout
        assert _k8s.containerd_config_problems(dump) == []
        assert 'devnode "^sd[a-z][0-9]*"' in ssh(node, "cat /etc/multipath.conf").stdout
        assert ssh(node, "systemctl is-enabled kubelet").stdout.strip() == "enabled"
        # the state directory's parents stay readable: the serving role's key file under them is the admin user's
        assert ssh(node, "stat -c %a /var/lib/dgx-spark").stdout.strip() == "755"
    assert "helm 3.16.4-1 hold" in ssh(HEAD, "dpkg-query -W -f='${Package} ${Version} ${Status}' helm").stdout
    nodes = _k8s.kubectl_nodes(ssh(HEAD, KUBECTL + " get nodes -o wide").stdout)
    assert [(n["name"], n["ready"], n["roles"], n["internal_ip"], n["version"]) for n in nodes] == [
        ("spark-2959", True, ["control-plane"], "10.10.10.1", "v1.31.14"),
        ("spark-ba63", True, [], "10.10.10.2", "v1.31.14")]
    assert ssh(WORKER, "sudo test -e /var/lib/dgx-spark/k8s/config/kubeadm-join.yaml", check=False).returncode != 0
    assert answers()
    # the gates measure and change nothing: the second run skips them (test_playbooks.py runs them again and again)
    again = playbook("site.yml", "-e", "model=lab-tiny-llama", "--skip-tags", "roce,nccl", timeout=1500)
    assert_ok(again)
    assert {node: c["changed"] for node, c in recap(again.stdout).items()} == {node: 0 for node in NODES}
    one_phase = playbook("site.yml", "--tags", "preflight")
    assert_ok(one_phase)
    ran = set(line.split("TASK [dgx_spark.cluster.", 1)[1].split(" :", 1)[0] for line in one_phase.stdout.splitlines()
              if line.startswith("TASK [dgx_spark.cluster.") and "Validating arguments against arg spec" not in line)
    assert ran == {"preflight", "common"}  # Ansible checks every role's arguments whatever the tags


def test_check_passes_with_a_smoke_pod_per_node_and_leaves_none():
    out = playbook("k8s_check.yml")
    assert_ok(out)
    report = json.loads((REPORTS / "k8s_check.json").read_text())
    smoke = [c for c in report["checks"] if c["check"] == "gpu_smoke_pod"]
    assert report["passed"] and [(c["node"], c["verdict"]) for c in smoke] == [(HEAD, "pass"), (WORKER, "pass")]
    assert "dgx-spark-smoke" not in ssh(HEAD, KUBECTL + " get pods -A").stdout
    dry = playbook("k8s_check.yml", "--check")
    assert_ok(dry)
    assert "gpu_smoke_pod" not in dry.stdout


def test_repair_deletes_the_stale_node_of_a_worker_back_without_its_state_and_joins_it_again():
    ssh(WORKER, "sudo kubeadm reset -f")  # a reinstalled worker: its Node object outlives it, still Ready
    # an old join command, tried by hand, fails as the recorded runs do
    printed = ssh(HEAD, "sudo kubeadm token create --print-join-command --ttl 1s").stdout
    join = _k8s.kubeadm_join_command(printed)
    time.sleep(2)
    config = ("apiVersion: kubeadm.k8s.io/v1beta4\\nkind: JoinConfiguration\\ndiscovery:\\n  bootstrapToken:\\n"
              "    apiServerEndpoint: %s\\n    token: %s\\n    caCertHashes: [%s]\\nnodeRegistration:\\n  name: %s\\n"
              % (join["endpoint"], join["token"], join["ca_cert_hashes"][0], WORKER))
    ssh(WORKER, "printf '%s' | sudo tee /tmp/old-join.yaml >/dev/null" % config)
    old = ssh(WORKER, "sudo kubeadm join --config /tmp/old-join.yaml", check=False)
    assert old.returncode != 0 and _k8s.kubeadm_join_failure(old.stderr)["cause"] == "token_invalid"
    assert "is invalid for this cluster or it has expired" in old.stderr
    out = playbook("k8s_repair.yml", "-e", "k8s_cluster_check_smoke_pods=false", "-v")
    assert_ok(out)
    assert changed_in(out.stdout, "Delete the stale Node object", WORKER)
    assert changed_in(out.stdout, "Kubeadm join over the fabric", WORKER)
    assert node_ready(WORKER)
    # the join token minted for it never shows, even with -v
    tokens = ssh(HEAD, "sudo python3 -c \"import json; print(' '.join(t for t in json.load(open("
                       "'/var/lib/etcd/dgx-spark-lab-apiserver.json'))['tokens']))\"").stdout.split()
    assert tokens and not any(token in out.stdout + out.stderr for token in tokens)


def test_stale_cni_state_after_a_reboot_is_named_then_repair_clears_it():
    ssh(WORKER, "sudo mkdir -p /var/lib/cni/networks/k8s-pod-network && echo 5e1a | sudo tee "
                "/var/lib/cni/networks/k8s-pod-network/192.168.63.5 >/dev/null && sudo rm -f /var/lib/calico/nodename "
                "&& sudo ip netns add cni-5e1a0bd2-lab && sudo systemctl restart kubelet")
    wait_for("the worker NotReady", lambda: not node_ready(WORKER))
    check = playbook("k8s_check.yml", "-e", "k8s_cluster_check_smoke_pods=false")
    assert check.returncode != 0
    assert "FAIL spark-ba63 node_ready=NotReady" in check.stdout and "stale CNI state after a reboot" in check.stdout
    out = playbook("k8s_repair.yml", "-e", "k8s_cluster_check_smoke_pods=false")
    assert_ok(out)
    assert not changed_in(out.stdout, "The stale allocations and cache", HEAD)  # only on the node that has it
    assert changed_in(out.stdout, "The stale allocations and cache", WORKER)
    assert changed_in(out.stdout, "Containerd and kubelet start over", WORKER)
    assert ssh(WORKER, "ip netns list").stdout.strip() == ""
    assert ssh(WORKER, "cat /var/lib/calico/nodename").stdout.strip() == WORKER
    assert node_ready(WORKER) and node_ready(HEAD)


def test_a_device_plugin_that_crashes_on_gb10_is_named_then_replaced(tmp_path):
    ssh(HEAD, "printf 'driver: {enabled: false}\\ntoolkit: {enabled: false}\\ndevicePlugin: {version: v0.17.1}\\n' "
              "> /tmp/old-plugin.yaml && sudo helm --kubeconfig /etc/kubernetes/admin.conf upgrade --install "
              "gpu-operator /var/lib/dgx-spark/k8s/artifacts/gpu_operator-v25.10.1.tgz -n gpu-operator "
              "--values /tmp/old-plugin.yaml")
    wait_for("a crashing device plugin", lambda: "CrashLoopBackOff" in ssh(
        HEAD, KUBECTL + " get pods -n gpu-operator").stdout)
    check = playbook("k8s_check.yml", "-e", "k8s_cluster_check_smoke_pods=false")
    assert check.returncode != 0
    assert 'it logs \\"error getting device memory: Not Supported\\", the GB10 crash' in check.stdout \
        or 'it logs "error getting device memory: Not Supported", the GB10 crash' in check.stdout
    out = runner(tmp_path, "k8s_up.yml")
    assert out.rc == 0, out.stdout[-5000:]
    assert out.stats["k8s_up"]["passed"] is True, out.stats
    assert (out.stats["k8s_up"]["api"], out.stats["k8s_up"]["version"]) == ("10.10.10.1:6443", "1.31.14")
    assert "nvcr.io/nvidia/k8s-device-plugin:v0.18.1" in ssh(
        HEAD, KUBECTL + " get pods -n gpu-operator -o json").stdout
    assert_ok(playbook("k8s_check.yml"))


def test_an_api_server_that_does_not_come_up_is_named():
    lab("scenario", HEAD, "k8s_api_down")
    try:
        ssh(HEAD, "sudo systemctl restart kubelet")
        check = playbook("k8s_check.yml")
        assert check.returncode != 0 and "FAIL api 10.10.10.1:6443 api_readyz=None" in check.stdout
        out = k8s_up("-e", "k8s_cluster_api_timeout=10")
        assert out.returncode != 0
        assert "the Kubernetes API does not answer on 10.10.10.1:6443 within 10 s, although kubelet runs on " \
               "spark-2959" in out.stdout
    finally:
        lab("scenario", HEAD, "healthy")
    assert_ok(playbook("k8s_repair.yml", "-e", "k8s_cluster_check_smoke_pods=false"))


def test_settings_that_cannot_change_in_place_are_refused_naming_them():
    out = k8s_up("-e", "k8s_cluster_pod_cidr=172.20.0.0/16")
    assert out.returncode != 0
    assert "pod network 192.168.0.0/16 (k8s_cluster_pod_cidr is 172.20.0.0/16)" in out.stdout
    assert "do not change in place" in out.stdout


@pytest.mark.parametrize("extra, message", [
    (["k8s_cluster_version=latest"], "k8s_cluster_version 'latest' is not allowed"),
    (["k8s_cluster_pod_cidr=10.10.0.0/16"], "overlaps the node network 10.10.10.0/24"),
    (["k8s_cluster_metallb_range=10.59.63.220-10.59.63.200"], "k8s_cluster_metallb_range"),
    (["k8s_cluster_metallb_range=192.168.86.200-192.168.86.220"], "overlaps k8s_cluster_metallb_range"),
    (["k8s_cluster_gpu_operator_device_plugin_version=v0.17.3"], "crashes on a GB10"),
    (["k8s_cluster_node_name=Spark_1"], "k8s_cluster_node_name 'Spark_1' is not allowed"),
    (["k8s_cluster_api_address=10.10.10.1;reboot"], "k8s_cluster_api_address '10.10.10.1;reboot' is not allowed"),
    (['{"k8s_cluster_artifacts": {"calico_operator": {"version": "v3.29.7", "url": "http://x/y", "sha256": "x"}}}'],
     "k8s_cluster_artifacts.calico_operator.sha256 'x' is not allowed"),
])
def test_hostile_or_broken_values_are_refused_before_any_host_is_contacted(extra, message):
    rejected_before_connecting("k8s_up.yml", extra, "k8s_cluster settings rejected", message)


# ------------------------------------------------------------------ repair, down, sleep and wake
def repair(*args):
    return playbook("k8s_repair.yml", "-e", "k8s_cluster_check_smoke_pods=false", *args)


def schedulable(name):
    return not any(n["metadata"]["name"] == name and n["spec"].get("unschedulable") for n in nodes_json())


def active(node, unit):
    return ssh(node, "systemctl is-active " + unit, check=False).stdout.strip() == "active"


def test_repair_of_a_healthy_cluster_changes_nothing_and_starts_what_a_reboot_left_stopped():
    quiet = repair()
    assert_ok(quiet)
    assert {node: c["changed"] for node, c in recap(quiet.stdout).items()} == {node: 0 for node in NODES}
    assert "PASS cluster" in quiet.stdout and json.loads((REPORTS / "k8s_check.json").read_text())["passed"]
    ssh(WORKER, "sudo systemctl stop kubelet containerd")
    out = repair()
    assert_ok(out)
    assert changed_in(out.stdout, "Containerd running", WORKER) and changed_in(out.stdout, "Kubelet running on a worker", WORKER)
    assert active(WORKER, "containerd") and node_ready(WORKER)


def test_repair_resets_and_joins_again_a_worker_whose_kubelet_runs_but_stays_not_ready():
    # credentials the cluster no longer takes (a control plane made again, a restored disk): kubelet runs, the node
    # goes NotReady and stays so
    ssh(WORKER, "sudo sed -i 's#:6443#:6999#' /etc/kubernetes/kubelet.conf && sudo systemctl restart kubelet")
    wait_for("the worker NotReady", lambda: not node_ready(WORKER))
    out = repair("-e", "k8s_cluster_rejoin_timeout=4")
    assert_ok(out)
    assert changed_in(out.stdout, "Its state goes", WORKER)
    assert changed_in(out.stdout, "Kubeadm join over the fabric", WORKER)
    assert ":6443" in ssh(WORKER, "sudo cat /etc/kubernetes/kubelet.conf").stdout and node_ready(WORKER)


def test_sleep_refuses_a_nic_without_wake_on_lan_before_anything_stops():
    assert answers()  # served since site.yml
    lab("scenario", WORKER, "wol_unsupported")
    try:
        out = playbook("sleep.yml")
    finally:
        lab("scenario", WORKER, "healthy")
    assert out.returncode != 0
    assert "spark-ba63: eth0 cannot wake this node on a magic packet (ethtool shows no Wake-on lines" in out.stdout
    assert "Nothing was stopped" in out.stdout
    assert answers() and schedulable(WORKER) and not asleep(HEAD) and not asleep(WORKER)


def test_sleep_then_wake_brings_the_cluster_and_the_model_back(tmp_path):
    dry = playbook("sleep.yml", "--check")
    assert_ok(dry)
    assert "spark-ba63 would suspend; wake.yml wakes it with a magic packet to" in dry.stdout
    assert answers() and not asleep(WORKER)
    out = runner(tmp_path / "sleep", "sleep.yml")
    assert out.rc == 0, out.stdout[-5000:]
    assert asleep(HEAD) and asleep(WORKER)
    with pytest.raises(OSError):  # a sleeping box answers nothing, not even a TCP handshake
        socket.create_connection((NODES[HEAD], 22), timeout=3)
    record = json.loads((ROOT / "state" / "power.json").read_text())
    assert record["served"] == "lab-tiny-llama"
    assert {node: (n["asleep"], n["mac"]) for node, n in out.stats["sleep"]["nodes"].items()} == {
        node: (True, record["nodes"][node]["mac"]) for node in NODES}
    assert [(n, record["nodes"][n]["interface"], record["nodes"][n]["broadcast"]) for n in sorted(record["nodes"])] == [
        (HEAD, "eth0", "10.59.63.255"), (WORKER, "eth0", "10.59.63.255")]
    woke = runner(tmp_path / "wake", "wake.yml", wake_relaunch=True)
    assert woke.rc == 0, woke.stdout[-5000:]
    assert woke.stats["wake"] == {"relaunched": "lab-tiny-llama", "nodes": {node: {"was_awake": False} for node in NODES}}
    assert not asleep(HEAD) and not asleep(WORKER)
    for node in NODES:
        assert "System returned from sleep operation 'suspend'." in ssh(
            node, "sudo journalctl -u systemd-suspend --no-pager").stdout
        link = ssh(node, "cat /etc/systemd/network/50-dgx-spark-wol-eth0.link").stdout
        assert "WakeOnLan=magic" in link and "NamePolicy=keep kernel database onboard slot path" in link
    assert node_ready(HEAD) and node_ready(WORKER) and schedulable(WORKER)
    assert answers()
    awake = playbook("wake.yml")
    assert_ok(awake)
    assert {node: c["changed"] for node, c in recap(awake.stdout).items()} == {node: 0 for node in NODES}


def test_a_node_that_does_not_wake_fails_naming_it():
    # its NIC disarmed, the node suspended by hand: the magic packet reaches the lab's NIC model and is ignored
    ssh(WORKER, "sudo ethtool -s eth0 wol d && sudo systemd-run --collect --on-active=1 "
                "--timer-property=AccuracySec=100ms systemctl suspend")
    wait_for("the worker asleep", lambda: asleep(WORKER), timeout=30)
    try:
        out = playbook("wake.yml", "-e", "power_wake_timeout=6")
        assert out.returncode != 0
        assert "spark-ba63 did not wake within 6 s of its magic packet" in out.stdout
        assert asleep(WORKER)
    finally:
        lab("thaw", WORKER)
    wait_for("the worker back", lambda: node_ready(WORKER), timeout=60)


BUDGETED = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: lab/busybox:latest}]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: default}
spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}
"""


def test_down_names_the_budget_that_blocks_the_drain_and_stops_nothing_then_stops_and_repair_brings_all_back(
        tmp_path):
    ssh(HEAD, KUBECTL + " apply --server-side -f -", input_text=BUDGETED)
    wait_for("the budgeted pod running on the worker", lambda: any(
        p["metadata"]["name"].startswith("web-") and p["spec"].get("nodeName") == WORKER
        and p["status"]["phase"] == "Running"
        for p in json.loads(ssh(HEAD, KUBECTL + " get pods -n default -o json").stdout)["items"]))
    dry_down = playbook("k8s_down.yml", "--check")
    assert_ok(dry_down)
    assert "would cordon and drain spark-ba63" in dry_down.stdout
    assert_ok(playbook("k8s_repair.yml", "--check"))
    assert_ok(playbook("wake.yml", "--check"))
    assert schedulable(WORKER) and all(active(node, "kubelet") for node in NODES)
    blocked = playbook("k8s_down.yml", "-e", "k8s_cluster_drain_timeout=6")
    assert blocked.returncode != 0
    assert "could not drain spark-ba63 within 6 s" in blocked.stdout
    assert "(PodDisruptionBudget default/web): Cannot evict pod as it would violate the pod's disruption budget." \
        in blocked.stdout
    assert schedulable(WORKER) and answers()  # given back; serving untouched
    assert all(active(node, "kubelet") for node in NODES)
    ssh(HEAD, KUBECTL + " delete pdb -n default web")
    down = runner(tmp_path, "k8s_down.yml", k8s_cluster_drain_timeout=30)
    assert down.rc == 0, down.stdout[-5000:]
    assert down.stats["k8s_down"] == {"reset": False, "nodes": {node: {"kubelet_stopped": True} for node in NODES}}
    assert down.stats["stop_model"]["nodes"][HEAD] == ["dgx-spark-serve-lab-tiny-llama-r0"]
    assert changed_in(down.stdout, "Cordon and drain each worker", HEAD)
    assert ssh(HEAD, "docker ps -q --filter label=dgx-spark.role=serving").stdout.strip() == ""
    for node in NODES:
        assert not active(node, "kubelet") and not active(node, "containerd")
    assert json.loads(ssh(HEAD, "sudo cat /var/lib/dgx-spark/k8s/drained.json").stdout) == [WORKER]
    again = playbook("k8s_down.yml")
    assert_ok(again)
    assert {node: c["changed"] for node, c in recap(again.stdout).items()} == {node: 0 for node in NODES}
    reset = playbook("k8s_down.yml", "-e", "k8s_down_reset=true")
    assert_ok(reset)
    assert changed_in(reset.stdout, "Reset the worker", WORKER) and not changed_in(reset.stdout, "Reset the worker", HEAD)
    assert ssh(WORKER, "sudo test -e /etc/kubernetes/kubelet.conf", check=False).returncode != 0
    back = repair()
    assert_ok(back)
    assert changed_in(back.stdout, "Kubeadm join over the fabric", WORKER)
    assert schedulable(WORKER) and node_ready(WORKER) and node_ready(HEAD)
    assert ssh(HEAD, "sudo test -e /var/lib/dgx-spark/k8s/drained.json", check=False).returncode != 0
    ssh(HEAD, KUBECTL + " delete deployment -n default web", check=False)


@pytest.mark.parametrize("playbook_name, extra, message", [
    ("sleep.yml", ["power_wol_interface=eth0;reboot"], "power_wol_interface 'eth0;reboot' is not allowed"),
    ("wake.yml", ["power_wol_mac=72:41:59:bb:4f"], "power_wol_mac '72:41:59:bb:4f' is not allowed"),
    ("wake.yml", ["power_wake_relay=spark-ba63"], "the relay must stay awake"),
    ("wake.yml", ["power_wake_timeout=0"], "power_wake_timeout"),
    ("k8s_down.yml", ["k8s_cluster_drain_timeout=forever"], "k8s_cluster_drain_timeout 'forever' is not allowed"),
])
def test_lifecycle_inputs_are_refused_before_any_host_is_contacted(playbook_name, extra, message):
    rejected_before_connecting(playbook_name, extra, "settings rejected", message)
