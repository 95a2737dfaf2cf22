# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a catalog model runs: solo on one Spark, or tensor parallel over both, from the nodes' memory.

The memory estimate, per node, in GiB:
  weights  = params_b * 1e9 * bytes_per_param(dtype or quantization) / 2**30 / tp
  kv       = kv_cache_gib (entry, else the default) / tp
  overhead = overhead_gib (entry, else the default): CUDA context, activations, the engine's own buffers
  need     = weights + kv + overhead
  budget   = node memory total (GB10: unified, /proc/meminfo MemTotal) * memory_fraction
It fits solo when need(tp=1) <= the head's budget; else over both with tp=2 when need(tp=2) <= every node's
budget; else it is refused with these numbers.
"""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.module_utils._catalog import BYTES_PER_PARAM

GIB = float(1 << 30)
MIB_PER_GIB = 1024.0


def weights_gib(entry):
    precision = entry.get("quantization") or entry["dtype"]
    return entry["params_b"] * 1e9 * BYTES_PER_PARAM[precision] / GIB


def plan(entry, nodes, defaults=None):
    """Where the model runs.

    nodes: [{host, total_mib, available_mib}] in order (head first), from gpu_vram_facts.
    defaults: {memory_fraction, kv_cache_gib, overhead_gib}.
    Returns {fits, mode (solo|tp), tp, hosts, weights_gib, per_node: [...], reason}.
    """
    defaults = dict({"memory_fraction": 0.85, "kv_cache_gib": 8.0, "overhead_gib": 6.0}, **(defaults or {}))
    weights = weights_gib(entry)
    kv = float(entry.get("kv_cache_gib") if entry.get("kv_cache_gib") is not None else defaults["kv_cache_gib"])
    overhead = float(entry.get("overhead_gib") if entry.get("overhead_gib") is not None
                     else defaults["overhead_gib"])
    options = [1, 2] if entry["tp"] == "auto" else [entry["tp"]]
    tried = []
    for tp in options:
        hosts = nodes[:tp]
        need = weights / tp + kv / tp + overhead
        per_node = []
        for node in hosts:
            budget = (node.get("total_mib") or 0) / MIB_PER_GIB * defaults["memory_fraction"]
            per_node.append({"host": node["host"], "need_gib": round(need, 1), "budget_gib": round(budget, 1),
                             "available_gib": round((node.get("available_mib") or 0) / MIB_PER_GIB, 1),
                             "fits": need <= budget})
        fits = len(hosts) == tp and all(n["fits"] for n in per_node)
        tried.append("tp=%d needs %.1f GiB per node (weights %.1f + KV %.1f + overhead %.1f) against %s"
                     % (tp, need, weights / tp, kv / tp, overhead,
                        ", ".join("%s %.1f GiB" % (n["host"], n["budget_gib"]) for n in per_node)
                        or "no node"))
        if fits:
            return {"fits": True, "mode": "solo" if tp == 1 else "tp", "tp": tp, "hosts": [n["host"] for n in hosts],
                    "weights_gib": round(weights, 1), "kv_cache_gib": kv, "overhead_gib": overhead,
                    "per_node": per_node, "reason": tried[-1]}
    return {"fits": False, "mode": None, "tp": None, "hosts": [], "weights_gib": round(weights, 1),
            "kv_cache_gib": kv, "overhead_gib": overhead, "per_node": [],
            "reason": "does not fit: " + "; ".join(tried) + " (budget = memory total x %.2f)"
                      % defaults["memory_fraction"]}
