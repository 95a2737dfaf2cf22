# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's validation vocabulary (module_utils/_validate) as a Jinja test: ``x is dgx_spark.cluster.valid('netdev')``."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _validate


def valid(value, kind):
    """True when value is of the kind, by the same rule the modules apply."""
    try:
        return _validate.problem("value", value, kind) is None
    except KeyError as exc:
        raise AnsibleFilterError(str(exc.args[0]))


class TestModule(object):
    """dgx_spark.cluster tests."""

    def tests(self):
        return {"valid": valid}
