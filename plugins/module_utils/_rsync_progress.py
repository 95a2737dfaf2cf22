# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rsync with its progress in a file, for the weight_sync action plugin to show.

The module keeps to run_command: it runs `python3 -` with program() on stdin, and that child runs rsync with
--info=progress2, passes rsync's output and exit status through, and rewrites the progress file (JSON: bytes,
seconds) at most once a second from rsync's latest progress line ("  1,234,567  12%  100.00MB/s  0:00:10").
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _progress_file

CHILD = r"""
import os
import re
import subprocess
import sys
import time

LINE = re.compile(rb"(?:^|[\r\n])\s*([\d,.]+)\s+\d+%")
start, due = time.monotonic(), 0.0
rsync = subprocess.Popen(PARAMS["argv"], stdout=subprocess.PIPE)  # stderr stays the module's
out = bytearray()
while True:
    chunk = rsync.stdout.read1(1 << 16)
    if not chunk:
        break
    out += chunk
    now = time.monotonic()
    found = LINE.findall(bytes(out[-4096:])) if now >= due else None
    if found:
        write_progress(PARAMS["progress_file"], {"bytes": int(found[-1].replace(b",", b"").replace(b".", b"")),
                                                 "seconds": round(now - start, 1)})
        due = now + 1
sys.stdout.buffer.write(bytes(out))
sys.exit(rsync.wait())
"""


def program(argv, progress_file):
    """The text for `python3 -` that runs argv (an rsync argv with --info=progress2) and reports its progress."""
    params = json.dumps({"argv": argv, "progress_file": progress_file})
    return "import json\nPARAMS = json.loads(%r)\n%s%s" % (params, _progress_file.WRITER, CHILD)
