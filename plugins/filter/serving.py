# -*- coding: utf-8 -*-
# Copyright: (c) 2026, DGX Spark cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for model serving: a validated catalog entry and its fit plan over the Sparks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _serving_plan


def serving_entry(catalog, key, overrides=None):
    try:
        return _serving_plan.catalog_entry(catalog, key, overrides)
    except _serving_plan.CatalogError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    """dgx_spark.cluster serving filters."""

    def filters(self):
        return {"serving_entry": serving_entry, "serving_plan": _serving_plan.plan}
