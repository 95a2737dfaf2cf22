# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The note of the modules whose SSH calls to the peer share one connection (module_utils/_ssh_share)."""

    DOCUMENTATION = r"""
options: {}
notes:
  - SSH calls to the peer share one connection (OpenSSH C(ControlMaster=auto)), also across tasks; the master exits
    after 10 s without a session. Its socket lives in C($TMPDIR/dgx-spark-ssh-<uid>/), used only when that is a
    directory of the user nobody else can enter (see docs/images_and_weights.md).
"""
