# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's validation vocabulary (module_utils/_validate) as a filter for the roles' controller-side checks."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _lazy

_validate = _lazy.Module("_validate")


def validation_problems(checks):
    """[[field, value, kind], ...] -> the messages of those that break their rule (empty when all pass)."""
    if not isinstance(checks, (list, tuple)) or not all(isinstance(c, (list, tuple)) and len(c) == 3 for c in checks):
        raise AnsibleFilterError("validation_problems expects a list of [field, value, kind], got %r" % (checks,))
    try:
        return _validate.problems(checks)
    except KeyError as exc:
        raise AnsibleFilterError(str(exc.args[0]))


def host_var_checks(hosts, hostvars, name, kind):
    """Checks for validation_problems of inventory variable name on each host, each named "<name> of <host>"."""
    return [list(check) for check in _validate.host_var_checks(hosts, hostvars, name, kind)]


class FilterModule(object):
    """dgx_spark.cluster validation filters."""

    def filters(self):
        return {"validation_problems": validation_problems, "host_var_checks": host_var_checks}
