#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: serving_containers_info
short_description: The serving containers on this node, as docker inspects them
version_added: 0.1.0
description:
  - Every container labelled C(dgx-spark.role=serving) on this node (running, stopped or parked), with docker's
    inspect record of each, for the serving filters (C(serving_status), C(serving_reusable)).
  - Reads only.
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  docker:
    description: The docker CLI.
    type: str
    default: docker
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dgx_spark.cluster.read_only
"""

EXAMPLES = r"""
- name: What serves on each node
  dgx_spark.cluster.serving_containers_info:
  register: serving
"""

RETURN = r"""
containers:
  description:
    - docker's inspect record of each serving container (empty when there is none).
    - The value of every environment variable named like a secret (C(VLLM_API_KEY), C(HF_TOKEN), ...) is replaced
      by C(********).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils._runner import CommandRunner
from ansible_collections.dgx_spark.cluster.plugins.module_utils._serving_state import inspected


def main():
    module = AnsibleModule(argument_spec=dict(docker=dict(type="str", default="docker")), supports_check_mode=True)
    runner = CommandRunner(module)
    module.exit_json(changed=False, containers=inspected(runner, module.params["docker"]))


if __name__ == "__main__":
    main()
