# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""p2p_image_copy with progress: a needed copy runs as an async job and its progress is shown while it runs."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.module_utils._image_stream import COPY_TIMEOUT
from ansible_collections.dgx_spark.cluster.plugins.plugin_utils._progress_action import ProgressAction, amount_line


class ActionModule(ProgressAction):
    """An image already there answers from the comparison; a copy prints '<host>: <image> <amount>' lines."""

    DEFAULT_TIMEOUT = COPY_TIMEOUT

    def progress_line(self, host, args, report):
        return "%s: %s %s" % (host, args.get("image"), amount_line(report))
