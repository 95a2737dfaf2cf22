# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Options and attributes of the modules whose action plugin shows progress (plugin_utils/_progress_action)."""

    DOCUMENTATION = r"""
options:
  progress_interval:
    description:
      - Seconds between two progress lines (MiB so far, of how many when known, rate) on the controller's stderr.
        The action plugin runs the module in check mode first; when there is work to do, the module then runs as
        an async job of its own while the lines are printed. V(0) runs it in the foreground without progress.
      - Not used in check mode or when the task sets C(async) itself.
    type: float
    default: 10
  progress_file:
    description:
      - A file the module rewrites about once a second while it works, with its progress (JSON). The action plugin
        sets it; it is removed at the end.
    type: path
attributes:
  action:
    support: full
    details: Compares first, then runs work to do as an async job and shows its progress.
  async:
    support: full
  bypass_host_loop:
    support: none
"""
