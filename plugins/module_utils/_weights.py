# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model weights on disk: what a Hugging Face cache entry (or a local model directory) consists of.

A cache entry is `<cache>/models--<org>--<name>/{blobs,snapshots,refs}`; snapshot files are relative symlinks into
`blobs/` (or, in newer layouts, into blobs kept at the cache root). Syncing only the repo directory, or following
links into copies, is how the old pipes shipped dangling links and doubled disk use. This module lists every path
the entry needs, relative to the cache root, and refuses an entry whose links do not resolve inside the cache.
"""

from __future__ import annotations

import os
import re
import stat


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


def listing(root, top):
    """What a copy needs to know of the source: manifest(root, top) as {paths, files} plus sizes, the size of each
    regular file (not a link) among the paths; {error} when the entry is incomplete (run on a node, printed as JSON)."""
    try:
        paths, files = manifest(root, top)
    except LayoutError as exc:
        return {"error": str(exc)}
    real, sizes = os.path.realpath(root), {}
    for path in paths:
        status = os.lstat(os.path.join(real, path))  # a link is not followed: its target is listed itself
        if stat.S_ISREG(status.st_mode):
            sizes[path] = status.st_size
    return {"paths": paths, "files": files, "sizes": sizes}


def move_into(staging, root):
    """Everything under staging moved to the same place under root: directories merged, files and links replaced
    (each a rename on one filesystem, so a reader sees the old file or the new one, never half of one)."""
    for dirpath, dirnames, filenames in os.walk(staging):
        target = os.path.join(root, os.path.relpath(dirpath, staging))
        if not os.path.isdir(target):
            os.makedirs(target)
        for name in filenames + [name for name in dirnames if os.path.islink(os.path.join(dirpath, name))]:
            os.replace(os.path.join(dirpath, name), os.path.join(target, name))


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
_RSYNC_RECEIVED = re.compile(r"^Total bytes received:\s*([\d,.]+)", re.M)
_RSYNC_FILES = re.compile(r"^Number of regular files transferred:\s*([\d,.]+)", re.M)
_RSYNC_FILE_BYTES = re.compile(r"^Total transferred file size:\s*([\d,.]+)", re.M)


def rsync_stats(text, pulled=False):
    """`rsync --stats` output (of one or more rsyncs) -> (bytes moved: sent, or received when pulled from the other
    node, regular files transferred, size of those files), summed over the runs; None where no run reported it."""
    def number(pattern):
        found = pattern.findall(text or "")
        return sum(int(value.replace(",", "").replace(".", "")) for value in found) if found else None
    return number(_RSYNC_RECEIVED if pulled else _RSYNC_SENT), number(_RSYNC_FILES), number(_RSYNC_FILE_BYTES)


BULK_BYTES = 64 << 20  # files from this size on are spread over the parallel streams


def stream_groups(paths, sizes, streams):
    """Split a manifest's paths for `streams` parallel rsyncs: [rest] + [bulk groups] (sizes: listing()'s, of the
    regular files).

    The rest (directories, links, refs, small files) goes first, alone, so the parallel streams never create the
    same directory at once; regular files of BULK_BYTES and more are dealt largest first to the least loaded of up
    to `streams` groups. One group (everything) when there is nothing to spread."""
    sizes = dict((path, size) for path, size in sizes.items() if size >= BULK_BYTES)
    count = min(streams, len(sizes))
    if count < 2:
        return [list(paths)]
    groups, loads = [[] for stream in range(count)], [0] * count
    for path in sorted(sizes, key=lambda name: (-sizes[name], name)):
        lightest = loads.index(min(loads))
        groups[lightest].append(path)
        loads[lightest] += sizes[path]
    return [[path for path in paths if path not in sizes]] + [sorted(group) for group in groups]
