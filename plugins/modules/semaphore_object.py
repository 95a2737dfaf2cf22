#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: semaphore_object
short_description: One object of Semaphore UI's REST API, present with the given fields
version_added: 0.1.0
description:
  - Finds the object named O(name) in a collection of Semaphore's API (C(projects), C(project/<id>/keys),
    C(project/<id>/repositories), C(project/<id>/inventory), C(project/<id>/environment), C(project/<id>/templates))
    and creates it, or updates it when a field differs from O(fields). Fields the API never returns (secrets, such
    as a key's C(ssh.private_key)) are named in O(write_only); they are sent when the object is created, or with
    O(update_secrets), and never compared.
  - Semaphore answers some creations without a body (keys, repositories, environments); the object is then found
    again by its name. An update sends the whole object with its C(id) and C(project_id), as Semaphore requires.
  - Logs in with an API token (O(token)), or with O(username) and O(password) (C(/api/auth/login), its session
    cookie for the requests of this task).
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  url:
    description: Semaphore's base URL, such as C(https://semaphore.example) (the API is under C(/api)).
    type: str
    required: true
  token:
    description: An API token (Semaphore's user menu, Tokens).
    type: str
  username:
    description: The user to log in as, without O(token).
    type: str
  password:
    description: Its password.
    type: str
  path:
    description: The collection under C(/api), such as C(projects) or C(project/3/templates).
    type: str
    required: true
  name:
    description: The object's name (what finds it).
    type: str
    required: true
  fields:
    description: Its other fields, as the API names them (C(project_id) is added for a project's objects).
    type: dict
    default: {}
  write_only:
    description: Fields of O(fields) the API never returns (secrets); not compared.
    type: list
    elements: str
    default: []
  update_secrets:
    description: Send the O(write_only) fields of an existing object again (rotation).
    type: bool
    default: false
  validate_certs:
    description: Check Semaphore's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds for each request.
    type: int
    default: 30
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: The project
  dgx_spark.cluster.semaphore_object:
    url: https://semaphore.example
    token: "{{ semaphore_token }}"
    path: projects
    name: DGX Spark
  register: project

- name: The SSH key
  dgx_spark.cluster.semaphore_object:
    url: https://semaphore.example
    token: "{{ semaphore_token }}"
    path: "project/{{ project.id }}/keys"
    name: DGX Spark - SSH
    fields:
      type: ssh
      ssh: {login: nvidia, private_key: "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519') }}"}
    write_only: [ssh]
  no_log: true
"""

RETURN = r"""
id:
  description: The object's id.
  returned: success, except in check mode for an object that would be created
  type: int
  sample: 3
object:
  description: The object as the API returned it (after the change).
  returned: success, except in check mode for an object that would be created
  type: dict
action:
  description: What was done - V(created), V(updated) or V(none).
  returned: success
  type: str
  sample: created
"""

import json
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import Request
from ansible.module_utils.six.moves import http_cookiejar
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

PATH = re.compile(r"^(projects|project/[0-9]{1,9}/(keys|repositories|inventory|environment|templates))$")


def same(wanted, found):
    """Whether found holds what wanted says: mappings by wanted's keys, lists item by item, an empty wanted
    value matching a missing or null one."""
    if isinstance(wanted, dict):
        return isinstance(found, dict) and all(same(value, found.get(key)) for key, value in wanted.items())
    if isinstance(wanted, list):
        return isinstance(found, list) and len(wanted) == len(found) and all(map(same, wanted, found))
    if wanted in ("", None, [], {}) and found in ("", None, [], {}):
        return True
    return wanted == found


class Semaphore:
    def __init__(self, module):
        self.module = module
        self.base = module.params["url"].rstrip("/") + "/api/"
        self.request = Request(validate_certs=module.params["validate_certs"], timeout=module.params["timeout"],
                               headers={"Content-Type": "application/json", "Accept": "application/json"},
                               cookies=http_cookiejar.CookieJar())  # the login's session cookie
        if module.params["token"]:
            self.request.headers["Authorization"] = "Bearer " + module.params["token"]
        else:
            self.call("POST", "auth/login", {"auth": module.params["username"], "password": module.params["password"]})

    def call(self, method, path, body=None):
        try:
            response = self.request.open(method, self.base + path, data=None if body is None else json.dumps(body))
            text = response.read()
            return response.getcode(), json.loads(text) if text else None
        except HTTPError as error:
            detail = error.read().decode("utf-8", "replace")
            self.module.fail_json(msg="Semaphore refused %s /api/%s (HTTP %d): %s" % (method, path, error.code, detail),
                                  status=error.code, response=detail)
        except (URLError, OSError, ValueError) as error:
            self.module.fail_json(msg="Semaphore at %s did not answer %s /api/%s: %s; check url and validate_certs"
                                  % (self.base, method, path, error))

    def find(self, path, name):
        _code, found = self.call("GET", path)
        matches = [item for item in found or [] if item.get("name") == name]
        if len(matches) > 1:
            self.module.fail_json(msg="%d objects named %r in /api/%s: rename or remove the extra ones"
                                  % (len(matches), name, path))
        return matches[0] if matches else None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True), token=dict(type="str", no_log=True), username=dict(type="str"),
            password=dict(type="str", no_log=True), path=dict(type="str", required=True),
            name=dict(type="str", required=True), fields=dict(type="dict", default={}),
            write_only=dict(type="list", elements="str", default=[], no_log=False),
            update_secrets=dict(type="bool", default=False, no_log=False),
            validate_certs=dict(type="bool", default=True), timeout=dict(type="int", default=30)),
        required_one_of=[("token", "username")], required_together=[("username", "password")],
        mutually_exclusive=[("token", "username")], supports_check_mode=True)
    params = module.params
    if not PATH.match(params["path"]):
        module.fail_json(msg="path %r is not allowed: must be projects or project/<id>/keys, repositories, inventory, "
                             "environment or templates" % params["path"])
    project = re.match(r"^project/([0-9]+)/", params["path"])
    wanted = dict(params["fields"], name=params["name"])
    if project:
        wanted["project_id"] = int(project.group(1))
    compared = dict((key, value) for key, value in wanted.items() if key not in params["write_only"])
    api = Semaphore(module)
    existing = api.find(params["path"], params["name"])
    if existing is None:
        result = dict(changed=True, action="created", diff={"before": {}, "after": compared})
        if module.check_mode:
            module.exit_json(**result)
        code, created = api.call("POST", params["path"], wanted)
        created = created if code == 201 and created else api.find(params["path"], params["name"])
        module.exit_json(id=created["id"], object=created, **result)
    differs = not same(compared, existing)
    if not differs and not params["update_secrets"]:
        module.exit_json(changed=False, action="none", id=existing["id"], object=existing)
    before = dict((key, existing.get(key)) for key in compared)
    result = dict(changed=True, action="updated", diff={"before": before, "after": compared})
    if module.check_mode:
        module.exit_json(id=existing["id"], object=existing, **result)
    body = dict(wanted, id=existing["id"]) if params["update_secrets"] else dict(
        dict((key, value) for key, value in wanted.items() if key not in params["write_only"]), id=existing["id"])
    item_path = ("project/%d" % existing["id"]) if params["path"] == "projects" else "%s/%d" % (params["path"],
                                                                                                existing["id"])
    api.call("PUT", item_path, body)
    module.exit_json(id=existing["id"], object=api.find(params["path"], params["name"]), **result)


if __name__ == "__main__":
    main()
