"""Distributed training: torchrun's failure report on recorded outputs, a rank's progress lines, stragglers and the
merged, rank-prefixed log."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _train

from ansible_collections.dgx_spark.cluster.tests.unit.recorded import fixture_body


def test_the_root_cause_is_the_first_observed_failure_not_the_first_listed():
    failure = _train.torchrun_failure(fixture_body("torchrun/torchrun-childfailederror-root-cause-table.txt"))
    assert {k: failure[k] for k in ("rank", "local_rank", "host", "exitcode", "pid", "error_file", "time", "script")} \
        == {"rank": 0, "local_rank": 0, "host": "n136-117-136.byted.org", "exitcode": 1, "pid": 78970,
            "error_file": None, "time": "2023-05-19_16:39:58", "script": "train.py"}
    assert [(f["rank"], f["exitcode"], f["pid"]) for f in failure["failures"]] == [(1, 1, 78971)]
    assert failure["traceback_tail"] == []  # no traceback printed, and the report's own says how to enable one
    assert "traceback" not in failure


def test_the_traceback_before_the_report_gives_the_cause():
    failure = _train.torchrun_failure(fixture_body("derived/torchrun_gloo_traceback_then_childfailederror.txt"), 3)
    assert failure["rank"] == 0 and failure["exitcode"] == 1
    assert failure["traceback_tail"][-1].endswith("connect [172.31.71.170]:13195: Connection refused")
    assert failure["traceback_tail"][0].strip().startswith("File ") and len(failure["traceback_tail"]) == 3


def test_a_report_with_its_own_traceback_and_an_error_file():
    text = ("torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n====\ntrain.py FAILED\n----\n"
            "Failures:\n  <NO_OTHER_FAILURES>\n----\nRoot Cause (first observed failure):\n[0]:\n"
            "  time      : 2026-12-03_02:41:50\n  host      : spark-ba63\n  rank      : 1 (local_rank: 0)\n"
            "  exitcode  : -9 (pid: 4242)\n  error_file: /tmp/torchelastic_x/attempt_0/0/error.json\n"
            "  traceback : Signal 9 (SIGKILL) received by PID 4242\n====\n")
    failure = _train.torchrun_failure(text)
    assert (failure["rank"], failure["host"], failure["exitcode"], failure["error_file"]) == (
        1, "spark-ba63", -9, "/tmp/torchelastic_x/attempt_0/0/error.json")
    assert failure["traceback_tail"] == ["Signal 9 (SIGKILL) received by PID 4242"] and failure["failures"] == []


def test_text_without_a_report_gives_none():
    for name in ("torchrun-c10d-rendezvous-connection-timeout.txt", "torchrun-2node-startup-banner-torch2.txt",
                 "nccl-heartbeat-monitor-timeout-multinode.txt"):
        assert _train.torchrun_failure(fixture_body("torchrun/" + name)) is None
    assert _train.torchrun_failure("") is None and _train.torchrun_failure(None) is None


def test_progress_lines_in_both_documented_formats():
    assert _train.progress_line('{"step": 12, "loss": 0.4312, "lr": 0.001}') == {"step": 12, "loss": 0.4312}
    assert _train.progress_line("[rank1] step=40 loss=1.25e-01 tok/s=900") == {"step": 40, "loss": 0.125}
    assert _train.progress_line("epoch 1 step: 7") == {"step": 7, "loss": None}
    for noise in ("substep=3", "step=x loss=1", '{"step": "3"}', "loss=0.3", "", None, "{not json"):
        assert _train.progress_line(noise) is None, noise
    log = "starting\nstep=1 loss=2.5\nstep=2 loss=2.1\nsaving\n"
    assert _train.progress(log) == {"step": 2, "loss": 2.1, "reports": 2}
    assert _train.progress("nothing yet") == {"step": None, "loss": None, "reports": 0}


def test_a_straggler_lags_the_lead_by_more_than_the_bound():
    assert _train.stragglers({0: 120, 1: 95, 2: 118}, 10) == [1]
    assert _train.stragglers({0: 12, 1: None}, 10) == [1] and _train.stragglers({0: 5, 1: None}, 10) == []
    assert _train.stragglers({0: None, 1: None}, 0) == []


def test_every_ranks_log_merged_in_time_order_prefixed_and_marked():
    logs = {"1": "2026-12-03T02:41:50.200000+0000 spark-ba63 dgx-spark-train-j1-r1[77]: step=1 loss=2.0\n"
                 "2026-12-03T02:41:51.000000+0000 spark-ba63 dgx-spark-train-j1-r1[77]: RuntimeError: boom\n",
            "0": "-- No entries --\n"
                 "2026-12-03T02:41:50.100000+0000 spark-2959 dgx-spark-train-j1-r0[12]: step=1 loss=2.1\n"
                 "Traceback (most recent call last):\n"}
    assert _train.merge_logs(logs) == [
        "2026-12-03T02:41:50.100000+0000 [rank 0] step=1 loss=2.1",
        "2026-12-03T02:41:50.100000+0000 [rank 0] !! Traceback (most recent call last):",
        "2026-12-03T02:41:50.200000+0000 [rank 1] step=1 loss=2.0",
        "2026-12-03T02:41:51.000000+0000 [rank 1] !! RuntimeError: boom"]
