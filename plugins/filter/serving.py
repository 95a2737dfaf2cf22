# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for model serving: the catalog entry, its fit plan, each rank's container and argv, what serves."""

from __future__ import annotations

import hashlib
import hmac

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_bytes
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _lazy

_catalog = _lazy.Module("_catalog")
_engine_argv = _lazy.Module("_engine_argv")
_fit_plan = _lazy.Module("_fit_plan")
_hf_download = _lazy.Module("_hf_download")
_serving_state = _lazy.Module("_serving_state")


def serving_entry(catalog, key, overrides=None, engine_root=None):
    """The catalog entry key (engine_root defaults to _catalog.TRT_ENGINE_ROOT)."""
    try:
        return _catalog.catalog_entry(catalog, key, overrides, engine_root or _catalog.TRT_ENGINE_ROOT)
    except _catalog.CatalogError as exc:
        raise AnsibleFilterError(str(exc))


def serving_node(host_vars, look=None):
    """One node for serving_plan from its hostvars: {host, total_mib, available_mib} from the gpu_vram facts, or from
    the memory of the serving_info result registered as look."""
    facts = ((host_vars.get(look) or {}).get("memory") if look else host_vars.get("gpu_vram")) or {}
    return {"host": host_vars["inventory_hostname"], "total_mib": facts.get("total_mib"),
            "available_mib": facts.get("available_mib")}


def _parsed(per_host):
    return dict((host, _serving_state.containers(text)) for host, text in per_host.items())


def serving_status(per_host, probe=None, unreachable=None):
    """{host: docker inspect JSON text}, the rank-0 probe and the unreachable hosts -> the cluster's serving state
    (see _serving_state)."""
    return _serving_state.status(_parsed(per_host), probe, unreachable)


def serving_reusable(per_host, plan, config):
    """{host: docker inspect JSON text}: True when exactly the planned ranks run with this configuration."""
    return _serving_state.reusable(_parsed(per_host), plan, config)


def serving_first_hosts(per_host):
    """{host: docker inspect records}: the hosts whose serving container starts before the others'."""
    return _serving_state.first_hosts(_parsed(per_host))


def hmac_sha256(body, secret):
    """Hex HMAC-SHA256 of body (the exact bytes sent) with secret: the webhook's X-Spark-Signature value."""
    return hmac.new(to_bytes(secret), to_bytes(body), hashlib.sha256).hexdigest()


def redact(text, secrets):
    """text with every secret of secrets (the empty and the very short ones aside) replaced by ********."""
    for secret in sorted((s for s in secrets if isinstance(s, str) and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "********")
    return text


class FilterModule(object):
    """dgx_spark.cluster serving filters."""

    def filters(self):
        return {"serving_entry": serving_entry, "serving_plan": _fit_plan.later("plan"),
                "serving_config_hash": _serving_state.later("config_hash"),
                "serving_rank_argv": _engine_argv.later("rank_argv"),
                "serving_container": _engine_argv.later("container_name"),
                "trt_build_args": _engine_argv.later("trt_build_args"),
                "serving_peers": _engine_argv.later("peers"), "serving_first_hosts": serving_first_hosts,
                "serving_watchdog_rank": _engine_argv.later("watchdog_rank"),
                "hf_download_argv": _hf_download.later("hf_download_argv"),
                "hf_download_denied": _hf_download.later("hf_download_denied"),
                "serving_node": serving_node, "serving_status": serving_status,
                "serving_reusable": serving_reusable, "hmac_sha256": hmac_sha256, "redact": redact}
