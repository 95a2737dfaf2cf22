# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes on the Sparks: parsers for what kubectl and kubeadm print, the GB10 rules for the GPU Operator, and the
health verdict of k8s_check.

The parsers take the tool's text as printed (prompts, indentation and wrapped lines tolerated) and never raise on
unexpected text: what they cannot find comes back empty or None.
"""

from __future__ import annotations

import ipaddress
import json
import re

# ------------------------------------------------------------------ kubectl get nodes [-o wide]
_NODE_COLUMNS = {"NAME": "name", "STATUS": "status", "ROLES": "roles", "AGE": "age", "VERSION": "version",
                 "INTERNAL-IP": "internal_ip", "EXTERNAL-IP": "external_ip", "OS-IMAGE": "os_image",
                 "KERNEL-VERSION": "kernel", "CONTAINER-RUNTIME": "container_runtime"}


def _table(lines, header_at):
    """Rows of a kubectl table under the header at index header_at: each cell cut at its header's column."""
    header = lines[header_at]
    starts = [match.start() for match in re.finditer(r"\S+", header)]
    names = header.split()
    rows = []
    for line in lines[header_at + 1:]:
        if not line.strip() or len(line) <= starts[0] or line[:starts[0]].strip():
            break
        cells = [line[start:end].strip() for start, end in zip(starts, starts[1:] + [None])]
        rows.append(dict(zip(names, cells)))
    return rows


def kubectl_nodes(text):
    """`kubectl get nodes [-o wide]` -> [{name, status, ready, schedulable, roles, age, version, internal_ip,
    external_ip, os_image, kernel, container_runtime}] (the wide columns are None without -o wide)."""
    lines = (text or "").splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^\s*NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\b", line):
            nodes = []
            for row in _table(lines, index):
                node = dict((key, None) for key in _NODE_COLUMNS.values())
                node.update((_NODE_COLUMNS[name], value) for name, value in row.items() if name in _NODE_COLUMNS)
                conditions = (node["status"] or "").split(",")
                node["ready"] = conditions[0] == "Ready"
                node["schedulable"] = "SchedulingDisabled" not in conditions
                node["roles"] = [] if node["roles"] in (None, "", "<none>") else node["roles"].split(",")
                for key in ("external_ip", "internal_ip"):
                    if node[key] == "<none>":
                        node[key] = None
                nodes.append(node)
            return nodes
    return []


# ------------------------------------------------------------------ kubeadm join commands and failures
_JOIN = re.compile(r"kubeadm\s+join\s+(\S+)((?:\s+--\S+(?:[ =](?!--)\S+)?)*)")
BOOTSTRAP_TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
CA_CERT_HASH = re.compile(r"^sha256:[a-f0-9]{64}$")


def kubeadm_join_command(text):
    """The worker join command in `kubeadm token create --print-join-command` output or the tail of `kubeadm init`
    (line continuations joined) -> {endpoint, token, ca_cert_hashes, control_plane, valid}; valid says the token and
    every hash have their real formats (a redacted 'xxxxx' is not). The token is a secret: keep tasks no_log."""
    flat = re.sub(r"\\\s*\n\s*", " ", text or "")
    found = []
    for match in _JOIN.finditer(flat):
        options = re.findall(r"--([a-z0-9-]+)(?:[ =](?!--)(\S+))?", match.group(2))
        found.append({"endpoint": match.group(1), "options": options})
    workers = [cmd for cmd in found if not any(name == "control-plane" for name, _value in cmd["options"])]
    chosen = (workers or found or [None])[-1]
    if chosen is None:
        return {"endpoint": None, "token": None, "ca_cert_hashes": [], "control_plane": False, "valid": False}
    token = next((value for name, value in chosen["options"] if name == "token"), None)
    hashes = [value for name, value in chosen["options"] if name == "discovery-token-ca-cert-hash" and value]
    return {"endpoint": chosen["endpoint"], "token": token, "ca_cert_hashes": hashes,
            "control_plane": any(name == "control-plane" for name, _value in chosen["options"]),
            "valid": bool(token and BOOTSTRAP_TOKEN.match(token) and hashes
                          and all(CA_CERT_HASH.match(value) for value in hashes))}


# cause: (what kubeadm printed, recorded in tests/fixtures/kubernetes/, what to do)
JOIN_FAILURES = (
    ("node_exists", re.compile(r'a Node with name "([^"]+)" and status "(\w+)" already exists in the cluster'),
     "the API still holds a Node object of this name from an earlier join: delete it (kubectl delete node) and "
     "join again"),
    ("token_invalid", re.compile(r"is invalid for this cluster or it has expired|could not find a JWS signature "
                                 r"in the cluster-info ConfigMap for token ID"),
     "the bootstrap token is unknown or expired on the control plane: mint a new one (kubeadm token create)"),
    ("already_joined", re.compile(r"\[ERROR FileAvailable--etc-kubernetes-kubelet\.conf\]"),
     "this node holds a kubelet.conf from an earlier join: reset it (kubeadm reset -f) before joining again"),
    ("api_unreachable", re.compile(r"connect: connection refused|i/o timeout|no route to host|"
                                   r"Failed to connect to API Server"),
     "the API server on the control plane does not answer on its fabric address: check kubelet and the "
     "kube-apiserver on the head, and the fabric"),
    ("preflight", re.compile(r"\[ERROR ([A-Za-z0-9-]+)\]"),
     "a preflight check failed on this node (swap, sysctls, the container runtime): see the error line"),
)


def kubeadm_join_failure(text):
    """What a failed `kubeadm join` printed -> {cause, detail, remedy} (cause None when it says nothing known)."""
    for cause, pattern, remedy in JOIN_FAILURES:
        match = pattern.search(text or "")
        if match:
            line = next((line.strip() for line in (text or "").splitlines() if pattern.search(line)), match.group(0))
            return {"cause": cause, "detail": line[-300:], "remedy": remedy}
    last = (text or "").strip().splitlines()
    return {"cause": None, "detail": last[-1][-300:] if last else "", "remedy": "see kubeadm's output"}


# ------------------------------------------------------------------ the GPU Operator on GB10
# The device plugin each GPU Operator chart ships (values.yaml devicePlugin.version of NVIDIA/gpu-operator at the
# release's tag). Plugins before v0.17.4 crash on a GB10, whose NVML memory query answers "Not Supported"
# (NVIDIA/gpu-operator#1794, NVIDIA/k8s-device-plugin#1482; the fixed plugin logs "Ignoring error getting device
# memory: Not Supported", tests/fixtures/kubernetes/).
GPU_OPERATOR_DEVICE_PLUGIN = {
    "v24.9.2": "v0.17.0", "v25.3.0": "v0.17.1", "v25.3.1": "v0.17.2", "v25.3.2": "v0.17.3",
    "v25.3.3": "v0.17.4", "v25.3.4": "v0.17.4", "v25.10.0": "v0.18.0", "v25.10.1": "v0.18.1",
}
FIXED_DEVICE_PLUGIN = (0, 17, 4)
GB10_CRASH = "error getting device memory: Not Supported"


def version_tuple(text):
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(part) for part in match.groups()) if match else None


def gpu_operator_problem(chart_version, device_plugin_version=""):
    """None, or why this GPU Operator (with an optional device plugin override) would crash on a GB10."""
    plugin = device_plugin_version or GPU_OPERATOR_DEVICE_PLUGIN.get(chart_version)
    if plugin is None:
        if (version_tuple(chart_version) or (0,)) >= (25, 10, 0):
            return None  # later releases than this table ship later plugins
        return ("GPU Operator %s is not known to work on a GB10 (its device plugin version is not known here): use "
                "v25.10.1 or set k8s_cluster_gpu_operator_device_plugin_version to v0.17.4 or later"
                % chart_version)
    if (version_tuple(plugin) or (0,)) < FIXED_DEVICE_PLUGIN:
        return ("GPU Operator %s runs device plugin %s, which crashes on a GB10 with \"%s\" (fixed in v0.17.4): use "
                "v25.10.1 (the default), or set k8s_cluster_gpu_operator_device_plugin_version to v0.17.4 or later"
                % (chart_version, plugin, GB10_CRASH))
    return None


# ------------------------------------------------------------------ k8s_check's verdict
def _ready(node):
    return next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})


def _pod_state(pod):
    """(shown status as kubectl prints it, ready)."""
    status = pod.get("status") or {}
    container = (status.get("containerStatuses") or [{}])[0]
    state = container.get("state") or {}
    shown = ((state.get("waiting") or {}).get("reason") or (state.get("terminated") or {}).get("reason")
             or status.get("phase") or "Unknown")
    return shown, bool(container.get("ready"))


def not_ready_nodes(nodes):
    """The names of the nodes (Node objects, as `kubectl get nodes -o json` lists them) that are not Ready."""
    return [node["metadata"]["name"] for node in nodes or [] if _ready(node).get("status") != "True"]


def node_problem(node):
    """Why a node is not Ready, with the fix when the cause is known."""
    ready = _ready(node)
    message = ready.get("message") or ready.get("reason") or "no Ready condition"
    if "/var/lib/calico/nodename" in message or "failed to setup network for sandbox" in message:
        return ("stale CNI state after a reboot (%s): clear /var/lib/cni and /var/run/netns/cni-*, then restart "
                "containerd and kubelet (k8s_up.yml does it)" % message)
    if ready.get("status") == "Unknown":
        return "kubelet stopped posting node status (is kubelet running? systemctl status kubelet)"
    return message


def cluster_checks(listing_json, settings):
    """Gate checks (dgx_spark.cluster.gate_report) of a cluster from `kubectl get nodes,pods -A -o json` and what else
    the check collected. settings: {nodes (expected node names), api (endpoint), readyz (text of /readyz), gpu
    (require nvidia.com/gpu), calico (expect calico-node ready), metallb_range ('' when off), metallb_pools (the
    IPAddressPool objects), logs ({namespace/pod: last log lines}), smoke ({node: {phase, logs, why}})}."""
    from ansible_collections.dgx_spark.cluster.plugins.module_utils._gates import check
    items = json.loads(listing_json or "{}").get("items") or []
    nodes = [item for item in items if item.get("kind") == "Node"]
    pods = [item for item in items if item.get("kind") == "Pod"]
    logs = settings.get("logs") or {}
    checks = [check("api %s" % settings["api"], None, "api_readyz", (settings.get("readyz") or "").strip() or None,
                    "ok", (settings.get("readyz") or "").strip() == "ok",
                    "the API server does not answer on %s: is kubelet running on the control plane, and its "
                    "kube-apiserver static pod?" % settings["api"])]
    by_name = dict((node["metadata"]["name"], node) for node in nodes)
    for name in settings["nodes"]:
        node = by_name.get(name)
        ready = _ready(node or {})
        checks.append(check(name, None, "node_ready", "absent" if node is None else (
            "Ready" if ready.get("status") == "True" else "NotReady"), "Ready",
            node is not None and ready.get("status") == "True",
            "no Node object: the node never joined or was deleted (k8s_up.yml joins it)" if node is None
            else node_problem(node)))
        if settings.get("gpu"):
            gpus = int(((node or {}).get("status") or {}).get("allocatable", {}).get("nvidia.com/gpu", 0) or 0)
            plugin = [p for p in pods if (p.get("spec") or {}).get("nodeName") == name
                      and "device-plugin" in p["metadata"]["name"]]
            cause = "no device plugin pod runs on this node (is the GPU Operator installed?)"
            if plugin:
                shown = _pod_state(plugin[0])[0]
                pod_logs = logs.get("%s/%s" % (plugin[0]["metadata"]["namespace"], plugin[0]["metadata"]["name"]), "")
                cause = "device plugin %s is %s" % (plugin[0]["metadata"]["name"], shown)
                if GB10_CRASH in pod_logs:
                    cause += (": it logs \"%s\", the GB10 crash of device plugins before v0.17.4; run k8s_up.yml "
                              "with the default GPU Operator (v25.10.1)" % GB10_CRASH)
            checks.append(check(name, None, "gpu_allocatable", gpus, ">=1", gpus >= 1, cause))
    broken = {}
    for pod in pods:
        shown, ready = _pod_state(pod)
        if shown in ("Completed", "Succeeded") or (shown == "Running" and ready):
            continue
        broken.setdefault(pod["metadata"]["namespace"], []).append("%s %s" % (pod["metadata"]["name"], shown))
    for namespace in sorted(broken):
        checks.append(check("namespace %s" % namespace, None, "pods_running", ", ".join(broken[namespace]),
                            "Running or Completed", False, "%d pod(s) not running" % len(broken[namespace])))
    if not broken:
        checks.append(check("cluster", None, "pods_running", len(pods), "Running or Completed", True))
    if settings.get("calico"):
        calico = [p for p in pods if p["metadata"]["name"].startswith("calico-node")]
        ready_count = len([p for p in calico if _pod_state(p)[1]])
        checks.append(check("cluster", None, "calico_node_ready", ready_count, len(settings["nodes"]),
                            ready_count >= len(settings["nodes"]),
                            "calico-node is not ready on every node (kubectl -n calico-system get pods)"))
    if settings.get("metallb_range"):
        pools = [addr for pool in settings.get("metallb_pools") or [] for addr in
                 (pool.get("spec") or {}).get("addresses") or []]
        checks.append(check("cluster", None, "metallb_pool", ", ".join(pools) or None, settings["metallb_range"],
                            settings["metallb_range"] in pools,
                            "MetalLB has no IPAddressPool with %s (k8s_up.yml creates it)" % settings["metallb_range"]))
    for name, run in sorted((settings.get("smoke") or {}).items()):
        ok = run.get("phase") == "Succeeded" and "NVIDIA-SMI" in (run.get("logs") or "")
        checks.append(check(name, None, "gpu_smoke_pod", run.get("phase"), "Succeeded", ok,
                            run.get("why") or "the smoke pod (nvidia.com/gpu: 1, nvidia-smi) did not succeed: %s"
                            % ((run.get("logs") or "").strip().splitlines()[-1:] or ["no output"])[0]))
    return checks


# ------------------------------------------------------------------ address plan and containerd
def network_problems(pod_cidr, service_cidr, metallb_range, other_networks):
    """Overlaps between the pod network, the service network, the MetalLB range and the node networks (fabric, LAN):
    each must be its own, or routing breaks. Assumes each value is well-formed (validated before)."""
    from ansible_collections.dgx_spark.cluster.plugins.module_utils._validate import ipv4_range
    spans = [("k8s_cluster_pod_cidr", pod_cidr, ipv4_range(pod_cidr)),
             ("k8s_cluster_service_cidr", service_cidr, ipv4_range(service_cidr))]
    if metallb_range:
        spans.append(("k8s_cluster_metallb_range", metallb_range, ipv4_range(metallb_range)))
    problems = []
    for index, (name, value, (first, last)) in enumerate(spans):
        for other_name, other_value, (other_first, other_last) in spans[index + 1:]:
            if first <= other_last and other_first <= last:
                problems.append("%s %s overlaps %s %s" % (name, value, other_name, other_value))
    for network in sorted(set(other_networks or [])):
        node_net = ipaddress.IPv4Network(network, strict=False)
        for name, value, (first, last) in spans[:2]:
            if first <= node_net[-1] and node_net[0] <= last:
                problems.append("%s %s overlaps the node network %s" % (name, value, node_net))
    return problems


def containerd_config_problems(dump_text, want_nvidia=True):
    """What `containerd config dump` (TOML) lacks for kubelet: the CRI plugin enabled, runc with SystemdCgroup, the
    nvidia runtime registered. Reads config version 2 (containerd 1.x) and 3 (containerd 2.x)."""
    import tomllib
    try:
        config = tomllib.loads(dump_text or "")
    except tomllib.TOMLDecodeError as exc:
        return ["containerd config dump is not TOML: %s" % exc]
    plugins = config.get("plugins") or {}
    disabled = config.get("disabled_plugins") or []
    if config.get("version", 2) >= 3:
        cri, cri_name = plugins.get("io.containerd.cri.v1.runtime") or {}, "io.containerd.cri.v1.runtime"
    else:
        cri, cri_name = plugins.get("io.containerd.grpc.v1.cri") or {}, "io.containerd.grpc.v1.cri"
    problems = []
    if "cri" in disabled or cri_name in disabled:
        problems.append("the CRI plugin is disabled (disabled_plugins = %s): kubelet cannot use containerd" % disabled)
    runtimes = ((cri.get("containerd") or {}).get("runtimes") or {})
    if not ((runtimes.get("runc") or {}).get("options") or {}).get("SystemdCgroup"):
        problems.append("runc does not use systemd cgroups (SystemdCgroup = false), kubelet's cgroup driver is systemd")
    if want_nvidia and "nvidia" not in runtimes:
        problems.append("the nvidia runtime is not registered with containerd (GPU pods cannot start)")
    return problems


def artifacts_plan(artifacts, names, directory):
    """The artifacts a run needs, by name, each {version, url, sha256, file} with file its path under directory."""
    plan = {}
    for name in names:
        item = dict(artifacts[name])
        extension = "tgz" if item["url"].endswith((".tgz", ".tar.gz")) else "yaml"
        item["file"] = "%s/%s-%s.%s" % (directory.rstrip("/"), name, item["version"], extension)
        plan[name] = item
    return plan


# ------------------------------------------------------------------ the role's settings, checked on the controller
_SETTING_KINDS = (
    ("version", "version"), ("package_revision", "package_version"), ("apt_repository", "apt_uri"),
    ("api_address", "ipv4"), ("api_port", "port"), ("pod_cidr", "ipv4_network"), ("service_cidr", "ipv4_network"),
    ("pause_image", "image"), ("cni_bin_dir", "path"), ("calico_interface", "netdev"), ("state_dir", "path"),
    ("join_token_ttl", "duration"), ("api_timeout", "seconds"), ("ready_timeout", "seconds"), ("check_timeout", "seconds"),
    ("check_smoke_image", "image"),
)
ARTIFACT_NAMES = ("calico_operator", "metallb", "gpu_operator", "dashboard")


def settings_problems(settings, nodes):
    """Every problem of the k8s_cluster settings (variable names without the k8s_cluster_ prefix), naming each
    variable and its rule; nodes: {inventory host: fabric_address}. Checked before any host is contacted."""
    from ansible_collections.dgx_spark.cluster.plugins.module_utils import _validate

    def name(key):
        return "k8s_cluster_" + key
    checks = [(name(key), settings.get(key), kind) for key, kind in _SETTING_KINDS]
    if settings.get("apt_key_url"):
        checks.append((name("apt_key_url"), settings["apt_key_url"], "url"))
    if settings.get("gpu_operator"):
        checks += [(name("helm_version"), settings.get("helm_version"), "package_version"),
                   (name("helm_apt_repository"), settings.get("helm_apt_repository"), "apt_uri")]
        if settings.get("helm_apt_key_url"):
            checks.append((name("helm_apt_key_url"), settings["helm_apt_key_url"], "url"))
        if settings.get("gpu_operator_device_plugin_version"):
            checks.append((name("gpu_operator_device_plugin_version"),
                           settings["gpu_operator_device_plugin_version"], "version"))
    if settings.get("metallb"):
        checks.append((name("metallb_range"), settings.get("metallb_range"), "ipv4_range"))
    artifacts = settings.get("artifacts") if isinstance(settings.get("artifacts"), dict) else {}
    for artifact in ARTIFACT_NAMES:
        item = artifacts.get(artifact)
        if not isinstance(item, dict):
            checks.append(("k8s_cluster_artifacts.%s" % artifact, item, "url"))
            continue
        checks += [("k8s_cluster_artifacts.%s.version" % artifact, item.get("version"), "version"),
                   ("k8s_cluster_artifacts.%s.url" % artifact, item.get("url"), "url"),
                   ("k8s_cluster_artifacts.%s.sha256" % artifact, item.get("sha256"), "sha256")]
    checks += [("fabric_address of %s" % host, address, "ipv4_interface") for host, address in sorted(nodes.items())]
    problems = _validate.problems(checks)
    if settings.get("control_plane") not in nodes:
        problems.append("k8s_cluster_control_plane %r is not one of the play's hosts (%s)"
                        % (settings.get("control_plane"), ", ".join(sorted(nodes))))
    if problems:
        return problems  # the address plan below needs well-formed values
    fabric_networks = [str(ipaddress.IPv4Interface(address).network) for address in nodes.values()]
    problems += network_problems(settings["pod_cidr"], settings["service_cidr"],
                                 settings.get("metallb_range") if settings.get("metallb") else "", fabric_networks)
    if settings.get("gpu_operator"):
        found = gpu_operator_problem(artifacts["gpu_operator"]["version"],
                                     settings.get("gpu_operator_device_plugin_version") or "")
        if found:
            problems.append("k8s_cluster_artifacts.gpu_operator: " + found)
    return problems


def unready_pods(listing_json, namespace, prefix):
    """The names of the pods in namespace whose name starts with prefix and that do not run ready (their logs say
    why)."""
    items = json.loads(listing_json or "{}").get("items") or []
    return [p["metadata"]["name"] for p in items if p.get("kind", "Pod") == "Pod"
            and p["metadata"].get("namespace") == namespace and p["metadata"]["name"].startswith(prefix)
            and _pod_state(p) != ("Running", True)]


def has_pod(pods_json, namespace, prefix):
    """Whether `kubectl get pods -A -o json` lists a pod in namespace whose name starts with prefix (its workload
    was applied)."""
    items = json.loads(pods_json or "{}").get("items") or []
    return any(p["metadata"].get("namespace") == namespace and p["metadata"]["name"].startswith(prefix)
               for p in items)


def pod_running(pods_json, namespace, prefix):
    """Whether such a pod runs and is ready."""
    items = json.loads(pods_json or "{}").get("items") or []
    return any(p["metadata"].get("namespace") == namespace and p["metadata"]["name"].startswith(prefix)
               and _pod_state(p) == ("Running", True) for p in items)


# ------------------------------------------------------------------ k8s_check's GPU smoke pods
SMOKE_PREFIX = "dgx-spark-smoke-"


def _smoke_pods(pods_json):
    items = json.loads(pods_json or "{}").get("items") or []
    return dict((p["metadata"]["name"][len(SMOKE_PREFIX):], p) for p in items
                if p["metadata"]["name"].startswith(SMOKE_PREFIX))


def smoke_pending(pods_json):
    """The nodes whose smoke pod has not ended yet (neither Succeeded nor Failed)."""
    return sorted(node for node, pod in _smoke_pods(pods_json).items()
                  if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))


def smoke_result(log_result, pods_json):
    """One node's smoke pod: {phase, logs, why} from its `kubectl logs` result (item = the node) and the pods."""
    pod = _smoke_pods(pods_json).get(log_result.get("item")) or {}
    status = pod.get("status") or {}
    unscheduled = [c.get("message") for c in status.get("conditions") or []
                   if c.get("type") == "PodScheduled" and c.get("status") == "False"]
    why = ("it was not scheduled: %s" % unscheduled[0]) if unscheduled else (
        "its container is %s" % _pod_state(pod)[0] if pod else "the pod is gone")
    return {"phase": status.get("phase"), "logs": log_result.get("stdout", ""),
            "why": None if status.get("phase") == "Succeeded" else why}


# ------------------------------------------------------------------ kubectl drain
_DRAIN_BLOCKED = re.compile(r'error when evicting pods/"([^"]+)" -n "([^"]+)" \(will retry after \d+s\): (.*)$')
_DRAIN_TIMEOUT = re.compile(r'error when evicting pods/"([^"]+)" -n "([^"]+)": global timeout reached')
_DRAIN_REFUSED = re.compile(r"error: unable to drain node \"[^\"]+\"(?: due to error:|, aborting command\.\.\.)\s*(.*?)"
                            r"(?:, continuing command\.\.\.)?$")


_DRAIN_CHANGE = re.compile(r"^(node/\S+ cordoned|pod/\S+ evicted)$", re.M)


def drain_changed(output):
    """Whether a `kubectl drain` changed anything: it cordoned the node (not 'already cordoned') or evicted a pod."""
    return _DRAIN_CHANGE.search(output or "") is not None


def drain_blockers(output, pdbs_json="", pods_json=""):
    """What kept `kubectl drain` from finishing: [{namespace, pod, budget, reason}] - every pod it could not evict
    (the retried 'Cannot evict pod as it would violate the pod's disruption budget.' lines, or the pod named at the
    global timeout) with the PodDisruptionBudget whose selector covers it (from `kubectl get pdb -A -o json` and the
    pods' labels, `kubectl get pods -A -o json`), or a refusal that is not about a pod (no controller, local data)."""
    blocked = {}
    for line in (output or "").splitlines():
        found = _DRAIN_BLOCKED.search(line) or _DRAIN_TIMEOUT.search(line)
        if found:
            key = (found.group(2), found.group(1))
            reason = found.group(3) if found.re is _DRAIN_BLOCKED else blocked.get(key, "global timeout reached")
            blocked[key] = reason
    if not blocked:
        refusals = [m.group(1) for m in map(_DRAIN_REFUSED.search, (output or "").splitlines()) if m and m.group(1)]
        return [{"namespace": None, "pod": None, "budget": None, "reason": refusals[0]}] if refusals else []
    budgets = _json_items(pdbs_json)
    labels = dict(((p["metadata"].get("namespace"), p["metadata"]["name"]), p["metadata"].get("labels") or {})
                  for p in _json_items(pods_json))
    result = []
    for (namespace, pod), reason in sorted(blocked.items()):
        covering = [b["metadata"]["name"] for b in budgets if b["metadata"].get("namespace") == namespace
                    and _selects(((b.get("spec") or {}).get("selector") or {}), labels.get((namespace, pod)))]
        result.append({"namespace": namespace, "pod": pod, "budget": covering[0] if covering else None,
                       "reason": reason})
    return result


def _json_items(text):
    try:
        return (json.loads(text) if isinstance(text, str) and text.strip() else (text or {})).get("items") or []
    except (ValueError, AttributeError):
        return []


def _selects(selector, labels):
    if labels is None:
        return False
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(key) != value for key, value in wanted.items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        present, values = expression.get("key") in labels, expression.get("values") or []
        operator = expression.get("operator")
        if (operator == "In" and labels.get(expression.get("key")) not in values
                or operator == "NotIn" and labels.get(expression.get("key")) in values
                or operator == "Exists" and not present or operator == "DoesNotExist" and present):
            return False
    return True


def drain_summary(blockers):
    """One line per blocker: 'ns/pod (PodDisruptionBudget ns/name): reason'."""
    return ["%s/%s%s: %s" % (b["namespace"], b["pod"], " (PodDisruptionBudget %s/%s)" % (b["namespace"], b["budget"])
                             if b["budget"] else " (no PodDisruptionBudget covers it)", b["reason"])
            if b["pod"] else b["reason"] for b in blockers]
