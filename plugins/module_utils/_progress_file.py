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
import re

# The name the progress action plugin gives the file: <module>-<32 hex digits>.json (in the async directory).
NAME = re.compile(r"^[a-z0-9_]{1,64}-[0-9a-f]{32}[.]json$")


def problem(path):
    """None when path may be this job's progress file: named as the action plugin names them and not there yet
    (the module makes it, so the removal at the end removes nothing but what the job wrote); else why not."""
    if not NAME.match(os.path.basename(path)) or not os.path.isabs(path):
        return ("progress_file %r is not allowed: the action plugin sets it to <async dir>/<module>-<32 hex>.json"
                % path)
    if os.path.lexists(path) or os.path.lexists(path + ".tmp"):
        return "progress_file %r is not allowed: it exists already, and the module only removes what it made" % path
    return None


def write_progress(path, fields):
    """Replace the progress file with fields (a reader never sees half a file), through a private temporary created
    exclusively without following a link."""
    tmp = path + ".tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)  # the temporary of a write that was interrupted
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(fields, out)
    os.replace(tmp, path)


def read_progress(path):
    """What write_progress wrote at path, or None when there is no such file (or not yet a whole one)."""
    try:
        with open(path) as written:
            return json.load(written)
    except (OSError, ValueError):
        return None


def remove(path):
    """The progress file and its half-written temporary, once the job ends (either may be there)."""
    for leftover in (path, path + ".tmp"):
        if os.path.lexists(leftover):
            os.remove(leftover)
