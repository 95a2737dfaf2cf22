# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for distributed training with torchrun."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _train


def _text(name, text):
    if isinstance(text, dict) and "stdout" in text:  # a registered command result
        text = text.get("stdout", "")
    if not isinstance(text, str):
        raise AnsibleFilterError("%s expects text (or a registered result), got %s" % (name, type(text).__name__))
    return text


def torchrun_failure(text, tail=6):
    return _train.torchrun_failure(_text("torchrun_failure", text), int(tail))


def train_progress(text):
    return _train.progress(_text("train_progress", text))


class FilterModule(object):
    """dgx_spark.cluster training filters."""

    def filters(self):
        return {"torchrun_failure": torchrun_failure, "train_progress": train_progress,
                "train_stragglers": _train.stragglers, "train_merge_logs": _train.merge_logs}
