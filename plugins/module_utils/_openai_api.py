# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A served model's OpenAI API as the probes ask it (serving_wait, serving_info): /health, then /v1/models listing the
served name and one real greedy completion (a running head whose peer rank died still answers /health)."""

from __future__ import annotations

import json

from ansible.module_utils.urls import open_url
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _api_key


def http_status(url):
    try:
        return open_url(url, timeout=5, validate_certs=False).getcode()
    except Exception as exc:  # refused, reset, timed out, HTTP errors: not ready yet
        return getattr(exc, "code", None)


def api_json(url, timeout, body=None, key=""):
    """(HTTP status, parsed JSON body or None) of a GET, or of a POST when body is given; (None, None) on no answer."""
    try:
        response = open_url(url, method="POST" if body is not None else "GET", timeout=timeout, validate_certs=False,
                            data=None if body is None else json.dumps(body), headers=_api_key.headers(key))
        status, text = response.getcode(), response.read()
    except Exception as exc:  # HTTP errors carry a status and maybe a body
        status = getattr(exc, "code", None)
        text = exc.read() if status is not None and hasattr(exc, "read") else b""
    try:
        return status, json.loads(text)
    except ValueError:
        return status, None


def api_problem(base, served_name, completion_timeout, key=""):
    """(None, fields) when /v1/models lists served_name and one real completion answers; else (problem, fields)."""
    status, listing = api_json(base + "/v1/models", 30, key=key)
    models = [entry.get("id") for entry in (listing or {}).get("data") or [] if isinstance(entry, dict)]
    if status != 200 or served_name not in models:
        return "%s/v1/models lists %s (HTTP %s), not %s" % (base, models, status, served_name), {"models": models}
    status, answer = api_json(base + "/v1/completions", completion_timeout,
                              {"model": served_name, "prompt": "The DGX Spark", "max_tokens": 8, "temperature": 0}, key)
    answer = answer if isinstance(answer, dict) else {}
    tokens = (answer.get("usage") or {}).get("completion_tokens") or 0
    text = "".join(choice.get("text") or "" for choice in answer.get("choices") or [] if isinstance(choice, dict))
    fields = {"models": models, "completion": text, "completion_tokens": tokens}
    if status != 200 or tokens < 1:
        detail = json.dumps(answer)[:300] if answer else "no JSON answer"
        return "no completion from %s: HTTP %s %s" % (served_name, status, detail), fields
    return None, fields
