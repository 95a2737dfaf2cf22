# -*- coding: utf-8 -*-
# Copyright: (c) 2026, DGX Spark cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn collected RoCE and NCCL outputs into gated checks and a report."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _fabric_checks


class FilterModule(object):
    """dgx_spark.cluster gate filters."""

    def filters(self):
        return {
            "roce_node_checks": _fabric_checks.roce_node_checks,
            "roce_bandwidth_checks": _fabric_checks.roce_bandwidth_checks,
            "roce_latency_checks": _fabric_checks.roce_latency_checks,
            "nccl_checks": _fabric_checks.nccl_checks,
            "nccl_mpirun_argv": _fabric_checks.nccl_mpirun_argv,
            "gate_report": _fabric_checks.report,
            "check_line": _fabric_checks.check_line,
        }
