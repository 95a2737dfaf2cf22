# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a catalog model runs: how many Sparks, split how (tensor x pipeline parallel), from the nodes' memory.

A GB10 has one GPU, so a placement of tp x pp ranks takes tp x pp nodes, rank r on the r-th node in the play's
order (the head first); in a ring, every other pipeline stage's ranks run backwards along it (rank_nodes). The memory estimate, per node, in GiB:
  weights  = params_b * 1e9 * bytes_per_param(dtype or quantization) / 2**30 / (tp * pp)
  kv       = kv_cache_gib (entry, else the default) / (tp * pp)
  overhead = overhead_gib (entry, else the default): CUDA context, activations, the engine's own buffers
  need     = weights + kv + overhead
  budget   = node memory total (GB10: unified, /proc/meminfo MemTotal) * memory_fraction
The placements are tried fewest nodes first and the first whose need fits every node's budget is chosen; a model
that fits nowhere is refused with the numbers of each placement tried. On a given number of nodes n, `auto` tensor
parallel is the largest power of two that divides n (attention heads divide by powers of two, rarely by 3) and the
rest is pipeline parallel: 2 -> tp 2, 3 -> pp 3, 4 -> tp 4, 6 -> tp 2 x pp 3, 8 -> tp 8.
"""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.module_utils._catalog import BYTES_PER_PARAM, MAX_RANKS

GIB = float(1 << 30)
MIB_PER_GIB = 1024.0
POWERS_OF_TWO = (8, 4, 2, 1)


def weights_gib(entry):
    precision = entry.get("quantization") or entry["dtype"]
    return entry["params_b"] * 1e9 * BYTES_PER_PARAM[precision] / GIB


def placements(tp, pp, node_count):
    """(tp, pp) in the order they are tried: fewest ranks first; tp and pp are numbers or "auto"; at most
    node_count ranks (one GPU per node) and MAX_RANKS."""
    found = []
    for ranks in range(1, min(node_count, MAX_RANKS) + 1):
        if tp != "auto":
            options = [(tp, ranks // tp)] if ranks % tp == 0 else []
        elif pp != "auto":
            options = [(ranks // pp, pp)] if ranks % pp == 0 and ranks // pp in POWERS_OF_TWO else []
        else:
            options = [(size, ranks // size) for size in POWERS_OF_TWO if ranks % size == 0][:1]
        found += [(t, p) for t, p in options if pp == "auto" or p == pp]
    return found


def mode_of(tp, pp):
    return "solo" if tp * pp == 1 else "tp" if pp == 1 else "pp" if tp == 1 else "tp_pp"


def _describe(tp, pp):
    return "tp=%d" % tp if pp == 1 else "tp=%d x pp=%d" % (tp, pp)


def rank_nodes(nodes, tp, pp, topology="direct"):
    """The nodes of ranks 0 .. tp*pp-1: the first tp*pp in order. In a ring (the nodes in ring order) every odd
    pipeline stage's tensor group runs backwards, so that each stage's i-th rank is the ring neighbour of the stage
    before's i-th rank: a ring of four at tp 2 x pp 2 is n0 n1 | n3 n2, where n0 n1 | n2 n3 would send n0's
    activations to n2, the node it shares no link with (through a forwarding node)."""
    chosen = list(nodes[:tp * pp])
    if topology != "ring":
        return chosen
    stages = [chosen[stage * tp:(stage + 1) * tp] for stage in range(pp)]
    return [node for stage, group in enumerate(stages) for node in (group[::-1] if stage % 2 else group)]


def plan(entry, nodes, defaults=None, topology="direct"):
    """Where the model runs.

    nodes: [{host, total_mib, available_mib}] in order (head first), from gpu_vram_facts.
    defaults: {memory_fraction, kv_cache_gib, overhead_gib}.
    topology: the fabric's (direct, switch or ring: rank_nodes).
    Returns {fits, mode (solo|tp|pp|tp_pp), tp, pp, ranks, hosts, weights_gib, per_node: [...], reason}.
    """
    defaults = dict({"memory_fraction": 0.85, "kv_cache_gib": 8.0, "overhead_gib": 6.0}, **(defaults or {}))
    weights = weights_gib(entry)
    kv = float(entry.get("kv_cache_gib") if entry.get("kv_cache_gib") is not None else defaults["kv_cache_gib"])
    overhead = float(entry.get("overhead_gib") if entry.get("overhead_gib") is not None
                     else defaults["overhead_gib"])
    tp_wanted, pp_wanted = entry["tp"], entry.get("pp", "auto")
    tried = []
    for tp, pp in placements(tp_wanted, pp_wanted, len(nodes)):
        ranks = tp * pp
        need = (weights + kv) / ranks + overhead
        per_node = []
        for node in rank_nodes(nodes, tp, pp, topology):
            budget = (node.get("total_mib") or 0) / MIB_PER_GIB * defaults["memory_fraction"]
            per_node.append({"host": node["host"], "need_gib": round(need, 1), "budget_gib": round(budget, 1),
                             "available_gib": round((node.get("available_mib") or 0) / MIB_PER_GIB, 1),
                             "fits": need <= budget})
        tried.append("%s needs %.1f GiB per node (weights %.1f + KV %.1f + overhead %.1f) against %s"
                     % (_describe(tp, pp), need, weights / ranks, kv / ranks, overhead,
                        ", ".join("%s %.1f GiB" % (n["host"], n["budget_gib"]) for n in per_node)))
        if all(n["fits"] for n in per_node):
            return {"fits": True, "mode": mode_of(tp, pp), "tp": tp, "pp": pp, "ranks": ranks,
                    "hosts": [n["host"] for n in per_node], "weights_gib": round(weights, 1), "kv_cache_gib": kv,
                    "overhead_gib": overhead, "per_node": per_node, "reason": tried[-1]}
    wanted = "" if (tp_wanted, pp_wanted) == ("auto", "auto") else " (asked: tp=%s, pp=%s)" % (tp_wanted, pp_wanted)
    if not tried:
        reason = ("does not fit: no placement of tp=%s x pp=%s on %d node(s): one rank per GB10, at most %d ranks"
                  % (tp_wanted, pp_wanted, len(nodes), MAX_RANKS))
    else:
        reason = "does not fit on the play's %d node(s)%s: %s (budget = memory total x %.2f)" % (
            len(nodes), wanted, "; ".join(tried), defaults["memory_fraction"])
    return {"fits": False, "mode": None, "tp": None, "pp": None, "ranks": 0, "hosts": [],
            "weights_gib": round(weights, 1), "kv_cache_gib": kv, "overhead_gib": overhead, "per_node": [],
            "reason": reason}
