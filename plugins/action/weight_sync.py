# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""weight_sync with progress: a sync with files to send runs as an async job and its progress is shown."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.module_utils._weights import SYNC_TIMEOUT
from ansible_collections.dgx_spark.cluster.plugins.plugin_utils._progress_action import ProgressAction, amount_line


class ActionModule(ProgressAction):
    """rsync's dry run decides (with nothing to send, that run has checked every file on the destination); a sync
    prints '<host>: weights <repo or path> -> <dest> <amount>' lines."""

    DEFAULT_TIMEOUT = SYNC_TIMEOUT

    def progress_line(self, host, args, report):
        expected = (self._probe or {}).get("file_bytes")  # what rsync's dry run said it would send
        return "%s: weights %s -> %s %s" % (host, args.get("hf_repo") or args.get("path"), args.get("dest_host"),
                                            amount_line(dict(report, expected=expected)))
