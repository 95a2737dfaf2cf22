"""serving_container and serving_containers_info against a docker and a systemctl that keep state in a file: a rank
started once and left alone, replaced on a new configuration, parked and restored, removed; inputs checked again."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _catalog
from ansible_collections.dgx_spark.cluster.plugins.modules import serving_container, serving_containers_info

# A docker that answers the forms the module uses, its containers kept in $FAKE_STATE (JSON).
FAKE_DOCKER = r'''
import json, os, sys
path = os.environ["FAKE_STATE"]
state = json.load(open(path)) if os.path.exists(path) else {"containers": {}, "calls": []}
args = sys.argv[1:]
state["calls"].append(args)
out, rc = "", 0
containers = state["containers"]
if args[:2] == ["ps", "-aq"]:
    label = args[args.index("--filter") + 1][len("label="):]
    key, value = label.split("=", 1)
    out = "\n".join(n for n, c in containers.items() if c["labels"].get(key) == value)
elif args[0] == "inspect":
    out = json.dumps([{"Name": "/" + n, "State": {"Status": containers[n]["status"], "ExitCode": 0,
                                                  "Running": containers[n]["status"] == "running"},
                       "Config": {"Labels": containers[n]["labels"], "Env": containers[n].get("env", [])}}
                      for n in args[1:]])
elif args[0] == "create":
    name = args[args.index("--name") + 1]
    labels = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--label")
    containers[name] = {"status": "created", "labels": labels, "argv": args}
elif args[0] == "rm":
    containers.pop(args[-1], None)
elif args[0] == "rename":
    containers[args[2]] = containers.pop(args[1])
elif args[0] == "stop":
    if args[-1] in containers:
        containers[args[-1]]["status"] = "exited"
    else:
        rc = 1
elif args[0] == "start":
    containers[args[-1]]["status"] = "running"
json.dump(state, open(path, "w"))
print(out)
sys.exit(rc)
'''
# systemctl: `enable --now` / `start` of a rank unit starts its container (as the unit's `docker start` does).
FAKE_SYSTEMCTL = r'''
import json, os, sys
path = os.environ["FAKE_STATE"]
state = json.load(open(path)) if os.path.exists(path) else {"containers": {}, "calls": []}
args = sys.argv[1:]
state["calls"].append(["systemctl"] + args)
units = state.setdefault("enabled", [])
unit = args[-1]
name = unit[len("dgx-spark-serving@"):-len(".service")] if unit.startswith("dgx-spark-serving@") else None
rc = 0
if args[0] == "is-enabled":
    rc = 0 if unit in units else 1
elif args[:2] == ["enable", "--now"] or args[0] == "start":
    if args[0] == "enable":
        units.append(unit)
    state["containers"][name]["status"] = "running"
elif args[:2] == ["disable", "--now"]:
    units[:] = [u for u in units if u != unit]
    if name in state["containers"]:
        state["containers"][name]["status"] = "exited"
json.dump(state, open(path, "w"))
sys.exit(rc)
'''


@pytest.fixture
def node(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, text in (("docker", FAKE_DOCKER), ("systemctl", FAKE_SYSTEMCTL)):
        tool = bindir / name
        tool.write_text("#!%s\n%s" % (sys.executable, text))
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", "%s%s%s" % (bindir, os.pathsep, os.environ["PATH"]))
    monkeypatch.setenv("FAKE_STATE", str(tmp_path / "state.json"))
    unit = tmp_path / "dgx-spark-serving@.service"
    unit.write_text("[Unit]\n")
    monkeypatch.setattr(serving_container, "UNIT_TEMPLATE", str(unit))
    monkeypatch.setattr(serving_container, "ENV_DIR", str(tmp_path / "env"))

    def read():
        return json.loads((tmp_path / "state.json").read_text())
    return read


ENTRY = _catalog.validate_entry("m", {"local_path": "/models/m", "image": "vllm/vllm:1", "params_b": 1, "tp": 2})
SETTINGS = {"tp": 2, "addresses": ["10.10.10.1", "10.10.10.2"], "config": "0123456789abcdef",
            "fabric_interface": "enp1s0f1np1", "rdma_devices": ["rocep1s0f1", "roceP2p1s0f1"], "gpus": "all",
            "ipc_host": True, "shm_size": "", "devices": ["/dev/infiniband"], "ulimits": ["memlock=-1"],
            "master_port": 29501, "distributed_timeout": 300, "model_source": "/var/lib/dgx-spark/hf-cache",
            "backend": "native", "ray_port": 6379, "ssh_port": 2233, "ssh_dir": "/var/lib/dgx-spark/serving/ssh",
            "options_file": "/var/lib/dgx-spark/serving/m.yml"}


def rank(module_runner, **extra):
    return module_runner(serving_container.main, dict({"model": "m", "rank": 1, "entry": ENTRY,
                                                       "settings": SETTINGS}, **extra))


def test_a_rank_starts_under_its_unit_once_and_is_left_alone_after(module_runner, node, tmp_path):
    result, failed = rank(module_runner, peers=["10.10.10.1:2233"])
    assert not failed and result["changed"] and result["container"] == "dgx-spark-serve-m-r1"
    state = node()
    created = state["containers"]["dgx-spark-serve-m-r1"]
    assert created["status"] == "running" and created["argv"][0] == "create"
    assert created["labels"]["dgx-spark.config"] == "0123456789abcdef" and created["labels"]["dgx-spark.first"] == "1"
    assert "dgx-spark-serving@dgx-spark-serve-m-r1.service" in state["enabled"]
    assert (tmp_path / "env" / "dgx-spark-serve-m-r1.env").read_text() == "PEERS=10.10.10.1:2233\nPEERS_TIMEOUT=600\n"
    again, failed = rank(module_runner)
    assert not failed and again["changed"] is False
    assert len([c for c in node()["calls"] if c[0] == "create"]) == 1


def test_another_configuration_replaces_the_container(module_runner, node):
    rank(module_runner)
    result, failed = rank(module_runner, settings=dict(SETTINGS, config="fedcba9876543210"))
    assert not failed and result["changed"]
    assert result["diff"]["before"]["config"] == "0123456789abcdef"
    assert node()["containers"]["dgx-spark-serve-m-r1"]["labels"]["dgx-spark.config"] == "fedcba9876543210"


def test_check_mode_creates_nothing(module_runner, node):
    result, failed = rank(module_runner, _ansible_check_mode=True)
    assert not failed and result["changed"] and not any(c[0] == "create" for c in node()["calls"])


def test_park_restore_and_remove(module_runner, node):
    rank(module_runner)
    parked, failed = module_runner(serving_container.main, {"state": "parked"})
    assert not failed and parked["parked"] == ["dgx-spark-serve-m-r1-previous"]
    assert node()["containers"]["dgx-spark-serve-m-r1-previous"]["status"] == "exited"
    info, _failed = module_runner(serving_containers_info.main, {})
    assert [c["Name"] for c in info["containers"]] == ["/dgx-spark-serve-m-r1-previous"]
    restored, failed = module_runner(serving_container.main, {"state": "restored"})
    assert not failed and restored["parked"] == ["dgx-spark-serve-m-r1"]
    assert node()["containers"]["dgx-spark-serve-m-r1"]["status"] == "running"
    module_runner(serving_container.main, {"state": "parked"})
    gone, failed = module_runner(serving_container.main, {"state": "absent", "which": "parked"})
    assert not failed and gone["parked"] == ["dgx-spark-serve-m-r1-previous"] and node()["containers"] == {}
    again, _failed = module_runner(serving_container.main, {"state": "absent", "which": "all"})
    assert again["changed"] is False


@pytest.mark.parametrize("params, grace", [({"state": "parked", "stop_timeout": 5}, "5"),
                                           ({"state": "absent", "model": "m", "rank": 1, "stop_timeout": 0}, "0")])
def test_a_container_stops_with_the_run_s_grace_before_its_unit_stops(module_runner, node, params, grace):
    rank(module_runner)
    result, failed = module_runner(serving_container.main, params)
    assert not failed and result["changed"]
    calls = node()["calls"]
    stop = calls.index(["stop", "--time", grace, "dgx-spark-serve-m-r1"])
    unit = "dgx-spark-serving@dgx-spark-serve-m-r1.service"
    assert calls[stop + 1:stop + 3] == [["systemctl", "disable", "--now", unit], ["systemctl", "reset-failed", unit]]


@pytest.mark.parametrize("change, message", [
    ({"entry": dict(ENTRY, image="vllm;reboot")}, "image 'vllm;reboot' is not allowed"),
    ({"entry": dict(ENTRY, extra_args=["--port=9000"])}, "extra_args[0] '--port=9000' is not allowed"),
    ({"settings": dict(SETTINGS, gpus="all --privileged")}, "settings.gpus"),
    ({"settings": dict(SETTINGS, addresses=["10.10.10.1", "$(reboot)"])}, "settings.addresses[1]"),
    ({"settings": dict(SETTINGS, ulimits=["memlock=-1 --privileged"])}, "settings.ulimits[0]"),
    ({"settings": dict(SETTINGS, devices=["/dev/../etc/shadow"])}, "settings.devices[0]"),
    ({"model": "m;x"}, "model 'm;x' is not allowed"),
    ({"rank": 2}, "rank 2 is not below the run's 2 ranks (settings.tp x settings.pp)"),
    ({"settings": dict(SETTINGS, pp=2)}, "settings.addresses has 2 address(es) for 4 ranks (tp 2 x pp 2)"),
    ({"settings": dict(SETTINGS, pp=0)}, "settings.pp 0 is not allowed: must be an integer 1..8"),
    ({"peers": ["10.10.10.1"]}, "peers[0] '10.10.10.1' is not allowed"),
    ({"stop_timeout": -1}, "stop_timeout -1 is not allowed"),
])
def test_inputs_are_checked_again_where_they_are_used(module_runner, node, change, message):
    result, failed = rank(module_runner, **change)
    assert failed and message in result["msg"]
    assert not os.path.exists(os.environ["FAKE_STATE"]) or not any(c[0] == "create" for c in node()["calls"])


KEY = "0123456789abcdef0123456789abcdef"


def rank0(module_runner, tmp_path, **extra):
    key_file = str(tmp_path / "api-key.env")
    return module_runner(serving_container.main, dict({
        "model": "m", "rank": 0, "entry": ENTRY, "settings": dict(SETTINGS, api_key_file=key_file),
        "api_key_file": key_file, "api_key": KEY}, **extra))


def test_rank_0_gets_its_key_file_before_its_container_and_the_key_is_never_shown(module_runner, node, tmp_path):
    key_file = tmp_path / "api-key.env"
    result, failed = rank0(module_runner, tmp_path, _ansible_check_mode=True)
    assert not failed and result["changed"] and not key_file.exists()
    result, failed = rank0(module_runner, tmp_path)
    assert not failed and result["changed"]
    assert key_file.read_text() == "VLLM_API_KEY=%s\n" % KEY and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert result["diff"]["before"]["api_key_file"] == "absent" and result["diff"]["after"]["api_key_file"] == "present"
    assert KEY not in json.dumps(result)
    argv = node()["containers"]["dgx-spark-serve-m-r0"]["argv"]
    assert argv[argv.index("--env-file") + 1] == str(key_file) and KEY not in " ".join(argv)
    again, failed = rank0(module_runner, tmp_path)
    assert not failed and again["changed"] is False
    # a file changed behind the role's back is written again; the running container is left alone
    key_file.write_text("VLLM_API_KEY=other\n")
    again, failed = rank0(module_runner, tmp_path)
    assert not failed and again["changed"] and key_file.read_text() == "VLLM_API_KEY=%s\n" % KEY
    assert len([c for c in node()["calls"] if c[0] == "create"]) == 1


def test_without_a_key_rank_0_leaves_no_key_file(module_runner, node, tmp_path):
    key_file = tmp_path / "api-key.env"
    key_file.write_text("VLLM_API_KEY=%s\n" % KEY)
    result, failed = rank0(module_runner, tmp_path, api_key="", settings=dict(SETTINGS, api_key_file=""))
    assert not failed and result["changed"] and not key_file.exists()
    assert "--env-file" not in node()["containers"]["dgx-spark-serve-m-r0"]["argv"]


@pytest.mark.parametrize("change, message", [
    ({"api_key": "short"}, "api_key is not allowed: must be 16 to 256"),
    ({"api_key_file": "/elsewhere/api-key.env"}, "api_key_file must be settings.api_key_file"),
])
def test_a_bad_key_or_key_file_is_refused_without_showing_the_key(module_runner, node, tmp_path, change, message):
    result, failed = rank0(module_runner, tmp_path, **change)
    assert failed and message in result["msg"] and "short" not in result["msg"] and KEY not in result["msg"]
    assert not (tmp_path / "api-key.env").exists() and "state.json" not in os.listdir(tmp_path)


@pytest.mark.parametrize("env", [["VLLM_API_KEY=" + KEY, "PATH=/usr/bin"], ["PATH=/usr/bin"]])
def test_a_restored_rank_0_gets_its_own_key_file_back_after_a_failed_launch_wrote_another(
        module_runner, node, tmp_path, env):
    key_file = tmp_path / "api-key.env"
    rank0(module_runner, tmp_path)
    state = node()
    state["containers"]["dgx-spark-serve-m-r0"]["env"] = env  # what the container was created with
    (tmp_path / "state.json").write_text(json.dumps(state))
    result, failed = module_runner(serving_container.main, {"state": "parked"})
    assert not failed and result["parked"] == ["dgx-spark-serve-m-r0-previous"]
    key_file.write_text("VLLM_API_KEY=the-failed-launch-s-own-key\n")  # as the next launch's rank 0 wrote it
    result, failed = module_runner(serving_container.main, {"state": "restored", "api_key_file": str(key_file)})
    assert not failed and result["parked"] == ["dgx-spark-serve-m-r0"]
    assert node()["containers"]["dgx-spark-serve-m-r0"]["status"] == "running"
    if len(env) == 2:
        assert key_file.read_text() == "VLLM_API_KEY=%s\n" % KEY and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    else:
        assert not key_file.exists()
    assert KEY not in json.dumps(result)
