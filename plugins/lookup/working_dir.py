# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The directory ansible-playbook (or ansible-runner's project) was started in, on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
name: working_dir
author: DGX Spark cluster maintainers (@dgx-spark-cluster)
version_added: 0.1.0
short_description: The controller's working directory, optionally joined with relative paths
description:
  - The directory the run was started in (the process's working directory), not the playbook's directory, which
    for an installed collection is inside the collection.
  - Each term is a relative path joined to it; with no term, the directory itself.
  - The collection's reports default to C(reports/) under it.
options:
  _terms:
    description: Relative paths to join (no C(..) parts).
    type: list
    elements: str
    required: false
"""

EXAMPLES = r"""
- name: Where the gates' reports go by default
  ansible.builtin.debug:
    msg: "{{ lookup('dgx_spark.cluster.working_dir', 'reports') }}"
"""

RETURN = r"""
_raw:
  description: The working directory, or each term joined to it.
  type: list
  elements: path
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        here = os.getcwd()
        if not terms:
            return [here]
        found = []
        for term in terms:
            if not isinstance(term, str) or os.path.isabs(term) or ".." in term.split("/"):
                raise AnsibleLookupError("working_dir takes relative paths without '..', got %r" % (term,))
            found.append(os.path.join(here, term))
        return found
