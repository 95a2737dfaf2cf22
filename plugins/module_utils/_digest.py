# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A file's SHA-256, read in chunks (hf_snapshot_info's blobs, serving_info's files)."""

from __future__ import annotations

import hashlib

CHUNK = 8 << 20


def sha256_of(path):
    """The hex SHA-256 of the file at path (FileNotFoundError when there is none)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
