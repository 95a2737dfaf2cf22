# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for sleep and wake."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _lazy

_power = _lazy.Module("_power")


class FilterModule(object):
    """dgx_spark.cluster power filters."""

    def filters(self):
        return {"power_wol_interface": _power.later("wol_interface")}
