# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The swap lock's keeper: a process on the controller that renews a run's lock while the run lives.

The serving_lock action plugin starts it (python3 -, this file's text and one call of keep(); the token travels in
that text on stdin, never in an argv) in its own session. Every third of the TTL it renews the lock on the head
over SSH (module_utils/_lock_file's text and a call of renew() on the remote python's stdin). It ends when the
ansible-playbook process it serves is gone (Ctrl-C, a kill, the end of the run), when the lock is released or taken,
or when no renewal got through for a whole TTL. It imports only the standard library and carries no __future__
import.
"""

import json
import os
import subprocess
import time


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def renew_once(argv, program, timeout):
    """One renewal: 'renewed', 'gone', 'taken', or 'failed' when the head did not answer."""
    try:
        done = subprocess.run(argv, input=program.encode(), capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "failed"
    lines = done.stdout.decode("utf-8", "replace").split()
    return lines[-1] if done.returncode == 0 and lines and lines[-1] in ("renewed", "gone", "taken") else "failed"


def keep(params):
    """params: {argv (how to run python on the head), program (the renewal's text), ttl, run_pid}."""
    period = max(2.0, params["ttl"] / 3.0)
    last_ok, due = time.monotonic(), time.monotonic() + period
    while alive(params["run_pid"]):
        if time.monotonic() >= due:
            outcome = renew_once(params["argv"], params["program"], period)
            if outcome in ("gone", "taken"):
                return outcome
            if outcome == "renewed":
                last_ok = time.monotonic()
            elif time.monotonic() - last_ok > params["ttl"]:
                return "lost"  # the lock has expired on the head by now
            due = time.monotonic() + period
        time.sleep(0.5)
    return "run ended"


def program(params):
    """The keeper's text for python3 - (this file and a call of keep(params))."""
    import inspect
    import sys
    return "%s\nkeep(json.loads(%r))\n" % (inspect.getsource(sys.modules[__name__]), json.dumps(params))
