# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One SSH connection to the peer Spark shared by a module's SSH calls (OpenSSH multiplexing).

An SSH handshake costs ~0.2 s (measured between the lab nodes, ~0.02 s through a master); a module that runs
ssh several times pays it once. The control socket sits in a private directory (0700) the module removes when
it ends; the master outlives its last session by PERSIST seconds, then exits.
"""

from __future__ import annotations

import os
import shutil
import tempfile

PERSIST = 5
_UNIX_PATH_MAX = 100  # sun_path holds 108 bytes; ssh appends a suffix while it sets the socket up


class SharedConnection:
    """options() for each ssh that may share the connection; close() when the module is done."""

    def __init__(self, prefix):
        self.prefix, self.directory = prefix, None

    def options(self):
        """ssh options that share the connection, or none when the socket path would not work (too long for a
        unix socket, or whitespace, which rsync's -e would split)."""
        if self.directory is None:
            self.directory = tempfile.mkdtemp(prefix=self.prefix)
        path = os.path.join(self.directory, "peer")
        if len(path) > _UNIX_PATH_MAX or any(char.isspace() for char in path):
            return []
        return ["-o", "ControlMaster=auto", "-o", "ControlPath=" + path, "-o", "ControlPersist=%d" % PERSIST]

    def close(self):
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
