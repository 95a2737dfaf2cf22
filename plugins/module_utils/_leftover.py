# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One transfer of a kind at a time on a node: a run ends what an interrupted earlier run left behind.

A Ctrl-C on the controller or a dropped SSH connection does not reach a module on a node: an async job (and a
plain module run, until it writes its result) runs on with its listener, docker load, ssh and rsync children. Each
transfer claims a marker file naming its session (async_wrapper's setsid, or sshd's per-channel session); the next
run of the same kind reads the marker and, when processes of that session still run, ends every one of them (TERM,
then KILL after a grace) before it goes on. The marker keeps the session leader's start time: a session whose
leader's PID was reused for a new session is never taken for the earlier run.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time

JOBS_DIR = "~/.cache/dgx-spark/jobs"
GRACE_SECONDS = 10


def _stat(pid):
    """(session id, start time in clock ticks) of pid from /proc, or None when it is gone (or a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":
        return None
    return int(fields[3]), int(fields[19])  # fields 6 (session) and 22 (starttime), counted after "pid (comm)"


def session_members(sid):
    """PIDs of the processes in session sid (readable in /proc)."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            found = _stat(int(name))
            if found and found[0] == sid:
                members.append(int(name))
    return members


def end_session(sid, grace=GRACE_SECONDS):
    """TERM every process of session sid, KILL what is left after grace seconds; the PIDs it found."""
    members = session_members(sid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in session_members(sid):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 5)
        while session_members(sid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not session_members(sid):
            break
    return members


def _marker(name, directory):
    return os.path.join(os.path.expanduser(directory), "%s.json" % name)


def leftover(name, directory=JOBS_DIR):
    """The earlier run's marker when processes of its session still run, else None."""
    try:
        with open(_marker(name, directory)) as handle:
            earlier = json.load(handle)
        sid, leader_started = int(earlier["sid"]), earlier.get("leader_started")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    leader = _stat(sid)
    if sid == os.getsid(0) or (leader is not None and leader != (sid, leader_started)):
        return None  # this run's own session, or the PID now leads another session
    return earlier if session_members(sid) else None


def claim(name, directory=JOBS_DIR, grace=GRACE_SECONDS):
    """End what an earlier run of name left running, then mark this run's session; returns a report of what was
    ended ({pid, since, processes}) or None."""
    earlier = leftover(name, directory)
    ended = None
    if earlier:
        ended = {"pid": earlier.get("pid"), "since": earlier.get("since"),
                 "processes": end_session(int(earlier["sid"]), grace)}
    path = _marker(name, directory)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    sid = os.getsid(0)
    leader = _stat(sid)
    record = {"pid": os.getpid(), "sid": sid, "leader_started": leader[1] if leader else None,
              "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".%s." % name)
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle)
    os.replace(temp, path)
    return ended


def release(name, directory=JOBS_DIR):
    """Remove this run's marker (a later run's is left alone)."""
    path = _marker(name, directory)
    try:
        with open(path) as handle:
            mine = json.load(handle).get("pid") == os.getpid()
    except (OSError, ValueError, AttributeError):
        return
    if mine:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
