# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The progress file of a long module job, which the progress action plugin shows while the job runs.

The job's child process rewrites it whole (JSON: bytes, seconds, and expected when known) at most once a second;
WRITER is the program text of that rewrite, for the children the modules start with `python3 -`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

WRITER = r'''
def write_progress(path, fields):
    with open(path + ".tmp", "w") as out:
        json.dump(fields, out)
    os.replace(path + ".tmp", path)  # a reader never sees half a file
'''


def remove(path):
    """The progress file and its half-written temporary, once the job ends (either may be there)."""
    for leftover in (path, path + ".tmp"):
        if os.path.exists(leftover):
            os.remove(leftover)
