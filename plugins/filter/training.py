# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for distributed training with torchrun."""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _lazy

_catalog = _lazy.Module("_catalog")
_train = _lazy.Module("_train")


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


def _catalog_error(call, *args):
    try:
        return call(*args)
    except _catalog.CatalogError as exc:
        raise AnsibleFilterError(str(exc))


def train_job(catalog, key, overrides=None):
    return _catalog_error(_train.job_entry, catalog, key, overrides or {})


def train_ranks(job, run_id, hosts, addresses, settings):
    if len(hosts) != len(addresses):
        raise AnsibleFilterError("train_ranks: %d hosts but %d addresses" % (len(hosts), len(addresses)))
    return _train.job_ranks(job, run_id, list(hosts), list(addresses), settings)


def train_view(status, straggler_steps=20):
    if isinstance(status, str):
        status = json.loads(status)
    view = _train.run_view(status, int(straggler_steps))
    view["lines"] = _train.view_lines(view)
    return view


class FilterModule(object):
    """dgx_spark.cluster training filters."""

    def filters(self):
        return {"torchrun_failure": torchrun_failure, "train_progress": train_progress,
                "train_stragglers": _train.later("stragglers"),
                "train_merge_logs": _train.later("merge_logs"),
                "train_job": train_job, "train_ranks": train_ranks, "train_view": train_view,
                "train_unit": _train.later("unit_name"),
                "train_start_problem": _train.later("start_problem")}
