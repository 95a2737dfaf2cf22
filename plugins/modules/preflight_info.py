#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight_info
short_description: What a node's readiness is judged from, in one look
version_added: 0.1.0
description:
  - One module run per node gives the preflight role everything it judges on the node (one round trip where four
    commands took four).
  - Whether passwordless sudo works (C(sudo -n true), which never prompts).
  - Which of O(commands) are not on the node's C(PATH).
  - For each of O(disk_paths), the last line of C(df -P -B1) (or df's error) for the path's nearest existing ancestor,
    in order (a path need not exist yet).
  - With O(links), C(ip -j link show)'s output.
  - The module only reports; the role judges (filters C(disk_checks), C(link_problems)). It changes nothing and
    behaves the same in check mode.
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  sudo:
    description: Probe passwordless sudo.
    type: bool
    default: true
  commands:
    description: Commands whose absence from C(PATH) is reported.
    type: list
    elements: str
    default: []
  disk_paths:
    description: Paths whose free space is measured (on the mount holding each one, or its nearest existing ancestor).
    type: list
    elements: path
    default: []
  links:
    description: Read the network links (C(ip -j link show)).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dgx_spark.cluster.read_only
seealso:
  - module: dgx_spark.cluster.gpu_vram_facts
"""

EXAMPLES = r"""
- name: Probe the node (sudo, commands, free space, links)
  dgx_spark.cluster.preflight_info:
    commands: [ip, docker, python3]
    disk_paths: [/var/lib/docker, /var/lib/dgx-spark]
    links: true
  register: probe

- name: Judge the free space
  ansible.builtin.debug:
    msg: "{{ probe.df_lines | dgx_spark.cluster.disk_checks([{'path': '/var/lib/docker', 'min_free_gib': 40},
             {'path': '/var/lib/dgx-spark', 'min_free_gib': 20}]) }}"
"""

RETURN = r"""
sudo:
  description: C(sudo -n true)'s exit code (127 without sudo) and its error output.
  returned: when O(sudo=true)
  type: dict
  sample: {"rc": 1, "stderr": "sudo: a password is required"}
missing_commands:
  description: The O(commands) not found on C(PATH), in order.
  returned: always
  type: list
  elements: str
  sample: [docker]
df_lines:
  description: One line per O(disk_paths), in order - the last line of C(df -P -B1) or its error.
  returned: always
  type: list
  elements: str
  sample: ["/dev/nvme0n1p2 3936820989952 211416436736 3525373886464 6% /"]
links:
  description: C(ip -j link show)'s output (JSON text; empty when C(ip) failed).
  returned: when O(links=true)
  type: str
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils._runner import CommandRunner

NOT_FOUND_RC = 127  # what a shell answers for a command it cannot find


def run_tool(runner, argv):
    """(rc, stdout, stderr) of argv, or a shell's not-found answer when argv[0] is not on PATH."""
    path = shutil.which(argv[0])
    if not path:
        return NOT_FOUND_RC, "", "%s: command not found" % argv[0]
    return runner.run([path] + argv[1:])


def nearest_existing(path):
    while not os.path.exists(path) and path != os.path.dirname(path):
        path = os.path.dirname(path)
    return path


def df_line(runner, path):
    _rc, stdout, stderr = run_tool(runner, ["df", "-P", "-B1", "--", nearest_existing(path)])
    lines = (stdout + stderr).strip().splitlines()
    return lines[-1] if lines else ""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sudo=dict(type="bool", default=True),
            commands=dict(type="list", elements="str", default=[]),
            disk_paths=dict(type="list", elements="path", default=[]),
            links=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    runner = CommandRunner(module)
    result = {"missing_commands": [name for name in params["commands"] if not shutil.which(name)],
              "df_lines": [df_line(runner, path) for path in params["disk_paths"]]}
    if params["sudo"]:
        rc, _stdout, stderr = run_tool(runner, ["sudo", "-n", "true"])
        result["sudo"] = {"rc": rc, "stderr": stderr}
    if params["links"]:
        rc, stdout, _stderr = run_tool(runner, ["ip", "-j", "link", "show"])
        result["links"] = stdout if rc == 0 else ""
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
