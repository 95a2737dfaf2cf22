"""Kubernetes on the Sparks: kubectl/kubeadm parsers on recorded outputs, the GB10 rule for the GPU Operator, the
settings and address plan checks, containerd's configuration, the health verdict."""

from __future__ import annotations

import json

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _k8s
from ansible_collections.dgx_spark.cluster.plugins.module_utils._gates import report

from ansible_collections.dgx_spark.cluster.tests.unit.recorded import fixture_body, fixture_files

HASH = "sha256:0b54fa516bad51f8de14b4300b69f020212682576ecc601d357879afe3009143"


def test_nodes_wide_keeps_the_os_image_with_its_spaces():
    nodes = _k8s.kubectl_nodes(fixture_body("kubernetes/kubectl_get_nodes_wide_microk8s_spark_elizabetht.txt"))
    assert [n["name"] for n in nodes] == ["controller", "spark-01", "spark-02"]
    spark = nodes[1]
    assert spark == {"name": "spark-01", "status": "Ready", "ready": True, "schedulable": True, "roles": [],
                     "age": "94s", "version": "v1.31.14", "internal_ip": "192.168.1.76", "external_ip": None,
                     "os_image": "Ubuntu 24.04.3 LTS", "kernel": "6.11.0-1016-nvidia",
                     "container_runtime": "containerd://1.6.28"}


def test_nodes_without_wide_columns_after_a_prompt_and_indented():
    nodes = _k8s.kubectl_nodes(fixture_body("kubernetes/kubeadm-join-success-worker.txt"))
    assert [(n["name"], n["roles"], n["version"], n["os_image"]) for n in nodes] == [
        ("centos8-master", ["control-plane"], "v1.24.1", None), ("centos8-slave", [], "v1.24.3", None)]


def test_node_states_read_from_the_status_column():
    text = ("NAME         STATUS                        ROLES           AGE   VERSION\n"
            "spark-2959   Ready                         control-plane   5m    v1.31.14\n"
            "spark-ba63   NotReady,SchedulingDisabled   <none>          4m    v1.31.14\n")
    nodes = _k8s.kubectl_nodes(text)
    assert [(n["ready"], n["schedulable"]) for n in nodes] == [(True, True), (False, False)]
    assert _k8s.kubectl_nodes("No resources found\n") == [] and _k8s.kubectl_nodes("") == []


def test_join_command_from_the_tail_of_kubeadm_init():
    found = _k8s.kubeadm_join_command(fixture_body("kubernetes/kubeadm-init-success-v1.32.txt"))
    assert found == {"endpoint": "10.60.63.1:6443", "token": "cj1u0k.fucyrjoxei8zw43m", "ca_cert_hashes": [HASH],
                     "control_plane": False, "valid": True}


def test_join_command_of_token_create_and_a_redacted_one():
    printed = "kubeadm join 10.10.10.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash %s \n" % HASH
    assert _k8s.kubeadm_join_command(printed)["valid"] is True
    redacted = _k8s.kubeadm_join_command(fixture_body("kubernetes/kubeadm-join-fail-token-expired-v1.17.txt"))
    assert redacted["endpoint"] == "kubes:6443" and redacted["token"] == "xxxxx" and redacted["valid"] is False
    assert _k8s.kubeadm_join_command("nothing here")["endpoint"] is None


def test_the_worker_join_is_chosen_over_the_control_plane_one():
    text = ("kubeadm join 10.10.10.1:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash %s \\\n"
            "\t--control-plane --certificate-key 0123\n\nkubeadm join 10.10.10.1:6443 --token "
            "abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash %s\n" % (HASH, HASH))
    assert _k8s.kubeadm_join_command(text)["control_plane"] is False


@pytest.mark.parametrize("relpath, cause", [
    ("kubernetes/kubeadm-join-fail-token-expired-v1.17.txt", "token_invalid"),
    ("kubernetes/kubeadm-join-fail-jws-token-retry.txt", "token_invalid"),
    ("kubernetes/kubeadm-join-fail-node-already-exists.txt", "node_exists"),
    ("kubernetes/kubeadm-join-success-worker.txt", None),
])
def test_join_failures_are_named_from_what_kubeadm_printed(relpath, cause):
    found = _k8s.kubeadm_join_failure(fixture_body(relpath))
    assert found["cause"] == cause and found["remedy"]
    if cause == "node_exists":
        assert 'a Node with name "multinode-demo-m02"' in found["detail"] and "kubectl delete node" in found["remedy"]


def test_every_kubernetes_fixture_parses_without_raising():
    for relpath in fixture_files("kubernetes"):
        text = fixture_body(relpath)
        assert isinstance(_k8s.kubectl_nodes(text), list)
        assert set(_k8s.kubeadm_join_command(text)) == {"endpoint", "token", "ca_cert_hashes", "control_plane", "valid"}
        assert "cause" in _k8s.kubeadm_join_failure(text)


@pytest.mark.parametrize("chart, plugin, refused", [
    ("v25.10.1", "", False), ("v25.10.0", "", False), ("v25.3.4", "", False), ("v26.3.1", "", False),
    ("v25.3.2", "", True), ("v24.9.2", "", True), ("v25.3.2", "v0.17.4", False), ("v25.10.1", "v0.17.3", True),
    ("v23.9.0", "", True),
])
def test_gpu_operators_whose_device_plugin_crashes_on_gb10_are_refused(chart, plugin, refused):
    found = _k8s.gpu_operator_problem(chart, plugin)
    assert (found is not None) == refused
    if found and "crashes" in found:
        assert "error getting device memory: Not Supported" in found and "v0.17.4" in found


SETTINGS = {
    "version": "1.31.14", "package_revision": "1.1", "apt_repository": "https://pkgs.k8s.io/core:/stable:/v1.31/deb/",
    "apt_key_url": "https://pkgs.k8s.io/core:/stable:/v1.31/deb/Release.key", "helm_version": "3.16.4-1",
    "helm_apt_repository": "https://packages.buildkite.com/helm-linux/helm-debian/any/", "helm_apt_key_url": "",
    "control_plane": "spark-2959", "api_address": "10.10.10.1", "api_port": 6443, "pod_cidr": "192.168.0.0/16",
    "service_cidr": "10.96.0.0/12", "pause_image": "registry.k8s.io/pause:3.10", "cni_bin_dir": "/opt/cni/bin",
    "calico_interface": "enp1s0f1np1", "metallb": True, "metallb_range": "10.59.63.200-10.59.63.220",
    "gpu_operator": True, "gpu_operator_device_plugin_version": "", "state_dir": "/var/lib/dgx-spark/k8s",
    "join_token_ttl": "15m", "api_timeout": 60, "ready_timeout": 600, "check_timeout": 120,
    "check_smoke_image": "nvcr.io/nvidia/cuda:13.0.1-base-ubuntu24.04",
    "artifacts": dict((name, {"version": "v25.10.1", "url": "https://example.org/%s.yaml" % name, "sha256": "0" * 64})
                      for name in _k8s.ARTIFACT_NAMES),
}
NODES = {"spark-2959": "10.10.10.1/24", "spark-ba63": "10.10.10.2/24"}


def test_the_default_settings_pass():
    assert _k8s.settings_problems(SETTINGS, NODES) == []


@pytest.mark.parametrize("changes, message", [
    ({"version": "latest"}, "k8s_cluster_version 'latest' is not allowed: must be a release version"),
    ({"pod_cidr": "192.168.0.1/16"}, "k8s_cluster_pod_cidr '192.168.0.1/16' is not allowed: must be an IPv4 network"),
    ({"metallb_range": "10.59.63.220-10.59.63.200"}, "k8s_cluster_metallb_range"),
    ({"metallb_range": "10.59.63.200-220"}, "k8s_cluster_metallb_range '10.59.63.200-220' is not allowed"),
    ({"metallb_range": ""}, "k8s_cluster_metallb_range '' is not allowed"),
    ({"pod_cidr": "10.96.0.0/16"}, "k8s_cluster_pod_cidr 10.96.0.0/16 overlaps k8s_cluster_service_cidr 10.96.0.0/12"),
    ({"pod_cidr": "10.10.0.0/16"}, "k8s_cluster_pod_cidr 10.10.0.0/16 overlaps the node network 10.10.10.0/24"),
    ({"metallb_range": "192.168.0.10-192.168.0.20"}, "overlaps k8s_cluster_metallb_range 192.168.0.10-192.168.0.20"),
    # the toolkit's LAN range inside Calico's default pod network: pods could not reach those addresses
    ({"metallb_range": "192.168.86.200-192.168.86.220"},
     "k8s_cluster_pod_cidr 192.168.0.0/16 overlaps k8s_cluster_metallb_range 192.168.86.200-192.168.86.220"),
    ({"api_address": "10.10.10.1; reboot"}, "k8s_cluster_api_address '10.10.10.1; reboot' is not allowed"),
    ({"control_plane": "elsewhere"}, "k8s_cluster_control_plane 'elsewhere' is not one of the play's hosts"),
    ({"calico_interface": "enp1s0f1np1 -x"}, "k8s_cluster_calico_interface"),
    ({"gpu_operator_device_plugin_version": "v0.17.1"}, "crashes on a GB10"),
    ({"artifacts": dict(SETTINGS["artifacts"],
                        metallb={"version": "v0.14.9", "url": "https://x/m.yaml", "sha256": "latest"})},
     "k8s_cluster_artifacts.metallb.sha256 'latest' is not allowed: must be a SHA-256 digest"),
    ({"apt_repository": "https://pkgs.k8s.io/core:/stable:/v1.31/deb"}, "ending in /"),
    ({"join_token_ttl": "forever"}, "k8s_cluster_join_token_ttl 'forever' is not allowed"),
])
def test_hostile_or_broken_settings_are_refused_naming_the_variable(changes, message):
    problems = _k8s.settings_problems(dict(SETTINGS, **changes), NODES)
    assert any(message in problem for problem in problems), problems


def test_a_node_without_a_fabric_address_is_named():
    problems = _k8s.settings_problems(SETTINGS, dict(NODES, **{"spark-ba63": None}))
    assert "fabric_address of spark-ba63 is required: it must be an IPv4 host address" in problems[0]


def test_metallb_off_needs_no_range():
    assert _k8s.settings_problems(dict(SETTINGS, metallb=False, metallb_range=""), NODES) == []


def dump(text):
    return text.replace('            SystemdCgroup = false', '            SystemdCgroup = true')


def test_containerd_as_debian_ships_it_lacks_systemd_cgroups_and_the_nvidia_runtime():
    default = fixture_body("containerd/containerd-config-dump-debian-1.6.20-default.txt")
    problems = _k8s.containerd_config_problems(default)
    assert len(problems) == 2 and "SystemdCgroup = false" in problems[0] and "nvidia runtime" in problems[1]
    assert _k8s.containerd_config_problems(dump(default), want_nvidia=False) == []


def test_containerd_with_cri_disabled_as_docker_ce_ships_it():
    default = fixture_body("containerd/containerd-config-dump-debian-1.6.20-default.txt")
    disabled = dump(default).replace("disabled_plugins = []", 'disabled_plugins = ["cri"]')
    assert "the CRI plugin is disabled" in _k8s.containerd_config_problems(disabled, want_nvidia=False)[0]
    assert "not TOML" in _k8s.containerd_config_problems("version = = 2")[0]


def test_containerd_2_config_version_3():
    text = ("version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n"
            "SystemdCgroup = true\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.nvidia]\n"
            "runtime_type = 'io.containerd.runc.v2'\n")
    assert _k8s.containerd_config_problems(text) == []


def node(name, ready=True, message="kubelet is posting ready status", gpus=1):
    return {"kind": "Node", "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False", "message": message}],
                       "allocatable": {"nvidia.com/gpu": str(gpus)}}}


def pod(namespace, name, node_name, reason=None, ready=True):
    state = {"waiting": {"reason": reason}} if reason else {"running": {}}
    return {"kind": "Pod", "metadata": {"namespace": namespace, "name": name}, "spec": {"nodeName": node_name},
            "status": {"phase": "Pending" if reason == "ContainerCreating" else "Running",
                       "containerStatuses": [{"ready": ready, "restartCount": 3 if reason else 0, "state": state}]}}


HEALTH = {"nodes": ["spark-2959", "spark-ba63"], "api": "10.10.10.1:6443", "readyz": "ok", "gpu": True, "calico": True,
          "metallb_range": "10.59.63.200-10.59.63.220",
          "metallb_pools": [{"spec": {"addresses": ["10.59.63.200-10.59.63.220"]}}]}


def listing(*items):
    return json.dumps({"items": list(items)})


def healthy_items():
    return [node("spark-2959"), node("spark-ba63"),
            pod("calico-system", "calico-node-a", "spark-2959"), pod("calico-system", "calico-node-b", "spark-ba63"),
            pod("gpu-operator", "nvidia-device-plugin-daemonset-a", "spark-2959"),
            pod("gpu-operator", "nvidia-device-plugin-daemonset-b", "spark-ba63")]


def test_a_healthy_cluster_passes_every_check():
    verdict = report(_k8s.cluster_checks(listing(*healthy_items()), HEALTH))
    assert verdict["passed"] and {c["check"] for c in verdict["checks"]} == {
        "api_readyz", "node_ready", "gpu_allocatable", "pods_running", "calico_node_ready", "metallb_pool"}


def test_the_gb10_device_plugin_crash_is_named_with_its_fix():
    items = healthy_items()
    items[5] = pod("gpu-operator", "nvidia-device-plugin-daemonset-b", "spark-ba63", "CrashLoopBackOff", ready=False)
    items[1] = node("spark-ba63", gpus=0)
    checks = _k8s.cluster_checks(listing(*items), dict(HEALTH, logs={
        "gpu-operator/nvidia-device-plugin-daemonset-b": "error getting device memory: Not Supported\n"}))
    failed = [c for c in checks if c["verdict"] == "fail"]
    assert [(c["node"], c["check"]) for c in failed] == [
        ("spark-ba63", "gpu_allocatable"), ("namespace gpu-operator", "pods_running")]
    assert "CrashLoopBackOff" in failed[0]["cause"] and "v25.10.1" in failed[0]["cause"]
    assert failed[1]["value"] == "nvidia-device-plugin-daemonset-b CrashLoopBackOff"


def test_a_node_with_stale_cni_state_is_named_with_the_fix():
    message = ("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network "
               "plugin returns error: stat /var/lib/calico/nodename: no such file or directory")
    items = healthy_items()
    items[1] = node("spark-ba63", ready=False, message=message)
    failed = [c for c in _k8s.cluster_checks(listing(*items), HEALTH) if c["verdict"] == "fail"]
    assert failed[0]["check"] == "node_ready" and "stale CNI state after a reboot" in failed[0]["cause"]


def test_an_unreachable_api_an_absent_node_and_a_missing_pool_each_fail():
    settings = dict(HEALTH, readyz="", metallb_pools=[], gpu=False)
    checks = _k8s.cluster_checks(listing(node("spark-2959")), settings)
    failed = dict((c["check"], c) for c in checks if c["verdict"] == "fail")
    assert set(failed) == {"api_readyz", "node_ready", "calico_node_ready", "metallb_pool"}
    assert "never joined" in failed["node_ready"]["cause"] and failed["node_ready"]["node"] == "spark-ba63"


def test_smoke_pods_pass_on_nvidia_smi_output_and_say_why_they_did_not():
    pods = json.dumps({"items": [
        {"metadata": {"name": "dgx-spark-smoke-spark-2959"}, "status": {"phase": "Succeeded"}},
        {"metadata": {"name": "dgx-spark-smoke-spark-ba63"}, "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False",
             "message": "0/2 nodes are available: 1 Insufficient nvidia.com/gpu."}]}}]})
    assert _k8s.smoke_pending(pods) == ["spark-ba63"]
    table = fixture_body("nvidia-smi/gb10_table_arctictraining_pr345.txt")
    good = _k8s.smoke_result({"item": "spark-2959", "stdout": table}, pods)
    bad = _k8s.smoke_result({"item": "spark-ba63", "stdout": ""}, pods)
    checks = _k8s.cluster_checks(listing(*healthy_items()), dict(HEALTH, smoke={"spark-2959": good, "spark-ba63": bad}))
    smoke = dict((c["node"], c) for c in checks if c["check"] == "gpu_smoke_pod")
    assert smoke["spark-2959"]["verdict"] == "pass"
    assert smoke["spark-ba63"]["verdict"] == "fail" and "Insufficient nvidia.com/gpu" in smoke["spark-ba63"]["cause"]


def test_artifacts_land_under_the_state_directory_by_name_and_version():
    plan = _k8s.artifacts_plan(SETTINGS["artifacts"], ["metallb", "gpu_operator"], "/var/lib/dgx-spark/k8s/artifacts")
    assert plan["metallb"]["file"] == "/var/lib/dgx-spark/k8s/artifacts/metallb-v25.10.1.yaml"
    plan = _k8s.artifacts_plan({"gpu_operator": {"version": "v1", "url": "https://x/c.tgz", "sha256": ""}},
                               ["gpu_operator"], "/d/")
    assert plan["gpu_operator"]["file"] == "/d/gpu_operator-v1.tgz"


def _pod(namespace, name, **labels):
    return {"metadata": {"namespace": namespace, "name": name, "labels": labels}}


def test_a_drain_blocked_by_a_budget_names_the_pod_and_the_budget():
    output = fixture_body("kubernetes/kubectl-drain-blocked-by-pdb.txt")
    budgets = json.dumps({"items": [
        {"metadata": {"namespace": "istio-system", "name": "istiod"},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "istiod"}}}},
        {"metadata": {"namespace": "other", "name": "x"}, "spec": {"selector": {"matchLabels": {"app": "istiod"}}}}]})
    pods = json.dumps({"items": [_pod("istio-system", "istiod-bc4584967-9l5j7", app="istiod", istio="pilot"),
                                 _pod("argocd", "argo-cd-argocd-server-fbf845cd4-h9pks", app="argocd")]})
    blockers = _k8s.drain_blockers(output, budgets, pods)
    # the evicted pods are not blockers; the one retried is, once, with the budget in its namespace that selects it
    assert blockers == [{"namespace": "istio-system", "pod": "istiod-bc4584967-9l5j7", "budget": "istiod",
                         "reason": "Cannot evict pod as it would violate the pod's disruption budget."}]
    assert _k8s.drain_summary(blockers) == [
        "istio-system/istiod-bc4584967-9l5j7 (PodDisruptionBudget istio-system/istiod): Cannot evict pod as it would "
        "violate the pod's disruption budget."]
    assert _k8s.drain_summary(_k8s.drain_blockers(output)) == [
        "istio-system/istiod-bc4584967-9l5j7 (no PodDisruptionBudget covers it): Cannot evict pod as it would "
        "violate the pod's disruption budget."]


def test_a_budget_selects_by_expressions_too_and_other_refusals_are_said():
    budgets = {"items": [{"metadata": {"namespace": "ns", "name": "b"}, "spec": {"selector": {"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["db"]}, {"key": "canary", "operator": "DoesNotExist"}]}}}]}
    timeout = 'error when evicting pods/"db-0" -n "ns": global timeout reached: 20s\n'
    assert _k8s.drain_blockers(timeout, budgets, {"items": [_pod("ns", "db-0", tier="db")]})[0]["budget"] == "b"
    assert _k8s.drain_blockers(timeout, budgets, {"items": [_pod("ns", "db-0", tier="db", canary="1")]})[0][
        "budget"] is None
    refused = ('error: unable to drain node "spark-ba63" due to error: cannot delete Pods that declare no controller '
               '(use --force to override): default/x, continuing command...\n')
    assert _k8s.drain_summary(_k8s.drain_blockers(refused)) == [
        "cannot delete Pods that declare no controller (use --force to override): default/x"]
    assert _k8s.drain_blockers("node/spark-ba63 cordoned\nnode/spark-ba63 drained\n") == []
    assert _k8s.drain_blockers(timeout, "not json", None)[0]["budget"] is None


def test_a_drain_changed_something_when_it_cordoned_or_evicted():
    recorded = fixture_body("kubernetes/kubectl-drain-blocked-by-pdb.txt")
    assert _k8s.drain_changed(recorded)  # pods evicted
    assert _k8s.drain_changed("node/spark-ba63 cordoned\nnode/spark-ba63 drained\n")
    assert not _k8s.drain_changed("node/spark-ba63 already cordoned\nnode/spark-ba63 drained\n")
    assert not _k8s.drain_changed("evicting pod default/x\n") and not _k8s.drain_changed(None)


def test_not_ready_nodes_are_named():
    nodes = [{"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
             {"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}},
             {"metadata": {"name": "c"}, "status": {}}]
    assert _k8s.not_ready_nodes(nodes) == ["b", "c"] and _k8s.not_ready_nodes(None) == []
