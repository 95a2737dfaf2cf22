# -*- coding: utf-8 -*-
# Copyright: (c) 2026, DGX Spark cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for model serving: a validated catalog entry and its fit plan over the Sparks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import hmac
import json

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_bytes
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _serving_plan


def serving_entry(catalog, key, overrides=None):
    try:
        return _serving_plan.catalog_entry(catalog, key, overrides)
    except _serving_plan.CatalogError as exc:
        raise AnsibleFilterError(str(exc))


def serving_node(host_vars):
    """One node for serving_plan from its hostvars: {host, total_mib, available_mib} (gpu_vram_facts)."""
    facts = host_vars.get("gpu_vram") or {}
    return {"host": host_vars["inventory_hostname"], "total_mib": facts.get("total_mib"),
            "available_mib": facts.get("available_mib")}


def serving_containers(inspect_json):
    """`docker inspect <containers>` JSON (text; empty when there are none) -> [{name, state, labels}]."""
    if not (inspect_json or "").strip():
        return []
    return [{"name": (data.get("Name") or "").lstrip("/"), "state": (data.get("State") or {}).get("Status"),
             "labels": (data.get("Config") or {}).get("Labels") or {}} for data in json.loads(inspect_json)]


def serving_reusable(per_host, plan, config):
    """True when exactly the planned ranks run, each with this configuration's label (nothing else serving).

    per_host: {host: [containers]} from serving_containers."""
    expected = dict((host, rank) for rank, host in enumerate(plan.get("hosts") or []))
    for host, containers in per_host.items():
        running = [c for c in containers if c["state"] == "running"]
        if host not in expected:
            if running:
                return False
            continue
        matching = [c for c in running if c["labels"].get("dgx-spark.config") == config
                    and c["labels"].get("dgx-spark.rank") == str(expected[host])]
        if len(matching) != 1 or len(running) != 1:
            return False
    return bool(expected) and all(host in per_host for host in expected)


def hmac_sha256(body, secret):
    """Hex HMAC-SHA256 of body (the exact bytes sent) with secret: the webhook's X-Spark-Signature value."""
    return hmac.new(to_bytes(secret), to_bytes(body), hashlib.sha256).hexdigest()


class FilterModule(object):
    """dgx_spark.cluster serving filters."""

    def filters(self):
        return {"serving_entry": serving_entry, "serving_plan": _serving_plan.plan,
                "serving_config_hash": _serving_plan.config_hash, "vllm_rank_argv": _serving_plan.vllm_rank_argv,
                "serving_node": serving_node, "serving_containers": serving_containers,
                "serving_reusable": serving_reusable, "hmac_sha256": hmac_sha256}
