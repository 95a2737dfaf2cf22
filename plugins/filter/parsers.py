# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn fabric and serving tool output into data (the parsers live in module_utils/_tool_output)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _lazy

_tool_output = _lazy.Module("_tool_output")


def _text_filter(parser):
    def run(text):
        if isinstance(text, dict) and "stdout" in text:  # a registered command result
            text = text.get("stdout", "")
        if not isinstance(text, str):
            raise AnsibleFilterError("%s expects the tool's output as text (or a registered result), got %s"
                                     % (parser.__name__, type(text).__name__))
        return parser(text)
    run.__name__ = parser.__name__
    run.__doc__ = parser.__doc__
    return run


class FilterModule(object):
    """dgx_spark.cluster tool-output parsers."""

    def filters(self):
        parsers = [_tool_output.later(name) for name in (
            "ibdev2netdev", "rdma_link", "show_gids", "ibv_devinfo", "ethtool_speed_mbps", "ethtool_wake_on",
            "ib_write_bw_results", "ib_write_lat_results", "nccl_results", "ray_status", "trtllm_serve_log")]
        return dict([(parser.__name__, _text_filter(parser)) for parser in parsers]
                    + [("command_output", _tool_output.later("command_output"))])
