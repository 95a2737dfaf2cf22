"""The swap lock's keeper: renews the lock while the run it serves lives, ends with that run, with a release, or
when the lock was taken; its renewal is _lock_file's own text run by a separate python (as on the head)."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _lock_file
from ansible_collections.dgx_spark.cluster.plugins.plugin_utils import _lock_keeper


# a TTL of 6 s against a renewal every 2 s: slack for a renewal's python start on a starved CPU (make test runs the
# unit tests in the idle class beside the lab)
def start(tmp_path, run_pid, ttl=6):
    path = str(tmp_path / "serving.lock")
    _lock_file.write(path, {"holder": "me", "model": "m", "token": "t1", "since": time.time(),
                            "expires": time.time() + ttl, "ttl": ttl})
    renewal = "%s\nrenew(%r, %r, %d)\n" % (inspect.getsource(_lock_file), path, "t1", ttl)
    text = _lock_keeper.program({"argv": [sys.executable, "-"], "program": renewal, "ttl": ttl, "run_pid": run_pid})
    keeper = subprocess.Popen([sys.executable, "-"], stdin=subprocess.PIPE)
    keeper.stdin.write(text.encode())
    keeper.stdin.close()
    return keeper, path


def test_the_lock_outlives_its_ttl_while_the_run_lives_then_expires(tmp_path):
    run = subprocess.Popen(["sleep", "60"])
    keeper, path = start(tmp_path, run.pid)
    try:
        time.sleep(13)  # more than two TTLs
        lock, _note = _lock_file.read(path)
        assert lock["expires"] > time.time()  # renewed
        run.kill()
        run.wait()
        keeper.wait(timeout=5)  # the keeper ends with the run
        time.sleep(6.5)  # more than a TTL
        assert _lock_file.expired(_lock_file.read(path)[0])
    finally:
        run.kill()
        keeper.kill()


def test_the_keeper_ends_when_the_lock_is_released_or_taken(tmp_path):
    run = subprocess.Popen(["sleep", "60"])
    try:
        keeper, path = start(tmp_path, run.pid)
        _lock_file.remove(path)
        assert keeper.wait(timeout=8) == 0
        keeper, path = start(tmp_path, run.pid)
        lock = json.loads(open(path).read())
        _lock_file.write(path, dict(lock, token="someone else", expires=time.time() + 30))
        assert keeper.wait(timeout=8) == 0
        assert json.loads(open(path).read())["token"] == "someone else"
    finally:
        run.kill()
