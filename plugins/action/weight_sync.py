# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""weight_sync with progress: a sync with files to send runs as an async job and its progress is shown."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.module_utils._weights import SYNC_TIMEOUT
from ansible_collections.dgx_spark.cluster.plugins.plugin_utils._progress_action import ProgressAction, amount_line


class ActionModule(ProgressAction):
    """The check-mode run decides (rsync's dry run, or in a relay whether every file is here; with nothing to send,
    that run has checked every file on the destination); a copy prints '<host>: weights <repo or path> <- <source>
    <amount>' lines."""

    DEFAULT_TIMEOUT = SYNC_TIMEOUT

    def progress_line(self, host, args, report):
        expected = (self._probe or {}).get("file_bytes")  # what rsync's dry run said it would send
        if args.get("dest_host"):  # the deprecated push, from this node
            route = "-> %s" % args["dest_host"]
        else:
            route = "<- %s" % (args.get("relay_from") or args.get("source_host"))
        return "%s: weights %s %s %s" % (host, args.get("hf_repo") or args.get("path"), route,
                                         amount_line(dict(report, expected=expected)))
