# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The progress file of a long module job, which the progress action plugin shows while the job runs.

The job's child process rewrites it whole (JSON: bytes, seconds, and expected when known) at most once a second
with write_progress. The children run this file's text (python3 -) before their own: it imports only the standard
library and carries no __future__ import, so another module's text can follow it.
"""

import json
import os


def write_progress(path, fields):
    """Replace the progress file with fields (a reader never sees half a file)."""
    with open(path + ".tmp", "w") as out:
        json.dump(fields, out)
    os.replace(path + ".tmp", path)


def remove(path):
    """The progress file and its half-written temporary, once the job ends (either may be there)."""
    for leftover in (path, path + ".tmp"):
        if os.path.exists(leftover):
            os.remove(leftover)
