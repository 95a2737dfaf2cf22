"""An interrupted transfer's session is ended by the next run of its kind, and nothing else is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _leftover

# a session leader with a child that ignores TERM, as a stuck docker load or ssh could
EARLIER_RUN = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(600)
"""


def _earlier_run():
    proc = subprocess.Popen([sys.executable, "-c", EARLIER_RUN], stdout=subprocess.PIPE, start_new_session=True)
    child = int(proc.stdout.readline())
    return proc, child


def _mark(directory, name, proc, leader_started=None):
    leader = _leftover._stat(proc.pid)
    record = {"pid": proc.pid, "sid": proc.pid, "since": "2026-12-02T10:00:00Z",
              "leader_started": leader[1] if leader_started is None else leader_started}
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name + ".json"), "w") as handle:
        json.dump(record, handle)


def test_claim_ends_every_process_of_the_earlier_session_and_marks_its_own(tmp_path):
    directory = str(tmp_path / "jobs")
    proc, child = _earlier_run()
    try:
        _mark(directory, "p2p_image_copy", proc)
        start = time.monotonic()
        ended = _leftover.claim("p2p_image_copy", directory, grace=1)
        assert sorted(ended["processes"]) == sorted([proc.pid, child])
        assert ended["since"] == "2026-12-02T10:00:00Z"
        assert proc.wait(timeout=5) != 0
        assert _leftover.session_members(proc.pid) == []  # the child that ignored TERM got KILL
        assert time.monotonic() - start < 8
        mine = json.loads((tmp_path / "jobs" / "p2p_image_copy.json").read_text())
        assert mine["pid"] == os.getpid() and mine["sid"] == os.getsid(0)
        assert _leftover.claim("p2p_image_copy", directory) is None  # its own session is never ended
    finally:
        if proc.poll() is None:
            _leftover.end_session(proc.pid, grace=0)
    _leftover.release("p2p_image_copy", directory)
    assert list((tmp_path / "jobs").iterdir()) == []


def test_a_session_id_reused_by_another_leader_and_a_finished_run_are_left_alone(tmp_path):
    directory = str(tmp_path / "jobs")
    proc, child = _earlier_run()
    try:
        _mark(directory, "weight_sync-x", proc, leader_started=1)  # the marker's leader started long before this one
        assert _leftover.leftover("weight_sync-x", directory) is None
        assert _leftover.claim("weight_sync-x", directory) is None
        assert proc.poll() is None
    finally:
        _leftover.end_session(proc.pid, grace=0)
    proc.wait()
    _mark(directory, "gone", proc, leader_started=0)
    assert _leftover.leftover("gone", directory) is None
    assert _leftover.session_members(proc.pid) == []
    (tmp_path / "jobs" / "broken.json").write_text("{not json")
    assert _leftover.claim("broken", directory) is None


def test_release_leaves_a_later_runs_marker(tmp_path):
    directory = str(tmp_path / "jobs")
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "weight_sync-y.json").write_text(json.dumps({"pid": 1, "sid": 1}))
    _leftover.release("weight_sync-y", directory)
    assert (tmp_path / "jobs" / "weight_sync-y.json").exists()
