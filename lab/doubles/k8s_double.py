"""Doubles of kubeadm, kubelet, kube-apiserver, kubectl and helm for the lab (no Kubernetes binaries are reachable).

They keep the real tools' state rules with real files and real processes, and answer in the real tools' formats:
- kubeadm writes the files the real one writes (/etc/kubernetes/{admin,kubelet}.conf, pki/ca.crt, the static pod
  manifests, /var/lib/kubelet/config.yaml), runs the real preflight checks that matter here (swap, the bridge and
  forwarding sysctls, the container runtime's socket, files left by an earlier init or join), and prints its output
  from the recorded runs in tests/fixtures/kubernetes (init, join, the join failures).
- kubelet is a real systemd service (the lab's kubelet package ships the unit): it exits without its config as the
  real one crash-loops before kubeadm runs; on the control plane it runs the kube-apiserver static pod; it reports
  its node (Ready only with the container runtime's socket and a CNI configuration in /etc/cni/net.d) and runs the
  pods bound to it: calico-node writes the CNI configuration as its install-cni container does, a device plugin image
  older than v0.17.4 crashes on a GB10 with the recorded "error getting device memory: Not Supported", a pod with a
  command runs that command on the node (the GPU smoke pod runs the node's nvidia-smi).
- kube-apiserver keeps the objects in a file under /var/lib/etcd (kubeadm reset removes it, as it does etcd's data),
  validates every core kind against the real OpenAPI schema of its version (kubernetes-validate) and custom resources
  against their CRD's schema, refuses a custom resource whose CRD is absent or whose admission webhook has no ready
  pod, schedules pods (node selector, the control plane's taint, nvidia.com/gpu), runs the controllers the cluster
  needs here (DaemonSet and Deployment pods, the Tigera operator's calico-node, bootstrap tokens with their TTL) and
  answers over plain HTTP on the advertise address (TLS is not simulated).
- kubectl and helm are clients of it: the forms the roles use, the real output formats, the real error messages.
Scenarios (/etc/dgx-spark-lab/scenario, read at every call): k8s_api_down (kubelet does not run the API server),
k8s_stale_cni (after a "reboot": stale /var/lib/cni state and no /var/lib/calico/nodename, pods fail their sandbox
with the recorded error until the state is cleared and containerd and kubelet restart). Paths live under
$DGX_LAB_K8S_ROOT (default /) so tests run the doubles on the host.
"""

import base64
import hashlib
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.environ.get("DGX_LAB_PYLIB", "/opt/dgx-spark-lab/k8s/pylib"))
import yaml  # noqa: E402  (PyYAML from the lab's pylib)

ROOT = os.environ.get("DGX_LAB_K8S_ROOT", "/")
FIXTURES = os.environ.get("DGX_LAB_FIXTURES", "/opt/dgx-spark-lab/fixtures")
SCENARIO_FILE = os.environ.get("DGX_LAB_SCENARIO_FILE", "/etc/dgx-spark-lab/scenario")
HEARTBEAT_SECONDS = float(os.environ.get("DGX_LAB_KUBELET_PERIOD", "2"))
NODE_STALE_SECONDS = 20  # the real node-monitor-grace-period is 40 s; the lab's is shorter to keep the tests short
FIXED_DEVICE_PLUGIN = (0, 17, 4)  # NVIDIA/k8s-device-plugin v0.17.4 ignores GB10's "Not Supported" memory query
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def path(*parts):
    return os.path.join(ROOT, *[part.lstrip("/") for part in parts])


STATE = path("/var/lib/etcd/dgx-spark-lab-apiserver.json")
MANIFESTS = path("/etc/kubernetes/manifests")
ADMIN_CONF = path("/etc/kubernetes/admin.conf")
KUBELET_CONF = path("/etc/kubernetes/kubelet.conf")
KUBELET_CONFIG = path("/var/lib/kubelet/config.yaml")
KUBELET_PODS = path("/var/lib/kubelet/dgx-spark-lab-pods.json")
CNI_CONF = path("/etc/cni/net.d/10-calico.conflist")
CALICO_NODENAME = path("/var/lib/calico/nodename")
CNI_STATE = path("/var/lib/cni")
CONTAINERD_SOCK = path("/run/containerd/containerd.sock")
VERSION_DIR = path("/usr/share/dgx-spark-lab")


def die(msg, rc=1):
    sys.stderr.write(msg.rstrip("\n") + "\n")
    sys.exit(rc)


def scenario():
    try:
        with open(SCENARIO_FILE) as handle:
            return handle.read().strip() or "healthy"
    except OSError:
        return "healthy"


def fixture(relpath):
    """A recorded output: the text below its `# ---` header."""
    with open(os.path.join(FIXTURES, relpath)) as handle:
        return handle.read().split("\n# ---\n", 1)[1]


def installed_version(tool="kubeadm"):
    """The version of the tool's package installed here (the lab's packages ship it in <tool>.version)."""
    try:
        with open(os.path.join(VERSION_DIR, "%s.version" % tool)) as handle:
            return handle.read().strip()
    except OSError:
        return None


def read_yaml_docs(text):
    """The objects of a manifest: its documents, a List's items in their place."""
    objects = []
    for doc in yaml.safe_load_all(text):
        if doc and doc.get("kind") == "List" and doc.get("apiVersion") == "v1":
            objects.extend(doc.get("items") or [])
        elif doc:
            objects.append(doc)
    return objects


def write_file(target, text, mode=0o644):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w") as handle:
        handle.write(text)
    os.chmod(target, mode)


def kubeconfig_server(conf):
    """(host, port) of the server in a kubeconfig (https in the file, plain HTTP to the lab's API server)."""
    with open(conf) as handle:
        data = yaml.safe_load(handle)
    server = data["clusters"][0]["cluster"]["server"]
    match = re.match(r"^https?://\[?([^\]/]+?)\]?:(\d+)/?$", server)
    return match.group(1), int(match.group(2))


def kubeconfig(server, user):
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "%s@kubernetes" % user,
        "clusters": [{"name": "kubernetes", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(b"lab CA").decode()}}],
        "contexts": [{"name": "%s@kubernetes" % user, "context": {"cluster": "kubernetes", "user": user}}],
        "users": [{"name": user, "user": {"client-certificate-data": base64.b64encode(user.encode()).decode()}}]})


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


REQUEST_TIMEOUT = {"seconds": 10}  # kubectl's --request-timeout, where a run gives it


def call(server, method, route, body=None, timeout=None):
    """One request to the lab's API server; ApiError with its message, or status 0 when it does not answer."""
    timeout = timeout or REQUEST_TIMEOUT["seconds"]
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request("http://%s:%d%s" % (server[0], server[1], route), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise ApiError(exc.code, json.loads(exc.read() or b"{}").get("message", str(exc)))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(0, 'Get "https://%s:%d%s": dial tcp %s:%d: connect: %s'
                       % (server[0], server[1], route, server[0], server[1],
                          "connection refused" if isinstance(reason, ConnectionRefusedError) else reason))


# ================================================================== kube-apiserver
def object_key(obj):
    meta = obj.get("metadata") or {}
    return "%s/%s/%s/%s" % (obj.get("apiVersion"), obj.get("kind"), meta.get("namespace") or "", meta.get("name"))


NAMESPACED_CORE = {"Pod", "Service", "ServiceAccount", "ConfigMap", "Secret", "Deployment", "DaemonSet", "Role",
                   "RoleBinding", "PodDisruptionBudget"}


def short_hash(*parts):
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:5]


class ApiServer:
    """The cluster's state and rules; one lock around every change, the state file written whole."""

    def __init__(self, version):
        self.version, self.lock = version, threading.RLock()
        with open(STATE) as handle:
            self.state = json.load(handle)

    def save(self):
        tmp = STATE + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(self.state, handle)
        os.replace(tmp, STATE)

    # ------------------------------------------------------------ objects
    def objects(self, kind=None, namespace=None):
        found = [o for o in self.state["objects"].values() if kind in (None, o["kind"])]
        return [o for o in found if namespace in (None, (o["metadata"].get("namespace") or ""))]

    def crd_for(self, api_version, kind):
        group = api_version.split("/")[0] if "/" in api_version else ""
        for crd in self.objects("CustomResourceDefinition"):
            spec = crd.get("spec") or {}
            if spec.get("group") == group and (spec.get("names") or {}).get("kind") == kind:
                for version in spec.get("versions") or []:
                    if version.get("name") == api_version.split("/")[-1]:
                        return crd, version
        return None, None

    def validate(self, obj, source):
        """None, or the error the real API server (or kubectl's REST mapping) gives for this object."""
        kind, api_version = obj.get("kind"), obj.get("apiVersion", "")
        name = (obj.get("metadata") or {}).get("name")
        if not kind or not api_version or not name:
            return 'error validating "%s": error validating data: [apiVersion, kind and metadata.name are required]' \
                % source
        crd, version = self.crd_for(api_version, kind)
        import jsonschema
        if crd is not None:
            schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {}
            body = dict((k, v) for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata"))
            own = dict((k, v) for k, v in (schema.get("properties") or {}).items()
                       if k not in ("apiVersion", "kind", "metadata"))
            try:
                jsonschema.validate(body, dict(schema, properties=own))
            except jsonschema.ValidationError as exc:
                where = ".".join(str(part) for part in exc.absolute_path)
                return 'The %s "%s" is invalid: %s: %s' % (kind, name, where or "<root>", exc.message)
            return self.webhook_refusal(crd, obj)
        import kubernetes_validate
        try:
            kubernetes_validate.validate(obj, self.version.lstrip("v"), strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            return ('resource mapping not found for name: "%s" namespace: "%s" from "%s": no matches for kind "%s" in '
                    'version "%s"\nensure CRDs are installed first'
                    % (name, (obj.get("metadata") or {}).get("namespace", ""), source, kind, api_version))
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            if "Additional properties are not allowed" in exc.message:
                return ('Error from server (BadRequest): error when creating "%s": %s in version "%s" cannot be '
                        'handled as a %s: strict decoding error: %s (at %s)'
                        % (source, kind, api_version.split("/")[-1], kind, exc.message, where or "<root>"))
            return 'The %s "%s" is invalid: %s: %s' % (kind, name, where or "<root>", exc.message)
        return None

    def webhook_refusal(self, crd, obj):
        """MetalLB's custom resources pass its validating webhook only while its controller pod runs."""
        group = crd["spec"]["group"]
        for hook in self.objects("ValidatingWebhookConfiguration"):
            for entry in hook.get("webhooks") or []:
                rules = entry.get("rules") or []
                if any(group in (rule.get("apiGroups") or []) for rule in rules):
                    service = ((entry.get("clientConfig") or {}).get("service") or {})
                    pods = [p for p in self.pods(service.get("namespace"))
                            if p["status"]["phase"] == "Running" and p["metadata"]["labels"].get("component")
                            == "controller"]
                    if not pods:
                        return ('Error from server (InternalError): error when creating "%s": Internal error occurred:'
                                ' failed calling webhook "%s": failed to call webhook: Post "https://%s.%s.svc:443/'
                                'validate": dial tcp 10.96.0.1:443: connect: connection refused'
                                % (obj["metadata"]["name"], entry.get("name"), service.get("name"),
                                   service.get("namespace")))
        return None

    def apply(self, objects, source):
        results = []
        with self.lock:
            for obj in objects:
                refusal = self.validate(obj, source)
                if refusal:
                    raise ApiError(422, refusal)
                meta = obj.setdefault("metadata", {})
                if obj["kind"] in NAMESPACED_CORE or (self.crd_for(obj["apiVersion"], obj["kind"])[0] or {}).get(
                        "spec", {}).get("scope") == "Namespaced":
                    meta.setdefault("namespace", "default")
                    if not self.state["objects"].get("v1/Namespace//%s" % meta["namespace"]) \
                            and meta["namespace"] != "default":
                        raise ApiError(404, 'Error from server (NotFound): error when creating "%s": namespaces "%s" '
                                            'not found' % (source, meta["namespace"]))
                key = object_key(obj)
                old = self.state["objects"].get(key)
                stored = dict(obj, metadata=dict(meta, uid=(old or {}).get("metadata", {}).get("uid")
                                                 or secrets.token_hex(8),
                                                 creationTimestamp=(old or {}).get("metadata", {}).get(
                                                     "creationTimestamp") or time.time()))
                if obj["kind"] == "Node" and old:
                    stored["status"] = old.get("status", {})
                self.state["objects"][key] = stored
                group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
                results.append("%s%s/%s serverside-applied" % (obj["kind"].lower(), "." + group if group else "",
                                                               meta["name"]))
            self.save()
        return results

    def delete(self, kind, namespace, name):
        with self.lock:
            keys = [k for k, o in self.state["objects"].items() if o["kind"] == kind and o["metadata"].get("name")
                    == name and (o["metadata"].get("namespace") or "") == (namespace or "")]
            for key in keys:
                del self.state["objects"][key]
            if kind == "Node":
                self.state["heartbeats"].pop(name, None)
            self.save()
        if not keys:
            raise ApiError(404, 'Error from server (NotFound): %ss "%s" not found' % (kind.lower(), name))
        return ['%s "%s" deleted' % (kind.lower(), name)]

    # ------------------------------------------------------------ nodes
    def node_view(self, node):
        beat = self.state["heartbeats"].get(node["metadata"]["name"])
        status = dict(node.get("status") or {})
        fresh = beat is not None and time.time() - beat["time"] < NODE_STALE_SECONDS
        if beat:
            status.update(beat["status"])
        if not fresh:
            status["conditions"] = [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                                     "message": "Kubelet stopped posting node status."}]
        return dict(node, status=status)

    def nodes(self):
        return [self.node_view(n) for n in self.objects("Node")]

    # ------------------------------------------------------------ pods and the controllers that make them
    def desired_pods(self):
        """Every pod the workloads call for (DaemonSets, Deployments, the Tigera operator) and the bare pods."""
        nodes = self.nodes()
        wanted = list(self.objects("Pod"))
        workloads = list(self.objects("DaemonSet")) + list(self.objects("Deployment"))
        if self.objects("Installation") and any(d["metadata"]["name"] == "tigera-operator"
                                                for d in self.objects("Deployment")):
            workloads.append(calico_node_daemonset(self.objects("Installation")[0]))
        for workload in workloads:
            template = workload["spec"]["template"]
            base = {"apiVersion": "v1", "kind": "Pod", "spec": dict(template.get("spec") or {}),
                    "metadata": {"namespace": workload["metadata"].get("namespace", "default"),
                                 "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                                 "creationTimestamp": workload["metadata"].get("creationTimestamp"),
                                 "ownerReferences": [{"kind": workload["kind"], "name": workload["metadata"]["name"]}]}}
            if workload["kind"] == "DaemonSet":
                for node in nodes:
                    if schedulable(base["spec"], node, daemonset=True) is None:
                        pod = json.loads(json.dumps(base))
                        pod["metadata"]["name"] = "%s-%s" % (workload["metadata"]["name"],
                                                             short_hash(node["metadata"]["name"]))
                        pod["spec"]["nodeName"] = node["metadata"]["name"]
                        wanted.append(pod)
            else:
                for replica in range(int(workload["spec"].get("replicas", 1))):
                    pod = json.loads(json.dumps(base))
                    pod["metadata"]["name"] = "%s-%s-%s" % (workload["metadata"]["name"],
                                                            short_hash(workload["metadata"]["name"]),
                                                            short_hash(str(replica)))
                    wanted.append(pod)
        return wanted

    def pods(self, namespace=None, node=None):
        """Every pod with its node and status. A scheduled pod stays bound to its node (a cordon moves nothing) until
        it is evicted, its node is deleted or its workload goes, as with the real scheduler."""
        nodes = self.nodes()
        by_node = dict((n["metadata"]["name"], n) for n in nodes)
        result = []
        gpus_used = {}
        desired = self.desired_pods()
        bindings = self.state.setdefault("bindings", {})
        before = dict(bindings)
        keys = ["%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]) for p in desired]
        for key in [k for k in bindings if k not in keys or bindings[k] not in by_node]:
            del bindings[key]
        for pod, key in zip(desired, keys):
            if not pod["spec"].get("nodeName") and key in bindings:
                pod["spec"]["nodeName"] = bindings[key]
        for pod, key in sorted(zip(desired, keys), key=lambda item: not item[0]["spec"].get("nodeName")):
            if namespace not in (None, pod["metadata"].get("namespace")):
                continue
            spec = pod["spec"]
            if not spec.get("nodeName"):
                spec["nodeName"], why = schedule(spec, nodes, gpus_used)
                if spec["nodeName"]:
                    bindings[key] = spec["nodeName"]
                if not spec["nodeName"]:
                    if node is None:
                        result.append(dict(pod, status={"phase": "Pending", "conditions": [
                            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": why}]}))
                    continue
            gpus_used[spec["nodeName"]] = gpus_used.get(spec["nodeName"], 0) + gpu_request(spec)
            if node not in (None, spec["nodeName"]):
                continue
            beat = (self.state["heartbeats"].get(spec["nodeName"]) or {})
            reported = (beat.get("pods") or {}).get("%s/%s" % (pod["metadata"]["namespace"], pod["metadata"]["name"]))
            fresh = spec["nodeName"] in by_node and time.time() - beat.get("time", 0) < NODE_STALE_SECONDS
            status = reported if reported and fresh else {"phase": "Pending", "reason": "ContainerCreating",
                                                          "restarts": 0, "ready": False}
            result.append(dict(pod, status=pod_status(status)))
        if bindings != before:  # kubelets list their pods every heartbeat: write only what placement changed
            self.save()
        return result

    def evict(self, namespace, name):
        """The Eviction API: refused while the pod's PodDisruptionBudgets allow no disruption (the real 429)."""
        pods = self.pods()
        pod = next((p for p in pods if p["metadata"]["namespace"] == namespace and p["metadata"]["name"] == name), None)
        if pod is None:
            raise ApiError(404, 'pods "%s" not found' % name)
        labels = pod["metadata"].get("labels") or {}
        for budget in self.objects("PodDisruptionBudget", namespace):
            selector = ((budget.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            covered = [p for p in pods if p["metadata"]["namespace"] == namespace
                       and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
            healthy = sum(1 for p in covered if p["status"]["phase"] == "Running"
                          and all(c.get("ready") for c in p["status"].get("containerStatuses") or []))
            spec = budget["spec"]
            floor = (int(spec["minAvailable"]) if "minAvailable" in spec
                     else len(covered) - int(spec.get("maxUnavailable", 0)))
            if healthy - 1 < floor:
                raise ApiError(429, "Cannot evict pod as it would violate the pod's disruption budget.")
        with self.lock:
            self.state.get("bindings", {}).pop("%s/%s" % (namespace, name), None)
            self.state["objects"].pop("v1/Pod/%s/%s" % (namespace, name), None)
            self.save()

    # ------------------------------------------------------------ bootstrap tokens and joins
    def create_token(self, ttl_seconds):
        token = "%s.%s" % (secrets.token_hex(3), secrets.token_hex(8))
        with self.lock:
            self.state["tokens"][token.split(".")[0]] = {"secret": token.split(".")[1],
                                                         "expires": time.time() + ttl_seconds}
            self.save()
        return token

    def join(self, node_name, token, ca_hash, node_ip):
        token_id, secret = ((token or "") + ".").split(".")[:2]
        known = self.state["tokens"].get(token_id)
        if not known or known["secret"] != secret or known["expires"] < time.time():
            raise ApiError(401, 'token id "%s" is invalid for this cluster or it has expired. Use "kubeadm token '
                                'create" on the control-plane node to create a new valid token' % token_id)
        if ca_hash != self.state["cluster"]["ca_hash"]:
            raise ApiError(401, "cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "
                                'pinned by --discovery-token-ca-cert-hash match')
        for node in self.nodes():
            if node["metadata"]["name"] == node_name:
                ready = node_ready(node)
                if ready:
                    raise ApiError(409, 'a Node with name "%s" and status "Ready" already exists in the cluster. You '
                                        'must delete the existing Node or change the name of this new joining Node'
                                        % node_name)
        self.register_node(node_name, node_ip, control_plane=False)

    def register_node(self, name, node_ip, control_plane):
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        spec = {}
        if control_plane:
            labels["node-role.kubernetes.io/control-plane"] = ""
            labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
            spec["taints"] = [CONTROL_PLANE_TAINT]
        with self.lock:
            self.state["objects"]["v1/Node//%s" % name] = {
                "apiVersion": "v1", "kind": "Node", "spec": spec,
                "metadata": {"name": name, "labels": labels, "uid": secrets.token_hex(8),
                             "creationTimestamp": time.time()},
                "status": {"addresses": [{"type": "InternalIP", "address": node_ip},
                                         {"type": "Hostname", "address": name}]}}
            self.save()

    def heartbeat(self, name, report):
        with self.lock:
            if "v1/Node//%s" % name not in self.state["objects"]:
                raise ApiError(404, 'nodes "%s" not found' % name)
            self.state["heartbeats"][name] = dict(report, time=time.time())
            self.save()

    def patch_node(self, name, unschedulable):
        with self.lock:
            node = self.state["objects"].get("v1/Node//%s" % name)
            if node is None:
                raise ApiError(404, 'Error from server (NotFound): nodes "%s" not found' % name)
            node["spec"]["unschedulable"] = unschedulable
            self.save()


def calico_node_daemonset(installation):
    """What the Tigera operator makes of an Installation: calico-node on every node, host network."""
    detect = (((installation.get("spec") or {}).get("calicoNetwork") or {}).get("nodeAddressAutodetectionV4") or {})
    return {"kind": "DaemonSet", "metadata": {"name": "calico-node", "namespace": "calico-system"},
            "spec": {"template": {"metadata": {"labels": {"k8s-app": "calico-node"}}, "spec": {
                "hostNetwork": True, "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "calico-node", "image": "docker.io/calico/node",
                                "env": [{"name": "IP_AUTODETECTION_METHOD",
                                         "value": "interface=%s" % detect.get("interface", "")}]}]}}}}


def gpu_request(spec):
    total = 0
    for container in spec.get("containers") or []:
        limits = ((container.get("resources") or {}).get("limits") or {})
        total += int(limits.get("nvidia.com/gpu", 0))
    return total


def tolerates(spec, taint):
    for toleration in spec.get("tolerations") or []:
        if toleration.get("operator") == "Exists" and not toleration.get("key"):
            return True
        if toleration.get("key") == taint["key"] and toleration.get("effect") in (None, "", taint["effect"]):
            return True
    return False


def node_ready(node):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions") or [])


def schedulable(spec, node, daemonset=False, gpus_used=0):
    """Why the pod cannot go on this node (None when it can)."""
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return "node(s) didn't match Pod's node affinity/selector"
    for taint in (node["spec"].get("taints") or []):
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(spec, taint):
            return "node(s) had untolerated taint {%s: }" % taint["key"]
    if daemonset:  # DaemonSet pods go on NotReady and cordoned nodes too
        return None
    if node["spec"].get("unschedulable"):
        return "node(s) were unschedulable"
    not_ready = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    if not node_ready(node) and not tolerates(spec, not_ready):
        return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
    free = int((node["status"].get("allocatable") or {}).get("nvidia.com/gpu", 0)) - gpus_used
    if gpu_request(spec) > free:
        return "Insufficient nvidia.com/gpu"
    return None


def schedule(spec, nodes, gpus_used):
    """(node name, None), or (None, the scheduler's message) - '0/2 nodes are available: ...'."""
    reasons = {}
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        why = schedulable(spec, node, gpus_used=gpus_used.get(node["metadata"]["name"], 0))
        if why is None:
            return node["metadata"]["name"], None
        reasons[why] = reasons.get(why, 0) + 1
    return None, "0/%d nodes are available: %s." % (len(nodes), ", ".join(
        "%d %s" % (count, why) for why, count in sorted(reasons.items())))


def pod_status(reported):
    """A kubelet's report -> the Pod status the API returns (phase, containerStatuses)."""
    waiting = reported.get("reason") and reported["phase"] in ("Running", "Pending") and not reported.get("ready")
    state = {"running": {}} if reported["phase"] == "Running" and not waiting else (
        {"terminated": {"exitCode": reported.get("exit_code", 0), "reason": reported.get("reason", "Completed")}}
        if reported["phase"] in ("Succeeded", "Failed") else
        {"waiting": {"reason": reported.get("reason", "ContainerCreating"), "message": reported.get("message", "")}})
    return {"phase": reported["phase"], "message": reported.get("message", ""),
            "containerStatuses": [{"name": "main", "ready": bool(reported.get("ready")),
                                   "restartCount": int(reported.get("restarts", 0)), "state": state}],
            "logs": reported.get("logs", "")}


class Handler(http.server.BaseHTTPRequestHandler):
    api = None

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def route(self, method):
        with self.api.lock:  # one request at a time: the lab's cluster is small
            self.routed(method)

    def routed(self, method):
        api, parts = self.api, self.path.split("?")[0].strip("/").split("/")
        query = dict(item.split("=", 1) for item in (self.path.split("?", 1) + [""])[1].split("&") if "=" in item)
        try:
            if parts == ["readyz"]:
                return self.reply(200, "ok")
            if method == "GET" and parts == ["nodes"]:
                return self.reply(200, api.nodes())
            if method == "GET" and parts == ["pods"]:
                return self.reply(200, api.pods(query.get("namespace"), query.get("node")))
            if method == "GET" and parts == ["objects"]:
                return self.reply(200, api.objects(query.get("kind"), query.get("namespace")))
            if method == "POST" and parts == ["apply"]:
                body = self.body()
                return self.reply(200, api.apply(body["objects"], body["source"]))
            if method == "DELETE" and len(parts) == 4 and parts[0] == "objects":
                return self.reply(200, api.delete(parts[1], parts[2], parts[3]))
            if method == "POST" and parts == ["tokens"]:
                return self.reply(200, {"token": api.create_token(self.body()["ttl"])})
            if method == "POST" and parts == ["join"]:
                body = self.body()
                api.join(body["node"], body["token"], body["ca_hash"], body["node_ip"])
                return self.reply(200, {"ca_hash": api.state["cluster"]["ca_hash"]})
            if method == "POST" and len(parts) == 3 and parts[0] == "nodes" and parts[2] == "heartbeat":
                api.heartbeat(parts[1], self.body())
                return self.reply(200, {})
            if method == "POST" and len(parts) == 3 and parts[0] == "nodes" and parts[2] == "register":
                body = self.body()
                api.register_node(parts[1], body["node_ip"], body["control_plane"])
                return self.reply(200, {})
            if method == "POST" and len(parts) == 4 and parts[0] == "pods" and parts[3] == "eviction":
                api.evict(parts[1], parts[2])
                return self.reply(201, {})
            if method == "POST" and len(parts) == 3 and parts[0] == "nodes" and parts[2] == "schedulable":
                api.patch_node(parts[1], not self.body()["schedulable"])
                return self.reply(200, {})
            if method == "GET" and parts == ["cluster"]:
                return self.reply(200, api.state["cluster"])
        except ApiError as exc:
            return self.reply(exc.status, {"message": exc.message})
        return self.reply(404, {"message": "the server could not find the requested resource"})

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")


def kube_apiserver(args):
    """The static pod: --advertise-address=IP --secure-port=PORT (from its manifest)."""
    opts = dict(arg[2:].split("=", 1) for arg in args if arg.startswith("--") and "=" in arg)
    with open(STATE) as handle:
        Handler.api = ApiServer(json.load(handle)["cluster"]["version"])
    server = http.server.ThreadingHTTPServer((opts["advertise-address"], int(opts["secure-port"])), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


# ================================================================== kubeadm
def kubeadm_config(config_path):
    """The InitConfiguration / ClusterConfiguration / JoinConfiguration documents of a kubeadm config file."""
    with open(config_path) as handle:
        docs = read_yaml_docs(handle.read())
    found = dict((doc.get("kind"), doc) for doc in docs)
    known = {"kubeadm.k8s.io/v1beta3": ("InitConfiguration", "ClusterConfiguration", "JoinConfiguration"),
             "kubeadm.k8s.io/v1beta4": ("InitConfiguration", "ClusterConfiguration", "JoinConfiguration"),
             "kubelet.config.k8s.io/v1beta1": ("KubeletConfiguration",),
             "kubeproxy.config.k8s.io/v1alpha1": ("KubeProxyConfiguration",)}
    for doc in docs:
        if doc.get("kind") not in known.get(doc.get("apiVersion"), ()):
            die('unable to decode config: no kind "%s" is registered for version "%s"'
                % (doc.get("kind"), doc.get("apiVersion")))
    return found


def sysctl_value(name):
    try:
        with open(path("/proc/sys", name.replace(".", "/"))) as handle:
            return handle.read().strip()
    except OSError:
        return None


def preflight(kind, extra_errors=()):
    """kubeadm's preflight errors that the lab can really check; prints and exits like kubeadm when any fails."""
    errors = list(extra_errors)
    with open(path("/proc/swaps")) as handle:
        if len(handle.read().strip().splitlines()) > 1:
            errors.append("[ERROR Swap]: running with swap on is not supported. Please disable swap")
    for name in ("net/bridge/bridge-nf-call-iptables", "net/ipv4/ip_forward"):
        value = sysctl_value(name.replace("/", "."))
        if value is None:
            errors.append("[ERROR FileContent--proc-sys-%s]: /proc/sys/%s does not exist"
                          % (name.replace("/", "-"), name))
        elif value != "1":
            errors.append("[ERROR FileContent--proc-sys-%s]: /proc/sys/%s contents are not set to 1"
                          % (name.replace("/", "-"), name))
    if not os.path.exists(CONTAINERD_SOCK):
        errors.append("[ERROR CRI]: container runtime is not running: output: time=\"-\" level=fatal msg=\"validate "
                      "service connection: validate CRI v1 runtime API for endpoint \\\"unix:///var/run/containerd/"
                      "containerd.sock\\\": rpc error: code = Unavailable desc = connection error\"")
    print("[preflight] Running pre-flight checks")
    if errors:
        sys.stderr.write("error execution phase preflight: [preflight] Some fatal errors occurred:\n")
        for error in errors:
            sys.stderr.write("\t%s\n" % error)
        sys.stderr.write("[preflight] If you know what you are doing, you can make a check non-fatal with "
                         "`--ignore-preflight-errors=...`\nTo see the stack trace of this error execute with --v=5 or "
                         "higher\n")
        sys.exit(1)


def static_pod(name, command):
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "kube-system"},
                           "spec": {"hostNetwork": True, "containers": [{"name": name, "command": command,
                                                                         "image": "registry.k8s.io/%s" % name}]}})


def kubeadm_init(args):
    if len(args) != 2 or args[0] != "--config":
        die("lab double: kubeadm init is answered with --config FILE only (the role never passes flags)", 64)
    docs = kubeadm_config(args[1])
    init, cluster = docs.get("InitConfiguration") or {}, docs.get("ClusterConfiguration") or {}
    version, installed = cluster.get("kubernetesVersion", ""), installed_version()
    endpoint = init.get("localAPIEndpoint") or {}
    address, port = endpoint.get("advertiseAddress"), int(endpoint.get("bindPort", 6443))
    node = (init.get("nodeRegistration") or {}).get("name") or socket.gethostname()
    networking = cluster.get("networking") or {}
    errors = []
    if version.lstrip("v") != installed:
        errors.append("[ERROR KubeletVersion]: the kubelet version is %s, the control plane version %s" % (
            installed, version))
    existing = os.path.join(MANIFESTS, "kube-apiserver.yaml")
    if os.path.exists(existing):
        errors.append("[ERROR FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml]: %s already exists"
                      % "/etc/kubernetes/manifests/kube-apiserver.yaml")
    if address not in [a.split("/")[0] for a in local_addresses()]:
        errors.append("[ERROR AdvertiseAddress]: %s is not an address of this host" % address)
    preflight("init", errors)
    token = (init.get("bootstrapTokens") or [{}])[0].get("token") \
        or "%s.%s" % (secrets.token_hex(3), secrets.token_hex(8))
    ca_hash = "sha256:" + hashlib.sha256(secrets.token_bytes(32)).hexdigest()
    os.makedirs(os.path.dirname(STATE), exist_ok=True)
    state = {"cluster": {"version": "v" + installed, "advertise": address, "port": port, "ca_hash": ca_hash,
                         "pod_cidr": networking.get("podSubnet"), "service_cidr": networking.get("serviceSubnet"),
                         "control_plane": node},
             "tokens": {token.split(".")[0]: {"secret": token.split(".")[1], "expires": time.time() + 86400}},
             "objects": {}, "heartbeats": {}}
    for name in ("kube-system", "kube-public", "kube-node-lease", "default"):
        state["objects"]["v1/Namespace//%s" % name] = {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    # what kubeadm uploads: the ClusterConfiguration it was made with
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeadm-config",
                                                                        "namespace": "kube-system"},
                  "data": {"ClusterConfiguration": yaml.safe_dump(cluster)}}
    state["objects"][object_key(config_map)] = config_map
    # the essential addons: CoreDNS (pod network) and kube-proxy (host network)
    for kind, name, host_network in (("Deployment", "coredns", False), ("DaemonSet", "kube-proxy", True)):
        spec = {"hostNetwork": host_network, "tolerations": [{"operator": "Exists"}] if host_network else [
            {"key": CONTROL_PLANE_TAINT["key"], "effect": "NoSchedule"}],
            "containers": [{"name": name, "image": "registry.k8s.io/%s" % name}]}
        body = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": "kube-system"},
                "spec": {"template": {"metadata": {"labels": {"k8s-app": name}}, "spec": spec}}}
        if kind == "Deployment":
            body["spec"]["replicas"] = 2
        body["metadata"]["creationTimestamp"] = time.time()
        state["objects"][object_key(body)] = body
    with open(STATE, "w") as handle:
        json.dump(state, handle)
    server = "https://%s:%d" % (address, port)
    write_file(path("/etc/kubernetes/pki/ca.crt"), "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n"
               % base64.b64encode(ca_hash.encode()).decode())
    write_file(ADMIN_CONF, kubeconfig(server, "kubernetes-admin"), 0o600)
    write_file(KUBELET_CONF, kubeconfig(server, "system:node:%s" % node), 0o600)
    write_file(KUBELET_CONFIG, yaml.safe_dump(dict(docs.get("KubeletConfiguration") or {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"}, nodeName=node,
        nodeIP=address)))
    write_file(os.path.join(MANIFESTS, "kube-apiserver.yaml"), static_pod("kube-apiserver", [
        "kube-apiserver", "--advertise-address=%s" % address, "--secure-port=%d" % port,
        "--service-cluster-ip-range=%s" % networking.get("serviceSubnet")]))
    for name in ("etcd", "kube-controller-manager", "kube-scheduler"):
        write_file(os.path.join(MANIFESTS, "%s.yaml" % name), static_pod(name, [name]))
    restart_kubelet()
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            call((address, port), "GET", "/readyz", timeout=2)
            break
        except ApiError:
            time.sleep(0.5)
    else:
        die("[api-check] The API server is not healthy after 1m0s\nerror execution phase wait-control-plane: could "
            "not initialize a Kubernetes cluster")
    call((address, port), "POST", "/nodes/%s/register" % node, {"node_ip": address, "control_plane": True})
    output = fixture("kubernetes/kubeadm-init-success-v1.32.txt")
    output = output.replace("v1.32.13", "v" + installed).replace("10.60.63.1", address).replace("oss01", node)
    output = output.replace("cj1u0k.fucyrjoxei8zw43m", token).replace(
        "sha256:0b54fa516bad51f8de14b4300b69f020212682576ecc601d357879afe3009143", ca_hash)
    output = "\n".join(line for line in output.splitlines() if "remote version is much newer" not in line
                       and "ethtool not found" not in line and "sandbox image" not in line) + "\n"
    sys.stdout.write(output)


def local_addresses():
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False).stdout
    return re.findall(r"inet (\S+)", out) + ["127.0.0.1/8"]


def restart_kubelet():
    if ROOT == "/":
        subprocess.run(["systemctl", "restart", "kubelet"], check=False)


def kubeadm_join(args):
    if args[:1] == ["--config"] and len(args) == 2:
        join = kubeadm_config(args[1]).get("JoinConfiguration") or {}
        discovery = ((join.get("discovery") or {}).get("bootstrapToken") or {})
        endpoint, token = discovery.get("apiServerEndpoint"), discovery.get("token")
        hashes = discovery.get("caCertHashes") or []
        node = (join.get("nodeRegistration") or {}).get("name") or socket.gethostname()
        node_ip = (((join.get("nodeRegistration") or {}).get("kubeletExtraArgs")) or [{}])
        node_ip = next((arg.get("value") for arg in node_ip if isinstance(arg, dict) and arg.get("name")
                        == "node-ip"), None)
    else:
        die("lab double: kubeadm join is answered with --config FILE only (the token stays out of argv)", 64)
    errors = []
    if os.path.exists(KUBELET_CONF):
        errors.append("[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already "
                      "exists")
    preflight("join", errors)
    host, port = endpoint.rsplit(":", 1)
    server = (host, int(port))
    deadline = time.time() + 20
    while True:
        try:
            call(server, "GET", "/readyz", timeout=2)
            break
        except ApiError as exc:
            if time.time() > deadline:
                die("[discovery] Failed to connect to API Server \"%s\": %s\nerror execution phase preflight: couldn't "
                    "validate the identity of the API Server: %s" % (endpoint, exc.message, exc.message))
            time.sleep(1)
    print("[preflight] Reading configuration from the cluster...")
    try:
        call(server, "POST", "/join", {"node": node, "token": token, "ca_hash": (hashes or [""])[0],
                                       "node_ip": node_ip or local_addresses()[0].split("/")[0]})
    except ApiError as exc:
        die("error execution phase kubelet-start: %s\nTo see the stack trace of this error execute with --v=5 or "
            "higher" % exc.message)
    write_file(path("/etc/kubernetes/pki/ca.crt"), "-----BEGIN CERTIFICATE-----\nlab\n-----END CERTIFICATE-----\n")
    write_file(KUBELET_CONF, kubeconfig("https://%s" % endpoint, "system:node:%s" % node), 0o600)
    write_file(KUBELET_CONFIG, yaml.safe_dump({"apiVersion": "kubelet.config.k8s.io/v1beta1",
                                               "kind": "KubeletConfiguration", "cgroupDriver": "systemd",
                                               "nodeName": node, "nodeIP": node_ip}))
    restart_kubelet()
    body = fixture("kubernetes/kubeadm-join-success-worker.txt").split(">---")[0]
    sys.stdout.write("\n".join(line[4:] if line.startswith("    ") else line for line in body.splitlines())
                     .replace("[preflight] Running pre-flight checks\n", "").rstrip() + "\n")


def kubeadm_reset(args):
    if args not in (["-f"], ["--force"]):
        die("lab double: kubeadm reset is answered with -f only", 64)
    if ROOT == "/":
        subprocess.run(["systemctl", "stop", "kubelet"], check=False)
    for target in (MANIFESTS, path("/etc/kubernetes/pki"), path("/var/lib/etcd"), path("/var/lib/kubelet")):
        shutil.rmtree(target, ignore_errors=True)
    for target in (ADMIN_CONF, KUBELET_CONF, path("/etc/kubernetes/super-admin.conf")):
        if os.path.exists(target):
            os.remove(target)
    print("[reset] Stopping the kubelet service\n[reset] Deleting contents of directories: [/etc/kubernetes/manifests "
          "/var/lib/kubelet /etc/kubernetes/pki]\n[reset] Deleting files: [/etc/kubernetes/admin.conf "
          "/etc/kubernetes/kubelet.conf]\n\nThe reset process does not clean CNI configuration. To do so, you must "
          "remove /etc/cni/net.d")


def kubeadm_token(args):
    if args[:2] != ["create", "--print-join-command"]:
        die("lab double: kubeadm token is answered with 'create --print-join-command [--ttl D]' only", 64)
    ttl = 86400
    if args[2:4] and args[2] == "--ttl":
        match = re.match(r"^(\d+)([smh])$", args[3])
        ttl = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
    server = kubeconfig_server(ADMIN_CONF)
    try:
        token = call(server, "POST", "/tokens", {"ttl": ttl})["token"]
        cluster = call(server, "GET", "/cluster")
    except ApiError as exc:
        die("timed out waiting for the condition: %s" % exc.message)
    print("kubeadm join %s:%d --token %s --discovery-token-ca-cert-hash %s "
          % (cluster["advertise"], cluster["port"], token, cluster["ca_hash"]))


def kubeadm(args):
    if args in (["version", "-o", "short"], ["version", "--output=short"]):
        version = installed_version()
        print("v%s" % version if version else "v1.34.1")
        return
    commands = {"init": kubeadm_init, "join": kubeadm_join, "reset": kubeadm_reset, "token": kubeadm_token}
    if not args or args[0] not in commands:
        die("lab double: kubeadm %s is not answered (init, join, reset, token create, version)" % " ".join(args), 64)
    commands[args[0]](args[1:])


# ================================================================== kubelet
def kubelet(args):
    """The kubelet service: config first, then the static pods and a status report every HEARTBEAT_SECONDS."""
    if not os.path.exists(KUBELET_CONFIG):
        die('E0000 run.go:72] "command failed" err="failed to load kubelet config file, path: /var/lib/kubelet/'
            'config.yaml, error: failed to load Kubelet config file /var/lib/kubelet/config.yaml, error failed to read '
            'kubelet config file \\"/var/lib/kubelet/config.yaml\\", error: open /var/lib/kubelet/config.yaml: no such '
            'file or directory"')
    with open(path("/proc/swaps")) as handle:
        if len(handle.read().strip().splitlines()) > 1:
            die('E0000 run.go:72] "command failed" err="failed to run Kubelet: running with swap on is not supported"')
    with open(KUBELET_CONFIG) as handle:
        config = yaml.safe_load(handle)
    node = config.get("nodeName") or socket.gethostname()
    apiserver = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            apiserver = static_apiserver(apiserver)
            try:
                report_node(kubeconfig_server(KUBELET_CONF), node, config)
            except (ApiError, OSError) as exc:
                sys.stderr.write("E0000 kubelet_node_status.go] \"Unable to update node status\" err=\"%s\"\n"
                                 % getattr(exc, "message", exc))
            time.sleep(HEARTBEAT_SECONDS)
    finally:
        if apiserver is not None and apiserver.poll() is None:
            apiserver.terminate()


def static_apiserver(process):
    """Run the kube-apiserver static pod while its manifest exists (and the scenario does not take it down)."""
    manifest = os.path.join(MANIFESTS, "kube-apiserver.yaml")
    wanted = os.path.exists(manifest) and scenario() != "k8s_api_down"
    if process is not None and process.poll() is None:
        if wanted:
            return process
        process.terminate()
        process.wait()
        return None
    if not wanted:
        return None
    with open(manifest) as handle:
        command = yaml.safe_load(handle)["spec"]["containers"][0]["command"]
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "kube-apiserver"] + command[1:])


def stale_cni():
    """After a reboot with CNI state left behind: allocations under /var/lib/cni and no calico nodename."""
    networks = os.path.join(CNI_STATE, "networks")
    return os.path.isdir(networks) and any(os.listdir(networks)) and not os.path.exists(CALICO_NODENAME)


def version_tuple(tag):
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", tag or "")
    return tuple(int(part) for part in match.groups()) if match else None


def node_gpu():
    """The GPU the node's nvidia-smi names ('' without one)."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=20, check=False)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def run_pod(spec, pods_state, key):
    """Run a pod with a command once (restartPolicy Never): its output are its logs."""
    container = spec["containers"][0]
    command = list(container.get("command") or []) + list(container.get("args") or [])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        code, logs = done.returncode, done.stdout + done.stderr
    except OSError as exc:
        code, logs = 127, str(exc)
    pods_state[key] = {"phase": "Succeeded" if code == 0 else "Failed", "exit_code": code, "logs": logs,
                       "reason": "Completed" if code == 0 else "Error", "ready": False, "restarts": 0}


def report_node(server, node, config):
    runtime_ready = os.path.exists(CONTAINERD_SOCK)
    if os.path.exists(KUBELET_PODS):
        with open(KUBELET_PODS) as handle:
            done_pods = json.load(handle)
    else:
        done_pods = {}
    pods = call(server, "GET", "/pods?node=%s" % node)
    reports, gpus = {}, 0
    stale = stale_cni()
    for pod in pods:
        spec, meta = pod["spec"], pod["metadata"]
        key = "%s/%s" % (meta["namespace"], meta["name"])
        image = (spec.get("containers") or [{}])[0].get("image", "")
        network_ready = os.path.exists(CNI_CONF) and not stale
        if not runtime_ready:
            reports[key] = {"phase": "Pending", "reason": "ContainerCreating", "message": "container runtime is down"}
        elif meta["name"].startswith("calico-node"):
            if not stale:
                write_file(CNI_CONF, json.dumps({"name": "k8s-pod-network", "cniVersion": "0.3.1",
                                                 "plugins": [{"type": "calico"}, {"type": "portmap"}]}))
                write_file(CALICO_NODENAME, node)
            reports[key] = {"phase": "Running", "ready": not stale, "restarts": 0}
        elif not spec.get("hostNetwork") and not network_ready:
            message = fixture("kubernetes/cni-failed-to-setup-network-for-sandbox-calico-nodename.txt").replace(
                "\n", " ").split("[Warning] ", 1)[-1].strip() if stale else \
                "network is not ready: container runtime network not ready: NetworkReady=false " \
                "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
            reports[key] = {"phase": "Pending", "reason": "ContainerCreating", "message": message}
        elif "k8s-device-plugin" in image:
            version, gpu = version_tuple(image.rsplit(":", 1)[-1]), node_gpu()
            if gpu and "GB10" in gpu and (version is None or version < FIXED_DEVICE_PLUGIN):
                # it crashes at each start; kubelet starts it again after a back-off of 10 s doubling to 5 min
                last = done_pods.get(key, {"restarts": 0, "at": 0})
                if time.time() - last["at"] >= min(10 * 2 ** last["restarts"], 300):
                    last = {"restarts": last["restarts"] + 1, "at": time.time()}
                reports[key] = {"phase": "Running", "reason": "CrashLoopBackOff", "ready": False,
                                "restarts": last["restarts"], "message": "back-off restarting failed container",
                                "logs": "error getting device memory: Not Supported\n"}
                done_pods[key] = last
            else:
                recorded = fixture("kubernetes/gpu-operator-gb10-device-plugin-fixed-ignoring-memory.txt")
                reports[key] = {"phase": "Running", "ready": True, "restarts": 0,
                                "logs": "\n".join(line.strip() for line in recorded.splitlines()) + "\n"}
                gpus = 1 if gpu else 0
        elif spec.get("restartPolicy") == "Never" and (spec.get("containers") or [{}])[0].get("command"):
            if key not in done_pods or "phase" not in done_pods[key]:
                run_pod(spec, done_pods, key)
            reports[key] = done_pods[key]
        else:
            reports[key] = {"phase": "Running", "ready": True, "restarts": 0}
    with open(KUBELET_PODS + ".tmp", "w") as handle:
        json.dump(dict((k, v) for k, v in done_pods.items() if k in reports), handle)
    os.replace(KUBELET_PODS + ".tmp", KUBELET_PODS)
    network_ready = os.path.exists(CNI_CONF) and not stale
    ready = runtime_ready and network_ready
    message = "kubelet is posting ready status" if ready else (
        "container runtime is down" if not runtime_ready else
        "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin "
        "returns error: cni plugin not initialized" if not stale else
        "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin "
        "returns error: " + fixture("kubernetes/cni-calico-destroy-network-kubelet-journal.txt").split(
            "plugin type=\\\"calico\\\" failed (delete): ", 1)[-1].split("\"", 1)[0])
    with open(path("/etc/os-release")) as handle:
        os_image = dict(line.split("=", 1) for line in handle.read().splitlines() if "=" in line).get(
            "PRETTY_NAME", "").strip('"')
    runtime = subprocess.run(["containerd", "--version"], capture_output=True, text=True, check=False).stdout.split()
    allocatable = {"cpu": str(os.cpu_count()), "memory": "%dKi" % (os.sysconf("SC_PAGE_SIZE") * os.sysconf(
        "SC_PHYS_PAGES") // 1024), "pods": "110", "nvidia.com/gpu": str(gpus)}
    call(server, "POST", "/nodes/%s/heartbeat" % node, {
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                   "reason": "KubeletReady" if ready else "KubeletNotReady", "message": message}],
                   "allocatable": allocatable, "capacity": allocatable,
                   "nodeInfo": {"kubeletVersion": "v%s" % installed_version("kubelet"), "osImage": os_image,
                                "kernelVersion": os.uname().release,
                                "containerRuntimeVersion": "containerd://%s" % (runtime[2] if len(runtime) > 2
                                                                                else "unknown")}},
        "pods": reports})


# ================================================================== kubectl
def age(created):
    seconds = max(0, int(time.time() - (created or time.time())))
    if seconds < 120:
        return "%ds" % seconds
    return "%dm" % (seconds // 60) if seconds < 7200 else "%dh" % (seconds // 3600)


def table(rows, columns):
    widths = [max(len(str(row[i])) for row in [columns] + rows) for i in range(len(columns))]
    return "\n".join("   ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in [columns] + rows)


def node_line(node, wide):
    conditions = node["status"].get("conditions") or []
    ready = next((c for c in conditions if c["type"] == "Ready"), {"status": "Unknown"})
    status = {"True": "Ready", "False": "NotReady"}.get(ready["status"], "NotReady")
    if node["spec"].get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = ",".join(sorted(label.split("/", 1)[1] for label in node["metadata"].get("labels", {})
                            if label.startswith("node-role.kubernetes.io/"))) or "<none>"
    info = node["status"].get("nodeInfo") or {}
    row = [node["metadata"]["name"], status, roles, age(node["metadata"].get("creationTimestamp")),
           info.get("kubeletVersion", "")]
    if wide:
        address = next((a["address"] for a in node["status"].get("addresses") or [] if a["type"] == "InternalIP"),
                       "<none>")
        row += [address, "<none>", info.get("osImage", ""), info.get("kernelVersion", ""),
                info.get("containerRuntimeVersion", "")]
    return row


def pod_line(pod, all_namespaces):
    status = pod["status"]
    container = (status.get("containerStatuses") or [{}])[0]
    state = container.get("state") or {}
    shown = (state.get("waiting") or {}).get("reason") or (state.get("terminated") or {}).get("reason") \
        or status["phase"]
    row = ([pod["metadata"]["namespace"]] if all_namespaces else []) + [
        pod["metadata"]["name"], "%d/1" % (1 if container.get("ready") else 0), shown,
        str(container.get("restartCount", 0)), age(pod["metadata"].get("creationTimestamp"))]
    return row


def kubectl(args):
    conf, rest = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config"), []
    index = 0
    while index < len(args):
        if args[index] == "--kubeconfig":
            conf, index = args[index + 1], index + 2
        elif args[index].startswith("--kubeconfig="):
            conf, index = args[index].split("=", 1)[1], index + 1
        elif args[index] == "--request-timeout":  # a global flag: every request of the run
            REQUEST_TIMEOUT["seconds"], index = request_timeout(args[index + 1]), index + 2
        elif args[index].startswith("--request-timeout="):
            REQUEST_TIMEOUT["seconds"], index = request_timeout(args[index].split("=", 1)[1]), index + 1
        else:
            rest.append(args[index])
            index += 1
    if rest[:2] == ["version", "--client"]:
        print("Client Version: v%s" % installed_version("kubectl"))
        return
    if not os.path.exists(conf):
        die("error: stat %s: no such file or directory" % conf)
    server = kubeconfig_server(conf)
    try:
        kubectl_command(server, rest)
    except ApiError as exc:
        if exc.status == 0:
            die("The connection to the server %s:%d was refused - did you specify the right host or port?"
                % server)
        die(exc.message if exc.message.startswith(("Error", "error", "The ")) else "Error from server: " + exc.message)


def option(args, name, default=None):
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


RESOURCES = {"ipaddresspools": "IPAddressPool", "l2advertisements": "L2Advertisement", "installations": "Installation",
             "secrets": "Secret", "namespaces": "Namespace", "daemonsets": "DaemonSet", "deployments": "Deployment", "deployment": "Deployment",
             "configmap": "ConfigMap", "configmaps": "ConfigMap", "crd": "CustomResourceDefinition",
             "pdb": "PodDisruptionBudget", "poddisruptionbudgets": "PodDisruptionBudget"}
VALUED = ("-o", "--output", "-n", "--namespace", "-f", "--filename", "--field-manager", "--tail", "--raw", "--timeout")


def positional(args):
    """The arguments that are neither options nor their values."""
    found, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in VALUED:
            skip = True
        elif not arg.startswith("-"):
            found.append(arg)
    return found


def without_logs(pod):
    return dict(pod, status=dict((k, v) for k, v in pod["status"].items() if k != "logs"))


def kubectl_command(server, args):
    output, namespace = option(args, "-o") or option(args, "--output"), option(args, "-n") or option(
        args, "--namespace")
    everywhere = "-A" in args or "--all-namespaces" in args
    words = positional(args)
    if args[:2] == ["get", "--raw"]:
        print(call(server, "GET", args[2]))
    elif args[:2] == ["get", "nodes,pods"] and output == "json":
        items = [dict(n, kind="Node") for n in call(server, "GET", "/nodes")]
        items += [dict(without_logs(p), kind="Pod") for p in call(server, "GET", "/pods")]
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
    elif args[:2] == ["get", "nodes"]:
        nodes = call(server, "GET", "/nodes")
        if output == "json":
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}, indent=2))
        else:
            columns = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"] + (
                ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
                if output == "wide" else [])
            print(table([node_line(n, output == "wide") for n in nodes], columns))
    elif args[:2] == ["get", "pods"]:
        pods = call(server, "GET", "/pods" + ("" if everywhere else "?namespace=%s" % (namespace or "default")))
        if output == "json":
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": [without_logs(p) for p in pods]}, indent=2))
        elif not pods:
            sys.stderr.write("No resources found%s.\n" % ("" if everywhere else " in %s namespace" % (
                namespace or "default")))
        else:
            columns = (["NAMESPACE"] if everywhere else []) + ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
            print(table([pod_line(p, everywhere) for p in pods], columns))
    elif words[:1] == ["get"] and len(words) >= 2 and output == "json":
        kind = RESOURCES.get(words[1].split(".")[0])
        if kind is None:
            die('error: the server doesn\'t have a resource type "%s"' % words[1])
        scope = "" if everywhere or not namespace else "&namespace=%s" % namespace
        items = call(server, "GET", "/objects?kind=%s%s" % (kind, scope))
        if len(words) == 3:
            found = [item for item in items if item["metadata"]["name"] == words[2]]
            if not found:
                die('Error from server (NotFound): %s "%s" not found' % (words[1], words[2]))
            print(json.dumps(found[0], indent=2))
        else:
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
    elif args[:1] == ["apply"]:
        if "--server-side" not in args:
            die("lab double: kubectl apply is answered with --server-side only (the roles apply server-side)", 64)
        source = option(args, "-f") or option(args, "--filename")
        text = sys.stdin.read() if source == "-" else open(source).read()
        objects = read_yaml_docs(text)
        for line in call(server, "POST", "/apply", {"objects": objects, "source": source}):
            print(line)
    elif words[:2] == ["delete", "node"]:
        print(call(server, "DELETE", "/objects/Node//%s" % words[2])[0])
    elif words[:1] == ["delete"] and len(words) == 3 and RESOURCES.get(words[1]) in ("PodDisruptionBudget", "Deployment"):
        kind = RESOURCES[words[1]]
        try:
            call(server, "DELETE", "/objects/%s/%s/%s" % (kind, namespace or "default", words[2]))
            shown = {"PodDisruptionBudget": "poddisruptionbudget.policy", "Deployment": "deployment.apps"}[kind]
            print('%s "%s" deleted' % (shown, words[2]))
        except ApiError as exc:
            if "--ignore-not-found" not in args:
                raise exc
    elif words[:2] == ["delete", "pod"]:
        try:
            print(call(server, "DELETE", "/objects/Pod/%s/%s" % (namespace or "default", words[2]))[0])
        except ApiError as exc:
            if "--ignore-not-found" not in args and "--ignore-not-found=true" not in args:
                raise exc
    elif words[:1] in (["cordon"], ["uncordon"]):
        call(server, "POST", "/nodes/%s/schedulable" % words[1], {"schedulable": words[0] == "uncordon"})
        print("node/%s %s" % (words[1], words[0] + "ed"))
    elif words[:1] == ["drain"] and len(words) == 2:
        drain(server, words[1], args)
    elif words[:1] == ["logs"]:
        name = words[1]
        pods = [p for p in call(server, "GET", "/pods?namespace=%s" % (namespace or "default"))
                if p["metadata"]["name"] == name]
        if not pods:
            die('Error from server (NotFound): pods "%s" not found' % name)
        logs = pods[0]["status"].get("logs", "").splitlines(True)
        tail = option(args, "--tail")
        sys.stdout.write("".join(logs[-int(tail):] if tail else logs))
    else:
        die("lab double: kubectl %s is not answered (get nodes|pods|--raw, get <kind> -o json, apply --server-side, "
            "delete node|pod|pdb|deployment, cordon, uncordon, drain, logs, version --client)" % " ".join(args), 64)


GO_DURATION_UNITS = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}


def go_duration(text):
    """A Go duration as time.ParseDuration reads it (90s, 1m30s, 500ms, 1.5h) -> seconds; None when it is not one."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * GO_DURATION_UNITS[u] for n, u in parts)


def request_timeout(value):
    """kubectl's --request-timeout as client-go's clientcmd.ParseTimeout reads it (its wording, not a recording):
    whole seconds or a Go duration; 0 waits as long as the server takes (None)."""
    seconds = int(value) if value.isdigit() else go_duration(value)
    if seconds is None:
        die("error: Invalid timeout value. Timeout must be a single integer in seconds, or an integer followed by a "
            "corresponding time unit (e.g. 1s | 2m | 3h)")
    return seconds or None


def go_seconds(duration):
    """kubectl drain's --timeout (a Go duration) -> seconds."""
    seconds = go_duration(duration)
    if seconds is None:
        die('error: invalid argument "%s" for "--timeout" flag: time: invalid duration "%s"' % (duration, duration))
    return seconds


def drain(server, node, args):
    """kubectl drain NODE --ignore-daemonsets [--delete-emptydir-data] [--timeout=D]: cordon, then evict every pod
    through the Eviction API, retrying one that a PodDisruptionBudget protects every 5 s with the recorded message
    (kubernetes/kubectl-drain-blocked-by-pdb.txt) until the global timeout. The timeout's wording follows kubectl's
    drain code (k8s.io/kubectl/pkg/drain), not a recording."""
    if "--ignore-daemonsets" not in args:
        die("lab double: kubectl drain is answered with --ignore-daemonsets only (the roles drain that way)", 64)
    timeout = go_seconds(option(args, "--timeout")) if option(args, "--timeout") else 0
    known = dict((n["metadata"]["name"], n) for n in call(server, "GET", "/nodes"))
    if node not in known:
        die('Error from server (NotFound): nodes "%s" not found' % node)
    if known[node]["spec"].get("unschedulable"):
        print("node/%s already cordoned" % node)
    else:
        call(server, "POST", "/nodes/%s/schedulable" % node, {"schedulable": False})
        print("node/%s cordoned" % node)
    pods = call(server, "GET", "/pods?node=%s" % node)
    owner = dict(("%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]),
                  ((p["metadata"].get("ownerReferences") or [{}])[0]).get("kind")) for p in pods)
    bare = [key for key, kind in owner.items() if kind is None]
    if bare and "--force" not in args:
        reason = "cannot delete Pods that declare no controller (use --force to override): " + ", ".join(bare)
        sys.stderr.write('error: unable to drain node "%s" due to error: %s, continuing command...\n'
                         'There are pending nodes to be drained:\n %s\n%s\n' % (node, reason, node, reason))
        sys.exit(1)
    daemons = [key for key, kind in owner.items() if kind == "DaemonSet"]
    if daemons:
        print("Warning: ignoring DaemonSet-managed Pods: " + ", ".join(daemons))
    pending = [key for key in owner if key not in daemons]
    deadline = time.time() + timeout if timeout else None
    while pending:
        for key in list(pending):
            namespace, name = key.split("/", 1)
            print("evicting pod %s" % key, flush=True)
            try:
                call(server, "POST", "/pods/%s/%s/eviction" % (namespace, name), {})
                print("pod/%s evicted" % name, flush=True)
                pending.remove(key)
            except ApiError as exc:
                if exc.status != 429:
                    raise
                print('error when evicting pods/"%s" -n "%s" (will retry after 5s): %s' % (name, namespace, exc.message),
                      flush=True)
        if pending and deadline and time.time() + 5 > deadline:
            time.sleep(max(0.0, deadline - time.time()))
            namespace, name = pending[0].split("/", 1)
            error = 'error when evicting pods/"%s" -n "%s": global timeout reached: %ds' % (name, namespace, timeout)
            sys.stderr.write('There are pending pods in node "%s" when an error occurred: %s\n'
                             'error: unable to drain node "%s" due to error: %s, continuing command...\n'
                             'There are pending nodes to be drained:\n %s\n%s\n' % (node, error, node, error, node, error))
            sys.exit(1)
        if pending:
            time.sleep(5)
    print("node/%s drained" % node)


# ================================================================== helm
HELM_VALUED = ("--kubeconfig", "-n", "--namespace", "--version", "-f", "--values", "-o", "--output")


def helm(args):
    words, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in HELM_VALUED:
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    if words == ["version"] and "--short" in args:
        print("v3.16.4+g7877b45")
        return
    conf = option(args, "--kubeconfig") or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    server = kubeconfig_server(conf)
    namespace = option(args, "-n") or option(args, "--namespace") or "default"
    if words == ["list"] and (option(args, "-o") or option(args, "--output")) == "json":
        secrets_found = call(server, "GET", "/objects?kind=Secret&namespace=%s" % namespace)
        releases = [json.loads(base64.b64decode(s["data"]["release"]).decode()) for s in secrets_found
                    if s["metadata"].get("labels", {}).get("owner") == "helm"]
        latest = {}
        for release in releases:  # helm list shows each release's latest revision
            if int(release["revision"]) >= int(latest.get(release["name"], {}).get("revision", 0)):
                latest[release["name"]] = release
        print(json.dumps([dict((k, r[k]) for k in ("name", "namespace", "revision", "status", "chart", "app_version"))
                          for r in latest.values()]))
        return
    if words[:2] == ["get", "values"] and len(words) == 3:
        records = [json.loads(base64.b64decode(s["data"]["release"]).decode())
                   for s in call(server, "GET", "/objects?kind=Secret&namespace=%s" % namespace)
                   if s["metadata"].get("labels", {}).get("owner") == "helm"
                   and s["metadata"].get("labels", {}).get("name") == words[2]]
        if not records:
            die("Error: release: not found")
        latest = max(records, key=lambda record: int(record["revision"]))
        print(json.dumps(latest.get("config") or None))
        return
    if words[:1] != ["upgrade"] or "--install" not in args or len(words) != 3:
        die("lab double: helm %s is not answered (upgrade --install NAME CHART, list -o json, version --short)"
            % " ".join(args), 64)
    release, chart = words[1], words[2]
    values_file = option(args, "-f") or option(args, "--values")
    with tarfile.open(chart) as archive:
        top = archive.getnames()[0].split("/")[0]
        meta = yaml.safe_load(archive.extractfile("%s/Chart.yaml" % top))
        values = yaml.safe_load(archive.extractfile("%s/values.yaml" % top)) or {}
    if option(args, "--version") not in (None, meta["version"]):
        die('Error: chart "%s" version "%s" not found in %s' % (meta["name"], option(args, "--version"), chart))
    supplied = {}
    if values_file:
        with open(values_file) as handle:
            supplied = yaml.safe_load(handle) or {}
        merge(values, json.loads(json.dumps(supplied)))
    objects = render_gpu_operator(values, namespace) if meta["name"] == "gpu-operator" else []
    if "--create-namespace" in args:
        objects.insert(0, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    existing = [s for s in call(server, "GET", "/objects?kind=Secret&namespace=%s" % namespace)
                if s["metadata"].get("labels", {}).get("owner") == "helm"
                and s["metadata"].get("labels", {}).get("name") == release]
    revision = len(existing) + 1
    record = {"name": release, "namespace": namespace, "revision": str(revision), "status": "deployed",
              "chart": "%s-%s" % (meta["name"], meta["version"]), "app_version": meta.get("appVersion", ""),
              "config": supplied}
    call(server, "POST", "/apply", {"objects": objects, "source": chart})
    call(server, "POST", "/apply", {"source": chart, "objects": [{
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": "sh.helm.release.v1.%s.v%d" % (release, revision), "namespace": namespace,
                     "labels": {"owner": "helm", "name": release, "version": str(revision)}},
        "data": {"release": base64.b64encode(json.dumps(record).encode()).decode()}}]})
    print('Release "%s" has been upgraded. Happy Helming!\nNAME: %s\nNAMESPACE: %s\nSTATUS: deployed\nREVISION: %d'
          % (release, release, namespace, revision) if revision > 1 else
          'Release "%s" does not exist. Installing it now.\nNAME: %s\nNAMESPACE: %s\nSTATUS: deployed\nREVISION: 1'
          % (release, release, namespace))


def merge(base, override):
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value


def render_gpu_operator(values, namespace):
    """The GPU Operator's workloads as its chart and operator create them, from the merged values."""
    def daemonset(name, image, labels):
        return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": namespace},
                "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                                    {"key": CONTROL_PLANE_TAINT["key"], "operator": "Exists",
                                     "effect": "NoSchedule"}],
                    "containers": [{"name": name, "image": image}]}}}}
    operator = values.get("operator") or {}
    objects = [{"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "gpu-operator", "namespace": namespace},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "gpu-operator"}},
                         "template": {"metadata": {"labels": {"app": "gpu-operator"}}, "spec": {
                             "tolerations": [{"key": CONTROL_PLANE_TAINT["key"], "operator": "Exists",
                                              "effect": "NoSchedule"}],
                             "containers": [{"name": "gpu-operator", "image": "%s/%s:%s" % (
                                 operator.get("repository"), operator.get("image"), operator.get("version"))}]}}}}]
    for component, name in (("driver", "nvidia-driver-daemonset"), ("toolkit", "nvidia-container-toolkit-daemonset"),
                            ("devicePlugin", "nvidia-device-plugin-daemonset")):
        settings = values.get(component) or {}
        if settings.get("enabled", True):
            objects.append(daemonset(name, "%s/%s:%s" % (settings.get("repository"), settings.get("image"),
                                                         settings.get("version")), {"app": name}))
    return objects


# ================================================================== entry
TOOLS = {"kubeadm": kubeadm, "kubelet": kubelet, "kubectl": kubectl, "helm": helm, "kube-apiserver": kube_apiserver}


def main(argv):
    if len(argv) < 2 or os.path.basename(argv[1]) not in TOOLS:
        die("usage: k8s_double.py {%s} [ARGS...]" % "|".join(sorted(TOOLS)), 2)
    TOOLS[os.path.basename(argv[1])](argv[2:])


if __name__ == "__main__":
    main(sys.argv)
