# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rsync runs for weight_sync, one stage after the other, the rsyncs of a stage side by side, with their progress.

The module keeps to run_command: it runs `python3 -` with program() on stdin. That child runs each stage's rsyncs
at once (each with --info=progress2 when a progress file is asked for), passes their output through and exits with
the first failure's status (a failed stage ends the run). It rewrites the progress file (JSON: bytes, seconds) at
most once a second with the bytes of the finished stages plus each running rsync's latest progress line
("  1,234,567  12%  100.00MB/s  0:00:10").
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _progress_file

CHILD = r"""
import re
import subprocess
import sys
import threading
import time

LINE = re.compile(rb"(?:^|[\r\n])\s*([\d,.]+)\s+\d+%")
start, finished_bytes, outputs, codes = time.monotonic(), 0, [], []


def follow(rsync, latest, index):
    out = bytearray()
    while True:
        chunk = rsync.stdout.read1(1 << 16)
        if not chunk:
            break
        out += chunk
        found = LINE.findall(bytes(out[-4096:]))
        if found:
            latest[index] = int(found[-1].replace(b",", b"").replace(b".", b""))
    outputs.append(bytes(out))
    codes.append(rsync.wait())


for stage in PARAMS["stages"]:
    latest = {}
    followers = [threading.Thread(target=follow, args=(subprocess.Popen(argv, stdout=subprocess.PIPE), latest, index))
                 for index, argv in enumerate(stage)]  # stderr stays the module's
    for follower in followers:
        follower.start()
    for follower in followers:
        while follower.is_alive():
            follower.join(1)
            if PARAMS["progress_file"]:
                write_progress(PARAMS["progress_file"], {"bytes": finished_bytes + sum(latest.values()),
                                                         "seconds": round(time.monotonic() - start, 1)})
    finished_bytes += sum(latest.values())
    if any(codes):
        break
sys.stdout.buffer.write(b"".join(outputs))
sys.exit(next((code for code in codes if code), 0))
"""


def program(stages, progress_file=None):
    """The text for `python3 -` that runs stages (lists of rsync argvs) and reports their progress to progress_file."""
    params = json.dumps({"stages": stages, "progress_file": progress_file})
    return "import json\nimport os\nPARAMS = json.loads(%r)\n%s%s" % (params, _progress_file.WRITER, CHILD)
