"""The swap lock: one holder at a time, named to the others; expiry, force, waiting, release by token only."""

from __future__ import annotations

import json
import time

from ansible_collections.dgx_spark.cluster.plugins.modules import serving_lock


def lock(module_runner, path, token, **extra):
    return module_runner(serving_lock.main, dict({"path": str(path), "token": token, "holder": "alice@ctl",
                                                  "model": "gpt-oss-120b"}, **extra))


def test_acquire_then_a_second_run_fails_naming_the_holder(module_runner, tmp_path):
    path = tmp_path / "dgx" / "serving.lock"
    result, failed = lock(module_runner, path, "t1")
    assert not failed and result["changed"] is True
    assert oct(path.stat().st_mode & 0o777) == "0o600" and json.loads(path.read_text())["token"] == "t1"
    result, failed = lock(module_runner, path, "t2", holder="bob@awx")
    assert failed and "held by alice@ctl (gpt-oss-120b) since" in result["msg"] and result["holder"] == "alice@ctl"
    assert "force=true" in result["msg"]


def test_the_same_run_acquiring_again_changes_nothing(module_runner, tmp_path):
    lock(module_runner, tmp_path / "l", "t1")
    result, failed = lock(module_runner, tmp_path / "l", "t1")
    assert not failed and result["changed"] is False


def test_waiting_is_bounded(module_runner, tmp_path):
    lock(module_runner, tmp_path / "l", "t1")
    start = time.monotonic()
    result, failed = lock(module_runner, tmp_path / "l", "t2", wait=2)
    assert failed and 2 <= time.monotonic() - start < 10


def test_an_expired_lock_is_taken_over_and_said_so(module_runner, tmp_path):
    path = tmp_path / "l"
    path.write_text(json.dumps({"holder": "dead@run", "model": "m", "token": "old", "since": time.time() - 100,
                                "ttl": 10}))
    result, failed = lock(module_runner, path, "t2", holder="bob@awx")
    assert not failed and result["took_over"]["holder"] == "dead@run" and "token" not in result["took_over"]
    assert "expired" in result["warnings"][0] and json.loads(path.read_text())["holder"] == "bob@awx"


def test_force_overrides_a_held_lock(module_runner, tmp_path):
    lock(module_runner, tmp_path / "l", "t1")
    result, failed = lock(module_runner, tmp_path / "l", "t2", holder="human", force=True)
    assert not failed and "forced" in result["warnings"][0]


def test_release_needs_the_token(module_runner, tmp_path):
    path = tmp_path / "l"
    lock(module_runner, path, "t1")
    result, failed = lock(module_runner, path, "wrong", state="released")
    assert not failed and result["changed"] is False and path.exists()
    result, failed = lock(module_runner, path, "t1", state="released")
    assert not failed and result["changed"] is True and not path.exists()
    result, failed = lock(module_runner, path, "t1", state="released")
    assert not failed and result["changed"] is False


def test_check_mode_writes_nothing(module_runner, tmp_path):
    result, failed = lock(module_runner, tmp_path / "l", "t1", _ansible_check_mode=True)
    assert not failed and result["changed"] is True and not (tmp_path / "l").exists()
