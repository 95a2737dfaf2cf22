# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rsync runs for weight_sync, one stage after the other, the rsyncs of a stage side by side, with their progress.

The module keeps to run_command: it runs `python3 -` with program() on stdin, which is _progress_file's text, this
file's text and a call of run_stages. That child runs each stage's rsyncs at once (each with --info=progress2 when
a progress file is asked for), passes their output through and exits with the first failure's status (a failed
stage ends the run). It rewrites the progress file (JSON: bytes, seconds) at most once a second with the bytes of
the finished stages plus each running rsync's latest progress line ("  1,234,567  12%  100.00MB/s  0:00:10").
On a node this file imports only the standard library and carries no __future__ import (its text follows
_progress_file's).
"""

import json
import re
import subprocess
import sys
import threading
import time

if __name__ != "__main__":  # as a program on a node (python3 -, program()), _progress_file's text came first
    from ansible_collections.dgx_spark.cluster.plugins.module_utils import _progress_file
    from ansible_collections.dgx_spark.cluster.plugins.module_utils._progress_file import write_progress

PROGRESS_LINE = re.compile(rb"(?:^|[\r\n])\s*([\d,.]+)\s+\d+%")


def _start(argv):
    """One rsync, a child of this program (its own process on a node, where the module's run_command is not there to
    call)."""
    return subprocess.Popen(argv, stdout=subprocess.PIPE)  # pylint: disable=ansible-bad-function


def _follow(rsync, latest, index, outputs, codes):
    """Pass one rsync's output on (at the end) and keep its latest progress figure in latest[index]."""
    out = bytearray()
    while True:
        chunk = rsync.stdout.read1(1 << 16)
        if not chunk:
            break
        out += chunk
        found = PROGRESS_LINE.findall(bytes(out[-4096:]))
        if found:
            latest[index] = int(found[-1].replace(b",", b"").replace(b".", b""))
    outputs.append(bytes(out))
    codes.append(rsync.wait())


def run_stages(params):
    """Run params["stages"] (lists of rsync argvs), reporting to params["progress_file"]; exit with rsync's status."""
    start, finished_bytes, outputs, codes = time.monotonic(), 0, [], []
    for stage in params["stages"]:
        latest = {}
        followers = [threading.Thread(target=_follow, args=(_start(argv), latest, index, outputs, codes))
                     for index, argv in enumerate(stage)]  # stderr stays the module's
        for follower in followers:
            follower.start()
        for follower in followers:
            while follower.is_alive():
                follower.join(1)
                if params["progress_file"]:
                    write_progress(params["progress_file"], {"bytes": finished_bytes + sum(latest.values()),
                                                             "seconds": round(time.monotonic() - start, 1)})
        finished_bytes += sum(latest.values())
        if any(codes):
            break
    sys.stdout.buffer.write(b"".join(outputs))
    raise SystemExit(next((code for code in codes if code), 0))


def program(stages, progress_file=None):
    """The text for `python3 -` that runs stages (lists of rsync argvs) and reports their progress to progress_file."""
    import inspect
    params = json.dumps({"stages": stages, "progress_file": progress_file})
    return "%s\n%s\nrun_stages(json.loads(%r))\n" % (inspect.getsource(_progress_file),
                                                     inspect.getsource(sys.modules[__name__]), params)
