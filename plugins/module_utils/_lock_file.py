# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The swap lock's file on the head: one launch or stop of a model at a time.

The file is a JSON object {holder, model, token, since, expires, ttl}; every change happens under flock on a guard
file beside it and is written to a temporary created exclusively, without following links, mode 0600, then renamed
over the lock. A file that is not such an object (damaged, hand-edited) counts as no lock, and is said so.
The serving_lock module uses this file; so does the lock keeper's renewal, which runs this file's text on the head
(python3 -) and calls renew(): it imports only the standard library and carries no __future__ import.
"""

import fcntl
import json
import os
import sys
import time

FIELDS = ("holder", "model", "token", "since", "expires", "ttl")


def read(path):
    """(the lock as a dict, or None; a note when the file was there but not a lock)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, "the lock file %s could not be read (%s): it counts as no lock" % (path, exc.strerror)
    with os.fdopen(fd) as handle:
        text = handle.read()
    try:
        lock = json.loads(text)
    except ValueError:
        lock = None
    if not isinstance(lock, dict) or not isinstance(lock.get("token"), str) or not all(
            isinstance(lock.get(name), (int, float)) for name in ("since", "expires")):
        return None, "the lock file %s held no lock (%d bytes that are not one): it counts as no lock" % (
            path, len(text))
    return lock, None


def write(path, lock):
    """Replace the lock whole: a private temporary (exclusive, no link followed, 0600), then a rename."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        os.unlink(tmp)  # a temporary a killed run left
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(dict((name, lock.get(name)) for name in FIELDS), handle)
    os.rename(tmp, path)


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class Guard(object):
    """flock on <path>.guard for one read-and-change of the lock. create=False (check mode) never makes the guard
    file: without one, nobody is changing the lock and there is nothing to wait for."""

    def __init__(self, path, create=True):
        self.path = path + ".guard"
        self.create = create
        self.handle = None

    def __enter__(self):
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NOFOLLOW | (os.O_CREAT if self.create else 0), 0o600)
        except FileNotFoundError:
            return self
        self.handle = os.fdopen(fd, "w")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            self.handle.close()


def describe(lock, now=None):
    """Who holds it, for what, since when and for how long yet."""
    now = time.time() if now is None else now
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(lock.get("since", 0)))
    left = max(0, int(lock.get("expires", 0) - now))
    return "%s (%s) since %s, expires in %d s unless renewed" % (
        lock.get("holder"), lock.get("model") or "no model", since, left)


def expired(lock, now=None):
    return (time.time() if now is None else now) > lock.get("expires", 0)


def renew(path, token, ttl):
    """Push the lock's expiry ttl seconds ahead when it still holds token. Prints and returns 'renewed' or why not
    ('gone', 'taken')."""
    with Guard(path):
        lock, _note = read(path)
        if lock is None:
            outcome = "gone"
        elif lock["token"] != token:
            outcome = "taken"
        else:
            lock["expires"], lock["ttl"] = time.time() + ttl, ttl
            write(path, lock)
            outcome = "renewed"
    sys.stdout.write(outcome + "\n")
    return outcome
