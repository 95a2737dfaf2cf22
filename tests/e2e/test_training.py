"""train.yml on the lab: real torchrun (torch 2.13 CPU, Gloo over the lab fabric) on both nodes running the catalog's
example job; status, logs, stop; a rank killed mid-run, a rank that never starts, the NCCL gate failing, hostile
input, --check."""

from __future__ import annotations

import json
import re
import time

import pytest
from labkit import NODES, REPORTS, fabric, lab, playbook, recap, rejected_before_connecting, ssh, wait_for

HEAD, WORKER = "spark-2959", "spark-ba63"
STATE = "/var/lib/dgx-spark/train"


def job(steps, step_seconds="0.1"):
    """-e value overriding the example job's arguments."""
    return json.dumps({"train_launch_jobs": {"tiny-regression": {
        "venv": "/opt/dgx-spark-lab/train/venv", "args": ["--steps", str(steps), "--step-seconds", step_seconds]}}})


def train_units(node):
    return ssh(node, "systemctl list-units 'dgx-spark-train-*' --no-legend --plain | awk '{print $1}'").stdout.split()


def record(run_id):
    return json.loads(ssh(HEAD, "cat %s/%s/job.json" % (STATE, run_id)).stdout)


def run_id_of(output):
    found = re.findall(r"(tiny-regression-\d{8}t\d{6})", output)
    assert found, output[-3000:]
    return found[-1]


def fabric_blocked(node, rules):
    """iptables rules on node for the test's duration (removed by the fixture's cleanup)."""
    for rule in rules:
        ssh(node, "sudo iptables -I %s" % rule)
    BLOCKED.append((node, rules))


BLOCKED = []


@pytest.fixture(scope="module", autouse=True)
def lab_with_torch():
    lab("up")
    fabric = playbook("fabric.yml")
    assert fabric.returncode == 0, fabric.stdout[-3000:]
    lab("train")
    for node in NODES:  # runs left by an earlier session
        ssh(node, "sudo systemctl stop 'dgx-spark-train-*' 2>/dev/null; sudo rm -rf %s" % STATE, check=False)
    yield
    for node in NODES:
        ssh(node, "sudo systemctl stop 'dgx-spark-train-*' 2>/dev/null", check=False)


@pytest.fixture(autouse=True)
def unblock():
    yield
    while BLOCKED:
        node, rules = BLOCKED.pop()
        for rule in rules:
            ssh(node, "sudo iptables -D %s" % rule, check=False)


def test_check_mode_starts_nothing():
    out = playbook("train.yml", "-e", "job=tiny-regression", "--check")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "would start on spark-2959, spark-ba63 (check mode)" in out.stdout
    for node in NODES:
        assert train_units(node) == [], node
        assert ssh(node, "ls %s 2>/dev/null | grep -c tiny-regression" % STATE, check=False).stdout.strip() in ("", "0")


def test_hostile_job_fields_are_refused_before_any_host_is_contacted():
    rejected_before_connecting("train.yml", ["job=tiny-regression", json.dumps(
        {"train_launch_jobs": {"tiny-regression": {"args": ["--steps", "1;reboot"]}}})],
        "job tiny-regression: args[1] '1;reboot' is not allowed")
    rejected_before_connecting("train.yml", ["job=tiny-regression", json.dumps(
        {"train_launch_jobs": {"tiny-regression": {"env": {"HF_TOKEN": "hf_x"}}}})],
        "env HF_TOKEN is not allowed: secrets")
    rejected_before_connecting("train.yml", ["job=../x"], "job '../x' is not allowed")
    rejected_before_connecting("train.yml", ["job=tiny-regression", json.dumps(
        {"train_launch_jobs": {"tiny-regression": {"nodes": ["spark-2959", "spark-9999"]}}})],
        "job node spark-9999 is not a host of this play (spark-2959, spark-ba63)")


def test_a_job_runs_to_completion_followed_then_status_and_merged_logs():
    out = playbook("train.yml", "-e", "job=tiny-regression", "-e", job(40), "-e", "train_follow=true",
                   "-e", "train_launch_follow_interval=1")
    assert out.returncode == 0, out.stdout[-4000:]
    run_id = run_id_of(out.stdout)
    assert re.search(r"rank 1 \(spark-ba63\): running, step \d+, loss", out.stdout), out.stdout[-3000:]
    assert "%s: succeeded" % run_id in out.stdout
    done = record(run_id)
    assert done["state"] == "succeeded" and done["gate"]["passed"] is True and done["gate"]["skipped"] is False
    assert [rank["host"] for rank in done["ranks"]] == [HEAD, WORKER] and done["master_addr"] == fabric("10.10.10.1")
    status = playbook("train_status.yml", "-e", "job=tiny-regression")
    assert status.returncode == 0, status.stdout[-3000:]
    for rank, node in enumerate(NODES):
        assert re.search(r"rank %d \(%s\): succeeded, step 40, loss " % (rank, node), status.stdout), status.stdout
    losses = [float(value) for value in re.findall(r"step 40, loss ([0-9.e-]+)", status.stdout)]
    assert max(losses) < 0.1  # the regression was learned (it starts above 1)
    logs = playbook("train_logs.yml", "-e", "job=%s" % run_id)
    assert logs.returncode == 0, logs.stdout[-3000:]
    merged = (REPORTS / "train" / ("%s.log" % run_id)).read_text().splitlines()
    steps = [line for line in merged if '"step": ' in line]
    assert len([line for line in steps if "[rank 0]" in line]) == 40
    assert len([line for line in steps if "[rank 1]" in line]) == 40
    stamps = [line.split(" ", 1)[0] for line in merged]
    assert stamps == sorted(stamps)
    assert not [line for line in merged if " !! " in line]
    for node in NODES:
        assert train_units(node) == [], node


def test_status_while_it_runs_then_relaunch_reports_it_and_stop_is_idempotent():
    out = playbook("train.yml", "-e", "job=tiny-regression", "-e", job(3000), "-e", "train_skip_gate=true")
    assert out.returncode == 0, out.stdout[-3000:]
    run_id = run_id_of(out.stdout)
    assert record(run_id)["gate"] == {"skipped": True, "why": "train_launch_skip_gate"}

    def status_with_both_ranks_stepping():
        # a rank's log is read when status looks: right after the start, one may not have logged its first step yet
        status = playbook("train_status.yml", "-e", "job=%s" % run_id)
        assert status.returncode == 0, status.stdout[-3000:]
        assert "%s (tiny-regression): running" % run_id in status.stdout
        return len(re.findall(r"rank \d \(spark-\w+\): running, step \d+, loss", status.stdout)) == 2
    wait_for("status naming both ranks' step and loss", status_with_both_ranks_stepping, timeout=60, interval=1)
    other = playbook("train.yml", "-e", "job=other", "-e", "train_skip_gate=true", "-e", json.dumps(
        {"train_launch_jobs": {"other": {"script": "/usr/local/lib/dgx-spark/train/examples/tiny_regression.py",
                                         "venv": "/opt/dgx-spark-lab/train/venv"}}}))
    assert other.returncode != 0
    assert "Another training run is live, nothing was started: %s (record on spark-2959)" % run_id in other.stdout, \
        other.stdout[-3000:]
    again = playbook("train.yml", "-e", "job=tiny-regression", "-e", job(3000), "-e", "train_skip_gate=true")
    assert again.returncode == 0, again.stdout[-3000:]
    assert "%s: already running, nothing started" % run_id in again.stdout
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout[-2000:]
    stop = playbook("train_stop.yml", "-e", "job=tiny-regression")
    assert stop.returncode == 0, stop.stdout[-3000:]
    assert recap(stop.stdout)[HEAD]["changed"] > 0
    for node in NODES:
        assert train_units(node) == [], node
    assert record(run_id)["state"] == "stopped"
    stop_again = playbook("train_stop.yml", "-e", "job=%s" % run_id)
    assert stop_again.returncode == 0, stop_again.stdout[-3000:]
    assert all(counts["changed"] == 0 for counts in recap(stop_again.stdout).values()), stop_again.stdout[-2000:]


def test_a_rank_killed_mid_run_stops_the_other_within_the_bound_and_names_the_rank():
    out = playbook("train.yml", "-e", "job=tiny-regression", "-e", job(3000), "-e", "train_skip_gate=true")
    assert out.returncode == 0, out.stdout[-3000:]
    run_id = run_id_of(out.stdout)
    time.sleep(2)
    # the worker drops off the fabric (SSH aside) as its training process dies: no FIN or RST reaches the head,
    # whose torchrun would wait in its all-reduce for Gloo's 30-minute timeout
    fabric_blocked(WORKER, [fabric("INPUT -s 10.10.10.1 -p tcp ! --dport 22 -j DROP"),
                            fabric("OUTPUT -d 10.10.10.1 -p tcp ! --sport 22 -j DROP")])
    ssh(WORKER, "sudo pkill -KILL -f '[p]ython3 -u /usr/local/lib/dgx-spark/train/examples/tiny_regression.py'")
    failed = wait_for("the watcher stopping the other rank",
                      lambda: record(run_id).get("others_stopped_after") is not None and record(run_id), 30)
    assert failed["state"] == "failed" and failed["failure"]["rank"] == 1 and failed["failure"]["host"] == WORKER
    assert failed["others_stopped_after"] < 10
    assert any("ChildFailedError" in line for line in failed["failure"]["tail"])  # torchrun's report, kept
    head_end = json.loads(ssh(HEAD, "cat %s/%s/rank-0.json" % (STATE, run_id)).stdout)["ended"]
    assert head_end - failed["failure"]["ended"] < 15  # the bound: the watcher's look, SSH, torchrun's SIGTERM
    for node in NODES:
        assert train_units(node) == [], node
    status = playbook("train_status.yml", "-e", "job=%s" % run_id)
    assert "failed - rank 1 (spark-ba63) ended: exited 1" in status.stdout, status.stdout[-3000:]
    assert "rank 0 (spark-2959): stopped" in status.stdout
    assert "cause: rank 1 on spark-ba63, exit code -9" in status.stdout
    logs = playbook("train_logs.yml", "-e", "job=%s" % run_id)
    merged = (REPORTS / "train" / ("%s.log" % run_id)).read_text()
    assert re.search(r"\[rank 0\] .*Received 15 death signal", merged), logs.stdout[-2000:]
    assert re.search(r"\[rank 1\] !! .*ChildFailedError", merged)


def test_a_rank_that_never_starts_trips_the_start_window_and_nothing_stays_running():
    fabric_blocked(WORKER, [fabric("OUTPUT -d 10.10.10.1 -p tcp --dport 29500 -j DROP")])
    start = time.monotonic()
    out = playbook("train.yml", "-e", "job=tiny-regression", "-e", "train_skip_gate=true",
                   "-e", "train_launch_start_window=8")
    assert out.returncode != 0
    assert time.monotonic() - start < 60
    assert fabric("rank 1 (spark-ba63) never reached the rendezvous on rank 0 (10.10.10.1:29500) within 8 s") in out.stdout, \
        out.stdout[-3000:]
    assert "rank 0 (spark-2959) waited at the rendezvous for rank 1" in out.stdout
    for node in NODES:
        assert train_units(node) == [], node
    assert record(run_id_of(out.stdout))["state"] == "failed"


def runs(node):
    return ssh(node, "ls %s 2>/dev/null || true" % STATE).stdout.split()


def test_the_nccl_gate_failing_stops_the_launch_before_any_rank_starts():
    before = dict((node, runs(node)) for node in NODES)
    for node in NODES:
        lab("scenario", node, "nccl_slow")
    try:
        out = playbook("train.yml", "-e", "job=tiny-regression")
    finally:
        for node in NODES:
            lab("scenario", node, "healthy")
    assert out.returncode != 0
    assert "The NCCL gate failed, no rank was started" in out.stdout and "nccl_avg_busbw_gbps=11." in out.stdout, \
        out.stdout[-3000:]
    for node in NODES:
        assert train_units(node) == [] and runs(node) == before[node], node
