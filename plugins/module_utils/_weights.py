# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model weights on disk: what a Hugging Face cache entry (or a local model directory) consists of.

A cache entry is `<cache>/models--<org>--<name>/{blobs,snapshots,refs}`; snapshot files are relative symlinks into
`blobs/` (or, in newer layouts, into blobs kept at the cache root). Syncing only the repo directory, or following
links into copies, is how the old pipes shipped dangling links and doubled disk use. This module lists every path
the entry needs, relative to the cache root, and refuses an entry whose links do not resolve inside the cache.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re


class LayoutError(ValueError):
    """The weights are not complete on the source: the message lists what is missing."""


def repo_folder(repo_id):
    """'org/name' -> 'models--org--name' (the hub's folder naming)."""
    return "models--" + repo_id.replace("/", "--")


def _inside(path, root):
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def manifest(root, top):
    """Every path under root/top, relative to root, plus what its symlinks point to outside top (inside root).

    Returns (paths, files) where files maps each regular file reached through top (as its snapshot name) to its
    size. Raises LayoutError listing dangling links and links that leave root.
    """
    root = os.path.realpath(root)
    base = os.path.join(root, top)
    if not os.path.isdir(base):
        raise LayoutError("%s does not exist on the source" % base)
    paths, files, dangling, escaping = {top}, {}, [], []
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            paths.add(os.path.relpath(full, root))
            if not os.path.islink(full) and not os.path.isfile(full):
                continue
            target = os.path.realpath(full)
            if not os.path.exists(target):
                dangling.append(os.path.relpath(full, root))
            elif not _inside(target, root):
                escaping.append("%s -> %s" % (os.path.relpath(full, root), target))
            elif os.path.isfile(target):
                files[os.path.relpath(full, root)] = os.path.getsize(target)
                if not _inside(target, base):  # a blob kept outside the repo folder (hub-level)
                    rel = os.path.relpath(target, root)
                    paths.add(rel)
                    parent = os.path.dirname(rel)
                    while parent:
                        paths.add(parent)
                        parent = os.path.dirname(parent)
    if dangling or escaping:
        raise LayoutError("the weights under %s are incomplete on the source: %s%s. Download them again before "
                          "syncing." % (base, ("dangling links: " + ", ".join(sorted(dangling)[:10])) if dangling
                                        else "", ("; links leaving the cache: " + ", ".join(sorted(escaping)[:10]))
                                        if escaping else ""))
    return sorted(paths), files


def check_files(root, files):
    """On the destination: which of files ({relative name: size}) do not open or differ in size. Empty = complete."""
    problems = []
    for name, size in sorted(files.items()):
        path = os.path.join(root, name)
        try:
            with open(path, "rb") as handle:
                handle.read(1)
            actual = os.path.getsize(path)
        except (IOError, OSError) as exc:
            problems.append("%s: %s" % (name, exc.strerror or exc))
            continue
        if actual != size:
            problems.append("%s: %d bytes, the source has %d" % (name, actual, size))
    return problems


SYNC_TIMEOUT = 7200  # weight_sync's default timeout, for the module and its action plugin
_RSYNC_SENT = re.compile(r"^Total bytes sent:\s*([\d,.]+)", re.M)
_RSYNC_FILES = re.compile(r"^Number of regular files transferred:\s*([\d,.]+)", re.M)
_RSYNC_FILE_BYTES = re.compile(r"^Total transferred file size:\s*([\d,.]+)", re.M)


def rsync_stats(text):
    """`rsync --stats` output -> (bytes sent, regular files transferred, size of those files)."""
    def number(pattern):
        match = pattern.search(text or "")
        return int(match.group(1).replace(",", "").replace(".", "")) if match else None
    return number(_RSYNC_SENT), number(_RSYNC_FILES), number(_RSYNC_FILE_BYTES)
