# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One SSH connection from this node to a peer Spark, shared by the modules' SSH calls (OpenSSH multiplexing).

An SSH handshake costs ~0.2 s (measured between the lab nodes; ~0.02 s through a master). The first ssh to a peer
becomes the master; the calls after it, in the same module or in the next task's (a copy's comparison, then its
job; the image copy, then the weight sync), ride on it. The master outlives its last session by PERSIST seconds,
then exits. Its socket lives in a directory only this user can enter (as Ansible keeps its own in ~/.ansible/cp);
one that is not exactly that (another owner, other modes, a symlink) means no sharing, never a shared socket.
"""

from __future__ import annotations

import os
import stat
import tempfile

PERSIST = 10
_UNIX_PATH_MAX = 100  # sun_path holds 108 bytes; ssh appends a suffix while it sets the socket up
_HASH = 40  # ssh's %C: a SHA-1 of this host, the peer, the port and the user, in hex


def private_directory(path):
    """Whether path is (or now is, created) a directory of this user that nobody else can enter."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    info = os.lstat(path)
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) == 0o700


def shared_connection(directory=None):
    """ssh options that share one connection per peer, or none when the socket could not be private or its path
    would not work (too long for a unix socket, or whitespace, which rsync's -e would split)."""
    directory = directory or os.path.join(tempfile.gettempdir(), "dgx-spark-ssh-%d" % os.geteuid())
    if len(directory) + 1 + _HASH > _UNIX_PATH_MAX or any(char.isspace() for char in directory):
        return []
    if not private_directory(directory):
        return []
    return ["-o", "ControlMaster=auto", "-o", "ControlPath=" + os.path.join(directory, "%C"),
            "-o", "ControlPersist=%d" % PERSIST]
