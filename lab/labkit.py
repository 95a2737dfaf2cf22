"""Helpers for the lab end-to-end tests (tests/e2e) and the benchmarks: the lab script, SSH to the nodes, ansible
runs from this checkout."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "lab" / "lab.sh"
sys.path.insert(0, str(ROOT / ".collections"))
from ansible_collections.dgx_spark.cluster.plugins.module_utils._ssh_share import shared_connection  # noqa: E402
# LAB_INSTANCE: which lab, the first (1) or one beside it (lab.sh: its own names, state and addresses)
INSTANCE = int(os.environ.get("LAB_INSTANCE", "1"))
SUFFIX = "" if INSTANCE == 1 else str(INSTANCE)
PREFIX = "dgxspark-lab" + SUFFIX  # the lab's containers, networks and volumes (lab.sh)
STATE = Path(str(os.environ.get("DGX_SPARK_LAB_STATE", Path.home() / ".local/state/dgx-spark-lab"))
             + ("-" + SUFFIX if SUFFIX else ""))
KEY = STATE / "id_ed25519"
# where the playbooks, run from ROOT, write their reports (another lab's inventory, node_inventory, says below it)
REPORTS = ROOT / "reports" / ("lab" + SUFFIX if SUFFIX else "")
# A node's SSH connection is reused by the calls that follow within 10 s (the modules' own sharing, _ssh_share; a
# test's calls come in bursts), kept where Ansible keeps its own for the lab (inventory/lab.yml), which lab.sh closes
# whenever the nodes go away or restart (up, reboot, down). Short-lived, so none outlives a node's sleep.
CONTROL_DIR = STATE / "cp"
MGMT = "10.59.%d" % (62 + INSTANCE)
NODES = {"spark-2959": MGMT + ".11", "spark-ba63": MGMT + ".12"}
# The nodes a larger lab adds (LAB_NODES=3 or 4, lab.sh)
MORE_NODES = {"spark-lab3": MGMT + ".13", "spark-lab4": MGMT + ".14"}
FABRIC_NET = "10.%d" % (10 * INSTANCE)  # the first two octets of this lab's fabric subnets (10.10 in the first)
TWINS = {"enp1s0f1np1": (FABRIC_NET + ".10.1", FABRIC_NET + ".10.2"),
         "enP2p1s0f1np1": (FABRIC_NET + ".11.1", FABRIC_NET + ".11.2")}
VENV_BIN = ROOT / ".venv" / "bin"
# The lab endpoint's API key (inventory/lab.yml) and the curl option that sends it.
API_KEY = "lab-endpoint-key-0123456789abcdef"
CURL_AUTH = "-H 'Authorization: Bearer %s'" % API_KEY


def fabric(text):
    """text with the first lab's fabric addresses (10.10.x.y) as this lab's."""
    return text.replace("10.10.", FABRIC_NET + ".")


def lab(*args, check=True, env=None):
    return subprocess.run([str(LAB)] + list(args), capture_output=True, text=True, check=check, timeout=1800,
                          env=dict(os.environ, **(env or {})))


def lab_container_ids():
    """Every lab node's podman container (full ids), running or not."""
    argv = ["podman", "ps", "-a", "-q", "--no-trunc", "--filter", "label=dgx-spark-lab=%d" % INSTANCE]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()


def ssh(node, command, user="spark", check=True, timeout=60, input_text=None):
    argv = (["ssh", "-i", str(KEY), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"] + shared_connection(str(CONTROL_DIR))
            + ["%s@%s" % (user, NODES.get(node) or MORE_NODES[node]), command])
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, input=input_text)
    if check and result.returncode != 0:
        raise AssertionError("%s: %r failed rc=%d\n%s%s" % (node, command, result.returncode, result.stdout,
                                                            result.stderr))
    return result


# ansible's JSON callback (one document per run) instead of its text output
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}


def wait_for(what, probe, timeout=60, interval=0.5):
    """probe()'s first truthy value within timeout seconds; else an AssertionError naming what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("%s: not within %d s" % (what, timeout))


def json_document(stdout):
    """The JSON callback's document in a run's stdout (profile_tasks prints its table after it)."""
    return json.JSONDecoder().raw_decode(stdout[stdout.index("{"):])[0]


def ansible_env(**extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1", PATH="%s:%s" % (VENV_BIN, os.environ["PATH"]))
    if SUFFIX:  # another lab's nodes have the first's names: their facts are cached apart
        env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(STATE / "facts")
    env.update(extra)
    return env


@functools.lru_cache(maxsize=None)
def lab_inventory():
    """The lab pair's inventory: inventory/lab.yml for the first lab; another lab's is derived from it (node_inventory:
    its addresses, key, reports), written to its state directory once per process."""
    if not SUFFIX:
        return ROOT / "inventory" / "lab.yml"
    STATE.mkdir(parents=True, exist_ok=True)
    return node_inventory(STATE / "inventory.yml", len(NODES))


def playbook(name, *args, timeout=900, env=None):
    """ansible-playbook playbooks/<name> on the lab pair's inventory unless args give one; CompletedProcess with the
    text output."""
    inventory = [] if "-i" in args else ["-i", str(lab_inventory())]
    argv = [str(VENV_BIN / "ansible-playbook"), str(ROOT / "playbooks" / name)] + inventory + list(args)
    return subprocess.run(argv, cwd=str(ROOT), capture_output=True, text=True, timeout=timeout, check=False,
                          env=ansible_env(**(env or {})))


def node_inventory(path, count, topology="switch"):
    """inventory/lab.yml with the lab's first count nodes (LAB_NODES) and every fabric address derived from the
    node order by dgx_spark.cluster.fabric_plan, none written by hand (docs/topologies.md); a ring's inventory also
    says fabric_topology, so the fabric role addresses port 0 and sets the routes."""
    derived = ("{{{{ (groups['sparks'] | dgx_spark.cluster.fabric_plan('%s', fabric_first_subnet))"
               ".interfaces[inventory_hostname][{0}].address }}}}" % topology)
    inventory = yaml.safe_load((ROOT / "inventory" / "lab.yml").read_text())
    groups = inventory["all"]["children"]["sparks"]
    for node in list(MORE_NODES)[:count - len(NODES)]:
        groups["children"]["spark_workers"]["hosts"][node] = {}
    for group in groups["children"].values():
        for node, host in group["hosts"].items():
            host.pop("fabric_address", None)
            host.pop("fabric_twin_address", None)
            host["ansible_host"] = NODES.get(node) or MORE_NODES[node]  # this lab's
    groups["vars"].update(fabric_address=derived.format(0), fabric_twin_address=derived.format(1),
                          fabric_first_subnet=fabric("10.10.10.0/24"), common_reports_dir=str(REPORTS),
                          ansible_ssh_private_key_file=str(KEY), ansible_control_path_dir=str(CONTROL_DIR))
    if topology == "ring":
        groups["vars"].update(fabric_topology=topology, fabric_nodes="{{ groups['sparks'] }}")
    path.write_text(yaml.safe_dump(inventory))
    return path


def relay(inventory, chain, *args, image=None, path=None, timeout=1800):
    """(rc, {node: the copy's result}, wall seconds) of lab/plays/relay.yml: an image, or the model directory at path,
    from the head to chain's nodes at once, in a relay unless args say relay=false."""
    what = {"image": image} if image else {"path": path}
    start = time.monotonic()
    out = subprocess.run([str(VENV_BIN / "ansible-playbook"), str(ROOT / "lab" / "plays" / "relay.yml"),
                          "-i", str(inventory), "-e", json.dumps(dict(what, chain=list(chain)))] + list(args),
                         cwd=str(ROOT), capture_output=True, text=True, timeout=timeout, check=False,
                         env=ansible_env(ANSIBLE_FORKS=str(max(5, len(chain))), **JSON_OUTPUT))
    wall = time.monotonic() - start
    task = "Copy the image" if image else "Copy the weights"
    copies = [entry for entry in json_document(out.stdout)["plays"][0]["tasks"] if entry["task"]["name"] == task]
    return out.returncode, copies[0]["hosts"], wall


def _runner_run(private_dir, **kwargs):
    import ansible_runner
    private_dir.mkdir(parents=True, exist_ok=True)
    return ansible_runner.run(private_data_dir=str(private_dir), project_dir=str(ROOT), quiet=True,
                              inventory=str(lab_inventory()), envvars=ansible_env(), **kwargs)


def runner(private_dir, name, **extravars):
    """ansible-runner's run of playbooks/<name> on the lab inventory, as AWX runs a job: .status, .rc, .stdout (the
    callback's text) and .stats (the set_stats data: AWX's job artifacts)."""
    run = _runner_run(private_dir, playbook=str(ROOT / "playbooks" / name), extravars=extravars)
    stats = [event["event_data"].get("artifact_data", {}) for event in run.events
             if event["event"] == "playbook_on_stats"]
    return types.SimpleNamespace(status=run.status, rc=run.rc, stdout=run.stdout.read(), stats=stats[0] if stats else {})


def runner_module(private_dir, host, name, args):
    """ansible-runner's ad-hoc run of dgx_spark.cluster.<name> on one lab host: .rc, .result (the module's) and
    .progress (the text of the run's verbose events, where the lines a long job prints while it runs arrive)."""
    run = _runner_run(private_dir, host_pattern=host, module="dgx_spark.cluster." + name, module_args=json.dumps(args))
    results = [event["event_data"]["res"] for event in run.events
               if event["event"] in ("runner_on_ok", "runner_on_failed") and event["event_data"].get("host") == host]
    progress = [event.get("stdout", "") for event in run.events if event["event"] == "verbose"]
    return types.SimpleNamespace(rc=run.rc, result=results[-1] if results else {}, progress=progress)


def module(host, name, args, *flags, timeout=300):
    """Run dgx_spark.cluster.<name> on one lab host; returns (rc, the module's result dict)."""
    return module_run(host, name, args, *flags, timeout=timeout)[:2]


def module_run(host, name, args, *flags, timeout=300):
    """module(), plus what ansible printed on stderr (warnings, progress lines)."""
    argv = [str(VENV_BIN / "ansible"), host, "-i", str(lab_inventory()), "-m", "dgx_spark.cluster." + name,
            "-a", json.dumps(args)] + list(flags)
    result = subprocess.run(argv, cwd=str(ROOT), capture_output=True, text=True, timeout=timeout, check=False,
                            env=ansible_env(**JSON_OUTPUT))
    try:
        data = json_document(result.stdout)
    except ValueError:
        raise AssertionError("ansible output is not JSON (rc %d):\n%s\n%s" % (result.returncode, result.stdout,
                                                                              result.stderr))
    return result.returncode, data["plays"][0]["tasks"][0]["hosts"][host], result.stderr


def async_job_files(node):
    """How many async job status files (j<id>.<pid>) the node's ~/.ansible_async holds."""
    out = ssh(node, "ls ~/.ansible_async 2>/dev/null | grep -c '^j[0-9]'", check=False).stdout.strip()
    return int(out or 0)


def recap(output):
    """PLAY RECAP counters per host: {host: {ok, changed, unreachable, failed, ...}}."""
    counters = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) > 2 and (parts[0] in NODES or parts[0] in MORE_NODES) and parts[1] == ":":
            counters[parts[0]] = dict((k, int(v)) for k, v in (item.split("=") for item in parts[2:]))
    return counters


def rejected_before_connecting(name, extra_vars, *messages):
    """Run playbook `name` against an unreachable address with extra_vars; assert it fails on validation with every
    message, before any host is contacted; the run's CompletedProcess."""
    args = []
    for var in list(extra_vars) + ["ansible_host=192.0.2.1"]:
        args += ["-e", var]
    out = playbook(name, *args)
    assert out.returncode != 0, out.stdout[-2000:]
    for message in messages:
        assert message in out.stdout, (message, out.stdout[-3000:])
    assert "UNREACHABLE" not in out.stdout
    return out
