# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OpenAI endpoint's API key on the head: one 0600 file in docker's --env-file format (VLLM_API_KEY=<key>),
which rank 0's container gets its key from and the probes (serving_wait, the watchdog) read their header from."""

from __future__ import annotations

ENV_NAME = "VLLM_API_KEY"


def read(path):
    """The key in the file at path; "" when there is no such file (a model served without a key)."""
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except FileNotFoundError:
        return ""
    return text.partition("=")[2] if text.startswith(ENV_NAME + "=") else text


def content(key):
    """The file's text for key (None: no file, a model served without a key)."""
    return "%s=%s\n" % (ENV_NAME, key) if key else None


def headers(key):
    """The request headers of a probe: JSON, and the bearer key when there is one."""
    return dict({"Content-Type": "application/json"}, **({"Authorization": "Bearer " + key} if key else {}))
