"""Training jobs: the catalog's rules, each rank's torchrun and systemd-run argv, a run as status shows it (on the
lab's recorded torchrun outputs) and what kept a run from starting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _catalog, _train

from ansible_collections.dgx_spark.cluster.tests.unit.recorded import ROOT, fixture_body

CATALOG = yaml.safe_load(Path(ROOT, "roles/train_launch/files/jobs.yml").read_text())
VENV_JOB = {"script": "/home/spark/train.py", "args": ["--epochs", 3], "venv": "/home/spark/venv"}
SETTINGS = {"users": ["spark", "admin"], "workdir": "/var/lib/dgx-spark/train/r", "run_dir": "/var/lib/dgx-spark/train/r",
            "helper": "/usr/local/lib/dgx-spark/train_job.py", "fabric_interface": "enp1s0f1np1",
            "rdma_devices": ["rocep1s0f1", "roceP2p1s0f1"], "gpus": "all", "devices": ["/dev/infiniband"]}
RUN = "job-20261203t101500"


def test_the_shipped_catalog_example_is_valid_with_its_defaults():
    for key, entry in CATALOG.items():
        job = _train.validate_job(key, entry)
        assert job["environment"]["kind"] == "venv" and job["nproc_per_node"] == 1 and job["nodes"] is None
    assert _train.job_entry(CATALOG, "tiny-regression")["args"] == ["--steps", "50", "--step-seconds", "0.1"]


def test_the_inventory_overrides_a_field_and_adds_jobs():
    merged = _train.job_entry(CATALOG, "tiny-regression", {"tiny-regression": {"venv": "/opt/v"}})
    assert merged["environment"] == {"kind": "venv", "venv": "/opt/v"}
    assert merged["script"] == CATALOG["tiny-regression"]["script"]
    assert _train.job_entry(CATALOG, "mine", {"mine": VENV_JOB})["args"] == ["--epochs", "3"]
    with pytest.raises(_catalog.CatalogError, match=r"job 'nope' is not in the training catalog \(known: tiny-regression\)"):
        _train.job_entry(CATALOG, "nope")


@pytest.mark.parametrize("change, message", [
    ({"args": ["--steps", "1;reboot"]}, "job j: args[1] '1;reboot' is not allowed"),
    ({"args": ["$(id)"]}, "args[0] '$(id)' is not allowed"),
    ({"args": [True]}, "args[0] True is not allowed: must be a string or a number"),
    ({"script": "/opt/../etc/shadow"}, "script '/opt/../etc/shadow' is not allowed"),
    ({"script": "train.py"}, "script 'train.py' is not allowed"),
    ({"image": "nvcr.io/nvidia/pytorch:25.10-py3"}, "give exactly one Python environment of venv"),
    ({"venv": None}, "give exactly one Python environment of venv (a virtualenv path), pixi"),
    ({"nproc_per_node": 9}, "nproc_per_node 9 is not allowed: must be an integer 1..8"),
    ({"master_port": 22}, "master_port 22 is not allowed: must be an integer 1024..65535"),
    ({"nodes": []}, "nodes must be a non-empty list"),
    ({"env": {"HF_TOKEN": "x"}}, "env HF_TOKEN is not allowed: secrets"),
    ({"env": {"NCCL_SOCKET_IFNAME": "eth0"}}, "env NCCL_SOCKET_IFNAME is not allowed: the role sets it"),
    ({"env": {"MASTER_ADDR": "1.2.3.4"}}, "env MASTER_ADDR is not allowed: the role sets it"),
    ({"env": {"OMP_NUM_THREADS": "4 x"}}, "env OMP_NUM_THREADS '4 x' is not allowed"),
    ({"rdzv": "x"}, "unknown field(s) rdzv"),
])
def test_hostile_or_broken_fields_are_refused_naming_job_field_and_rule(change, message):
    with pytest.raises(_catalog.CatalogError) as error:
        _train.validate_job("j", dict(VENV_JOB, **change))
    assert message in str(error.value)


def test_a_hostile_job_key_is_refused():
    with pytest.raises(_catalog.CatalogError, match=r"job '\.\./x' is not allowed"):
        _train.job_entry(CATALOG, "../x")


def test_torchrun_from_each_kind_of_environment():
    common = ["--nnodes", "2", "--node_rank", "1", "--nproc_per_node", "1", "--master_addr", "10.10.10.1",
              "--master_port", "29500", "--rdzv-id", RUN, "/home/spark/train.py", "--epochs", "3"]
    venv = _train.validate_job("j", VENV_JOB)
    assert _train.torchrun_argv(venv, RUN, 1, 2, "10.10.10.1", SETTINGS) == ["/home/spark/venv/bin/torchrun"] + common
    pixi = _train.validate_job("j", dict(VENV_JOB, venv=None, pixi={"manifest": "/home/spark/p/pixi.toml"}))
    assert _train.torchrun_argv(pixi, RUN, 1, 2, "10.10.10.1", SETTINGS) == \
        ["pixi", "run", "--manifest-path", "/home/spark/p/pixi.toml", "-e", "default", "torchrun"] + common
    image = _train.validate_job("j", dict(VENV_JOB, venv=None, image="nvcr.io/nvidia/pytorch:25.10-py3",
                                          env={"OMP_NUM_THREADS": "4"}))
    argv = _train.torchrun_argv(image, RUN, 1, 2, "10.10.10.1", SETTINGS)
    assert argv[:4] == ["docker", "run", "--rm", "--name"] and argv[4] == "dgx-spark-train-%s-r1" % RUN
    assert ["--network", "host"] == argv[5:7] and "--gpus" in argv and "/dev/infiniband" in argv
    assert "OMP_NUM_THREADS=4" in argv and "NCCL_SOCKET_IFNAME=enp1s0f1np1" in argv
    assert argv[argv.index("nvcr.io/nvidia/pytorch:25.10-py3") + 1:] == ["torchrun"] + common


def test_each_rank_is_a_transient_unit_of_the_admin_user_with_the_fabric_environment():
    job = _train.validate_job("j", dict(VENV_JOB, env={"OMP_NUM_THREADS": "4"}))
    ranks = _train.job_ranks(job, RUN, ["spark-2959", "spark-ba63"], ["10.10.10.1", "10.10.10.2"], SETTINGS)
    assert [(rank["rank"], rank["host"], rank["local"], rank["unit"]) for rank in ranks] == [
        (0, "spark-2959", True, "dgx-spark-train-%s-r0.service" % RUN),
        (1, "spark-ba63", False, "dgx-spark-train-%s-r1.service" % RUN)]
    command = ranks[1]["command"]
    assert command[:3] == ["systemd-run", "--unit", ranks[1]["unit"]] and "--collect" in command
    assert command[command.index("--uid") + 1] == "admin"
    assert "ExecStopPost=/usr/bin/python3 /usr/local/lib/dgx-spark/train_job.py result " \
           "/var/lib/dgx-spark/train/r/rank-1.json" in command
    env = [command[index + 1] for index, arg in enumerate(command) if arg == "--setenv"]
    assert "OMP_NUM_THREADS=4" in env and "GLOO_SOCKET_IFNAME=enp1s0f1np1" in env
    assert "NCCL_IB_HCA=rocep1s0f1,roceP2p1s0f1" in env
    torchrun = command[command.index("--") + 1:]
    assert torchrun[torchrun.index("--master_addr") + 1] == "10.10.10.1"  # every rank meets at rank 0
    image = _train.validate_job("j", dict(VENV_JOB, venv=None, image="pytorch:1"))
    command = _train.job_ranks(image, RUN, ["a"], ["127.0.0.1"], dict(SETTINGS, users=["spark"]))[0]["command"]
    assert "--uid" not in command and "ExecStopPost=-/usr/bin/docker rm -f dgx-spark-train-%s-r0" % RUN in command


def lab_failure_status():
    """The helper's status answer for the lab run whose rank 1 was SIGKILLed and rank 0 stopped by the watcher."""
    tails = {0: fixture_body("torchrun/lab-torch2.13-hung-rank-stopped-by-watcher.txt"),
             1: fixture_body("torchrun/lab-torch2.13-worker-sigkill-childfailederror.txt")}
    record = {"id": RUN, "job": "tiny-regression", "state": "failed", "reason": "rank 1 (spark-ba63) ended: exited 1",
              "failure": {"rank": 1, "host": "spark-ba63", "exit_code": "exited", "exit_status": "1",
                          "ended": 100.0, "detected": 101.2},
              "others_stopped_after": 0.53}
    ranks = [{"rank": 0, "host": "spark-2959", "active": "inactive", "workers": 0, "tail": tails[0].splitlines(),
              "result": {"result": "exit-code", "exit_code": "exited", "exit_status": "1", "ended": 101.7}},
             {"rank": 1, "host": "spark-ba63", "active": "inactive", "workers": 0, "tail": tails[1].splitlines(),
              "result": {"result": "exit-code", "exit_code": "exited", "exit_status": "1", "ended": 100.0}}]
    return {"record": record, "ranks": ranks}


def test_a_failed_run_names_the_rank_its_cause_and_the_rank_the_watcher_stopped():
    view = _train.run_view(lab_failure_status(), 20)
    assert view["state"] == "failed" and view["failure"]["rank"] == 1
    assert [(rank["rank"], rank["state"], rank["step"]) for rank in view["ranks"]] == [
        (0, "stopped", 22), (1, "failed", 22)]
    cause = view["root_cause"]
    assert (cause["rank"], cause["host"], cause["exitcode"], cause["pid"]) == (1, "spark-ba63", -9, 878)
    assert cause["traceback_tail"] == ["Signal 9 (SIGKILL) received by PID 878"]
    assert _train.view_lines(view) == ["rank 0 (spark-2959): stopped, step 22, loss 1.04698 (exited 1)",
                                       "rank 1 (spark-ba63): failed, step 22, loss 1.00321 (exited 1)"]


def test_the_cause_comes_from_the_record_when_the_journal_no_longer_has_it():
    status = lab_failure_status()
    status["record"]["failure"]["tail"] = status["ranks"][1]["tail"]
    status["ranks"][1]["tail"] = []
    assert _train.run_view(status, 20)["root_cause"]["exitcode"] == -9


def test_a_rank_stopped_by_the_watcher_leaves_no_childfailederror_report():
    assert _train.torchrun_failure(fixture_body("torchrun/lab-torch2.13-hung-rank-stopped-by-watcher.txt")) is None


def test_running_ranks_their_progress_and_a_straggler():
    status = {"record": {"id": RUN, "state": "running"}, "ranks": [
        {"rank": 0, "host": "a", "active": "active", "workers": 1, "result": None, "tail": ['{"step": 90, "loss": 0.5}']},
        {"rank": 1, "host": "b", "active": "active", "workers": 1, "result": None, "tail": ["step=60 loss=0.7"]},
        {"rank": 2, "host": "c", "active": "active", "workers": 0, "result": None, "tail": []}]}
    view = _train.run_view(status, 20)
    assert [(rank["state"], rank["step"]) for rank in view["ranks"]] == [
        ("running", 90), ("running", 60), ("starting", None)]
    assert view["stragglers"] == [1] and view["root_cause"] is None
    assert _train.view_lines(view)[1] == "rank 1 (b): running, step 60, loss 0.7 - straggler"


def window(late, ranks, **extra):
    return {"rc": 0, "stdout": json.dumps(dict({"started": not late, "late": late, "ranks": ranks,
                                                "master_addr": "10.10.10.1", "master_port": 29500}, **extra))}


STARTED = [{"rc": 0}, {"rc": 0}]
HOSTS = ["spark-2959", "spark-ba63"]


def test_every_rank_started_is_no_problem():
    ranks = [{"rank": 0, "host": HOSTS[0], "address": "10.10.10.1", "active": "active", "workers": 1, "result": None}]
    assert _train.start_problem(HOSTS, STARTED, {"rc": 0}, window([], ranks), 30) == ""


def test_a_rank_that_never_reached_the_rendezvous_is_named_first_and_rank_0_waits_for_it():
    ranks = [{"rank": 0, "host": HOSTS[0], "address": "10.10.10.1", "active": "active", "workers": 0,
              "result": None, "tail": [], "rendezvous_peers": ["10.10.10.1"]},
             {"rank": 1, "host": HOSTS[1], "address": "10.10.10.2", "active": "active", "workers": 0,
              "result": None, "tail": ["connecting", "still connecting"]}]
    assert _train.start_problem(HOSTS, STARTED, {"rc": 0}, window([0, 1], ranks), 8) == (
        "rank 1 (spark-ba63) never reached the rendezvous on rank 0 (10.10.10.1:29500) within 8 s; last lines: "
        "connecting / still connecting; rank 0 (spark-2959) waited at the rendezvous for rank 1; last lines: "
        "(no output)")


def test_a_rank_that_ended_before_starting_and_a_failed_systemd_run():
    ranks = [{"rank": 1, "host": HOSTS[1], "address": "10.10.10.2", "active": "inactive", "workers": 0,
              "tail": ["ModuleNotFoundError: No module named 'torch'"],
              "result": {"result": "exit-code", "exit_code": "exited", "exit_status": "1"}}]
    assert _train.start_problem(HOSTS, STARTED, {"rc": 0}, window([1], ranks), 30) == (
        "rank 1 (spark-ba63) ended (exited 1) before its training processes started; last lines: "
        "ModuleNotFoundError: No module named 'torch'")
    starts = [{"rc": 0}, {"rc": 1, "stderr": "Failed to start transient service unit: Unit x already exists."}]
    assert _train.start_problem(HOSTS, starts, None, None, 30) == (
        "the rank unit did not start on spark-ba63 (Failed to start transient service unit: Unit x already exists.)")
    assert _train.start_problem(HOSTS, STARTED, {"rc": 1, "stderr": "no"}, None, 30) == \
        "the watcher did not start on the head (no)"


def test_a_run_whose_watcher_is_gone_is_lost_not_running():
    status = {"record": {"id": RUN, "state": "running", "reason": "every rank started"}, "watcher": False, "ranks": [
        {"rank": 0, "host": "a", "active": "inactive", "workers": 0, "result": None, "tail": []}]}
    view = _train.run_view(status, 20)
    assert view["state"] == "lost" and "its watcher is not running" in view["reason"]
    assert view["ranks"][0]["state"] == "not running"
    status["watcher"] = True
    assert _train.run_view(status, 20)["state"] == "running"
