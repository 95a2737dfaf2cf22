# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""serving_request: a launch request checked on the controller, before any host is contacted - the catalog entry,
the play's settings and where the secrets go (play), and this node's settings, refused in one message naming what
to fix."""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _catalog
from ansible_collections.dgx_spark.cluster.plugins.plugin_utils import _serving_request

ARGUMENT_SPEC = dict(
    model=dict(type="str", required=True),
    catalog_file=dict(type="path", required=True),
    catalog=dict(type="dict", default={}),
    engine_root=dict(type="str", default=_catalog.TRT_ENGINE_ROOT),
    settings=dict(type="list", elements="list", default=[]),
    lock_wait=dict(type="raw", default=0),
    lock_ttl=dict(type="raw", default=300),
    backend=dict(type="str", default="native"),
    unreadable=dict(type="dict", default={}),
    hf_token_given=dict(type="bool", default=False),
    hf_endpoint=dict(type="str", default=""),
    api_key=dict(type="str", choices=["absent", "valid", "invalid"], default="absent"),
    lan_trusted=dict(type="bool", default=False),
    play=dict(type="bool", default=True),
    node_settings=dict(type="dict", default={}),
    node_minimums=dict(type="dict", default={}),
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        unused_validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        task_vars = task_vars or {}
        try:
            entry = _catalog.catalog_entry(self._loader.load_from_file(args["catalog_file"]), args["model"],
                                           args["catalog"], args["engine_root"])
        except _catalog.CatalogError as exc:  # the play's first node says why, once for the play
            return dict(result, failed=True, msg=str(exc) if args["play"] else
                        "The catalog entry of %s is refused (the play's first node says why)." % args["model"])
        problems = (_serving_request.settings_problems(args["settings"], args["lock_wait"], args["lock_ttl"],
                                                       args["backend"])
                    + _serving_request.secret_problems(args["model"], entry, args["unreadable"],
                                                       args["hf_token_given"], args["hf_endpoint"], args["api_key"],
                                                       args["lan_trusted"])) if args["play"] else []
        host_vars = dict((name, self._templar.template(task_vars[name]))
                         for name in _serving_request.node_variables(args["node_settings"], args["node_minimums"])
                         if name in task_vars)
        problems += _serving_request.node_problems(task_vars.get("inventory_hostname"), host_vars,
                                                   args["node_settings"], args["node_minimums"])
        if problems:
            return dict(result, failed=True, msg=" ".join(problems))
        return dict(result, changed=False, entry=entry, started_at=time.time())
