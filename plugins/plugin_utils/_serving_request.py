# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the serving_request action refuses in a launch request, as sentences (empty when nothing): the play's
settings, where the secrets go, and each node's settings, in the collection's validation vocabulary
(module_utils/_validate)."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _validate

SETTINGS_RULES = (
    ". model_serving_webhook_url and model_serving_hf_endpoint must be http(s) URLs, the lock wait/TTL"
    " non-negative/positive, model_serving_vllm_backend native or ray, model_serving_ray_port and"
    " model_serving_trtllm_ssh_port 1024..65535, model_serving_state_dir an absolute path without '..',"
    " model_serving_ngc_registry a registry host[:port].")
HF_ENDPOINT = "https://huggingface.co"


def _number(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def settings_problems(checks, lock_wait, lock_ttl, backend):
    """The play's settings: [[field, value, kind]] checks, the lock's wait and TTL, the vLLM backend."""
    found = _validate.problems(checks)
    wait, ttl = _number(lock_wait), _number(lock_ttl)
    if not found and wait is not None and wait >= 0 and ttl is not None and ttl > 0 and backend in ("native", "ray"):
        return []
    return ["model_serving settings rejected" + ((": " + "; ".join(found)) if found else "") + SETTINGS_RULES]


def secret_problems(model, entry, unreadable, hf_token_given, hf_endpoint, api_key, lan_trusted):
    """Where the secrets go. unreadable: {secret file variable: its path} of those the controller cannot read;
    api_key: absent, valid or invalid as configured (never the key; trtllm-serve checks none, so it serves none)."""
    found = []
    api_key = "absent" if entry["engine"] == "trtllm" else api_key
    if unreadable:
        found.append("Not readable on the controller (where the secrets are read): %s."
                     % ", ".join("%s %s" % (name, path) for name, path in unreadable.items()))
    endpoint = _validate.problems([["model_serving_hf_endpoint", hf_endpoint or HF_ENDPOINT, "secret_url"]]) \
        if hf_token_given else []
    if endpoint:
        found.append("The Hugging Face token is not sent there: %s." % "; ".join(endpoint))
    if not (lan_trusted or api_key != "absent"):
        if entry["engine"] == "trtllm":
            found.append("trtllm-serve cannot check an API key, so %s would answer anyone on the LAN: serve it only "
                         "where the LAN is trusted (model_serving_lan_trusted: true in the inventory, with port %s "
                         "firewalled to the clients) or serve the model with vLLM." % (model, entry["port"]))
        else:
            found.append("An API key is required: the endpoint listens on every address of the head. Set "
                         "model_serving_api_key (vault it) or model_serving_api_key_file, or "
                         "model_serving_lan_trusted: true when every machine on the LAN may use it.")
    if api_key == "invalid":
        found.append("model_serving_api_key must be 16 to 256 letters, digits and ._~+/=- (such as openssl rand -hex "
                     "32).")
    return found


def _variable(field):
    """The variable a node setting's field names (a trailing [] marks a list, checked item by item)."""
    return field[:-2] if field.endswith("[]") else field


def node_variables(kinds, minimums):
    """The variables node_problems reads."""
    return set(_variable(field) for field in kinds) | set(minimums)


def node_problems(host, host_vars, kinds, minimums):
    """One node's settings: kinds {variable (a trailing [] for a list): kind} and minimums {variable: least value},
    read from its variables (one it does not define is not checked)."""
    checks = []
    for field, kind in kinds.items():
        name = _variable(field)
        if name not in host_vars:
            continue
        value = host_vars[name]
        if isinstance(value, int) and not isinstance(value, bool) and kind not in _validate.INT_RANGES:
            value = str(value)  # a number where a pattern is expected (a GPU count, a size in bytes)
        checks.append([field, value, kind])
    found = _validate.problems(checks)
    if any(_number(host_vars.get(name)) is None or _number(host_vars.get(name)) < least
           for name, least in minimums.items()):
        found.append(" and ".join("%s %sat least %d" % (name, "must be " if index == 0 else "", least)
                                  for index, (name, least) in enumerate(minimums.items())))
    return ["%s: model_serving settings rejected: %s." % (host, "; ".join(found))] if found else []
