"""The swap lock: one holder at a time, named to the others; expiry, force, waiting, release by token only."""

from __future__ import annotations

import json
import os
import time

import pytest

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
                                "expires": time.time() - 90, "ttl": 10}))
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


def test_check_mode_writes_nothing_not_even_the_guard_file(module_runner, tmp_path):
    for state in ("acquired", "released"):
        result, failed = lock(module_runner, tmp_path / "l", "t1", state=state, _ansible_check_mode=True)
        assert not failed and result["changed"] is (state == "acquired")
    assert os.listdir(str(tmp_path)) == []
    lock(module_runner, tmp_path / "l", "t1")
    before = (tmp_path / "l").read_text()
    result, failed = lock(module_runner, tmp_path / "l", "t1", state="released", _ansible_check_mode=True)
    assert not failed and result["changed"] and (tmp_path / "l").read_text() == before


def test_renewal_moves_the_expiry_for_the_holder_only(module_runner, tmp_path):
    path = tmp_path / "l"
    first, _failed = lock(module_runner, path, "t1", ttl=5)
    time.sleep(1.1)
    renewed, failed = lock(module_runner, path, "t1", state="renewed", ttl=60)
    assert not failed and renewed["expires"] >= first["expires"] + 55
    assert json.loads(path.read_text())["ttl"] == 60
    result, failed = lock(module_runner, path, "t2", state="renewed")
    assert failed and "cannot renew the swap lock: it is held by alice@ctl" in result["msg"]
    lock(module_runner, path, "t1", state="released")
    result, failed = lock(module_runner, path, "t1", state="renewed")
    assert failed and "nobody holds it (it expired or was released): acquire it again" in result["msg"]


def test_a_lock_renewed_in_time_is_not_taken_over(module_runner, tmp_path):
    path = tmp_path / "l"
    lock(module_runner, path, "t1", ttl=2)
    for _second in range(3):
        time.sleep(1)
        lock(module_runner, path, "t1", state="renewed", ttl=2)
    result, failed = lock(module_runner, path, "t2")
    assert failed and "expires in" in result["msg"]


@pytest.mark.parametrize("content", ["[1, 2]", "\"a string\"", "{\"token\": 5}", "not json", "{}"])
def test_a_file_that_is_not_a_lock_counts_as_none_with_a_warning(module_runner, tmp_path, content):
    path = tmp_path / "l"
    path.write_text(content)
    result, failed = lock(module_runner, path, "t1")
    assert not failed and result["changed"] is True and "counts as no lock" in result["warnings"][0]
    assert json.loads(path.read_text())["token"] == "t1"


def test_the_lock_is_written_through_a_private_temporary_and_never_through_a_link(module_runner, tmp_path):
    path, target = tmp_path / "l", tmp_path / "elsewhere"
    target.write_text("keep me")
    (tmp_path / ("l.%d.tmp" % os.getpid())).symlink_to(target)  # a planted link where the temporary goes
    result, failed = lock(module_runner, path, "t1")
    assert not failed and target.read_text() == "keep me"
    assert oct(path.stat().st_mode & 0o777) == "0o600" and not path.is_symlink()
    path.unlink()
    path.symlink_to(target)  # a lock that is a link is not read through it
    result, failed = lock(module_runner, path, "t2")
    assert not failed and "counts as no lock" in result["warnings"][0] and target.read_text() == "keep me"
