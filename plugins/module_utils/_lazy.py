# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's module_utils, imported by the filter files when a filter is called, not when the file loads.

Looking up any of the collection's filters loads every file in plugins/filter, in every task's forked worker, and the
collection loader compiles each from source (it keeps no bytecode). Imported at load, their module_utils cost about
60 ms per task that uses one filter; imported at first use, only those that task uses."""

from __future__ import annotations

import importlib

PACKAGE = "ansible_collections.dgx_spark.cluster.plugins.module_utils."


class Module(object):
    """A module_utils module (such as "_catalog") imported at the first use of one of its names."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(PACKAGE + self._name), attr)

    def later(self, name):
        """Its function name, imported at its first call (for a filter map, which is built as the file loads)."""
        def call(*args, **kwargs):
            return getattr(self, name)(*args, **kwargs)
        call.__name__ = name
        return call
