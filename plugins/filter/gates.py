# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn collected RoCE and NCCL outputs into gated checks and a report."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _lazy

_gates = _lazy.Module("_gates")


class FilterModule(object):
    """dgx_spark.cluster gate filters."""

    def filters(self):
        return {
            "roce_node_checks": _gates.later("roce_node_checks"),
            "roce_bandwidth_checks": _gates.later("roce_bandwidth_checks"),
            "roce_latency_checks": _gates.later("roce_latency_checks"),
            "roce_matrix": _gates.later("roce_matrix"),
            "nccl_checks": _gates.later("nccl_checks"),
            "nccl_gate": _gates.later("nccl_gate"),
            "nccl_mpirun_argv": _gates.later("nccl_mpirun_argv"),
            "gate_report": _gates.later("report"),
            "check_line": _gates.later("check_line"),
        }
