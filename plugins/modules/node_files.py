#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_files
short_description: Several directories and small files on a node in one step
version_added: 0.1.0
description:
  - Makes sure each directory exists and each file has the given content, with the given mode and owner, in one
    module call, so the programs, unit files and rules a role installs on every node cost one round trip instead of
    one (or two) per file, as M(ansible.builtin.file), M(ansible.builtin.copy) and M(ansible.builtin.template) take.
  - A file is replaced atomically (written beside it, then renamed) only when its content differs; mode and owner are
    set when they differ. Directories are made before files, parents first.
  - For small text files whose content the controller renders (C(lookup('template', ...)),
    C(lookup('file', ..., rstrip=false))). Not for secrets - their content would show in a diff; a role writes those
    with its own C(no_log) task.
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  directories:
    description: Directories to exist, made with their parents when absent.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: str
        required: true
      mode:
        description: Octal mode, such as C("0755").
        type: str
        default: "0755"
      owner:
        description: Owning user.
        type: str
        default: root
  files:
    description: Files to hold exactly this content.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path; its directory must exist or be in O(directories).
        type: str
        required: true
      content:
        description: The whole content, as text.
        type: str
        required: true
      mode:
        description: Octal mode, such as C("0644").
        type: str
        default: "0644"
      owner:
        description: Owning user.
        type: str
        default: root
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would change and changes nothing.
  diff_mode:
    support: full
    details: One diff per file whose content changes, and per directory made.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: The role's programs and units on every node
  dgx_spark.cluster.node_files:
    directories:
      - path: /usr/local/lib/dgx-spark
    files:
      - path: /usr/local/lib/dgx-spark/wait_for_peers.py
        content: "{{ lookup('ansible.builtin.file', 'wait_for_peers.py', rstrip=false) }}"
        mode: "0755"
      - path: /etc/systemd/system/dgx-spark-serving@.service
        content: "{{ lookup('ansible.builtin.template', 'dgx-spark-serving@.service.j2') }}"
  become: true
  register: installed

- name: systemd reads the unit again when it changed
  ansible.builtin.systemd_service:
    daemon_reload: true
  become: true
  when: "'/etc/systemd/system/dgx-spark-serving@.service' in installed.changed_paths"
"""

RETURN = r"""
changed_paths:
  description: The directories and files made or changed (content, mode or owner), in the order given.
  returned: always
  type: list
  elements: str
  sample: [/etc/systemd/system/dgx-spark-serving@.service]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes
from ansible_collections.dgx_spark.cluster.plugins.module_utils._validate import first_problem


def problems_of(params):
    """The first argument that would not be safe to apply, as a sentence, or None."""
    checks = []
    for group in ("directories", "files"):
        for index, item in enumerate(params[group]):
            field = "%s[%d]" % (group, index)
            checks += [(field + ".path", item["path"], "path"), (field + ".owner", item["owner"], "user"),
                       (field + ".mode", item["mode"], "file_mode")]
    return first_problem(checks)


def file_args(module, item):
    return module.load_file_common_arguments(dict(path=item["path"], mode=item["mode"], owner=item["owner"]))


def ensure_directory(module, item, diffs):
    """Make the directory (with its parents) when absent; True when it or its mode or owner changed."""
    path = item["path"]
    changed = False
    if not os.path.isdir(path):
        if os.path.lexists(path):
            module.fail_json(msg="%s exists and is not a directory: move it aside, then run again" % path)
        changed = True
        diffs.append(dict(before_header=path, after_header=path, before="(absent)\n", after="(directory)\n"))
        if module.check_mode:
            return True
        os.makedirs(path)
    return module.set_fs_attributes_if_different(file_args(module, item), changed)


def ensure_file(module, item, diffs):
    """Write the content when it differs (atomically); True when the file, its mode or its owner changed."""
    path = item["path"]
    wanted = to_bytes(item["content"], errors="surrogate_or_strict")
    try:
        with open(path, "rb") as handle:
            current = handle.read()
    except FileNotFoundError:
        current = None
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc))
    changed = current != wanted
    if changed:
        diffs.append(dict(before_header=path, after_header=path,
                          before="" if current is None else current.decode("utf-8", "replace"), after=item["content"]))
        if module.check_mode:
            return True
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            module.fail_json(msg="the directory of %s does not exist: add it to directories" % path)
        descriptor, staged = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(wanted)
        module.atomic_move(staged, path)
    return module.set_fs_attributes_if_different(file_args(module, item), changed)


def main():
    entry = dict(path=dict(type="str", required=True), owner=dict(type="str", default="root"))
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(type="list", elements="dict", default=[],
                             options=dict(entry, mode=dict(type="str", default="0755"))),
            files=dict(type="list", elements="dict", default=[],
                       options=dict(entry, mode=dict(type="str", default="0644"),
                                    content=dict(type="str", required=True)))),
        supports_check_mode=True)
    problem = problems_of(module.params)
    if problem:
        module.fail_json(msg=problem)
    changed_paths, diffs = [], []
    for item in sorted(module.params["directories"], key=lambda d: d["path"].count("/")):
        if ensure_directory(module, item, diffs):
            changed_paths.append(item["path"])
    for item in module.params["files"]:
        if ensure_file(module, item, diffs):
            changed_paths.append(item["path"])
    module.exit_json(changed=bool(changed_paths), changed_paths=changed_paths, diff=diffs)


if __name__ == "__main__":
    main()
