#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: serving_lock
short_description: The swap lock on the head - one launch or stop of a model at a time
version_added: 0.1.0
description:
  - Acquires or releases a lock file (holder, model, token, time, TTL) on the head. A second launch while the lock
    is held fails at once naming the holder, or waits up to O(wait) seconds when asked. An expired lock (older than
    its TTL, a run that died) is taken over and said so. O(force) takes a held lock (a human override).
  - Changes to the lock file are serialised with C(flock) on a guard file beside it, so two runs never both win.
  - Release only removes the lock when it still holds this run's token.
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  path:
    description: The lock file.
    type: path
    default: /var/lib/dgx-spark/serving.lock
  state:
    description: V(acquired) or V(released).
    type: str
    choices: [acquired, released]
    default: acquired
  token:
    description: This run's secret token (random per run); only its holder releases the lock.
    type: str
    required: true
  holder:
    description: Who holds it, for the message others see (user, controller, job).
    type: str
    default: unknown
  model:
    description: What the holder is doing, for the message.
    type: str
    default: ""
  ttl:
    description: Seconds after which a held lock counts as abandoned.
    type: int
    default: 3600
  wait:
    description: Seconds to wait for a held lock before failing (0 fails at once).
    type: int
    default: 0
  force:
    description: Take the lock even when another run holds it.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the lock would be acquired (and fails when it is held) without writing it.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Take the swap lock
  dgx_spark.cluster.serving_lock:
    token: "{{ run_token }}"
    holder: "{{ lookup('ansible.builtin.env', 'USER') }}"
    model: gpt-oss-120b
  no_log: true
"""

RETURN = r"""
holder:
  description: The holder after the task (null once released).
  returned: always
  type: str
took_over:
  description: The previous holder when an expired or forced lock was taken.
  returned: when it happened
  type: dict
"""

import fcntl
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule


def read_lock(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def describe(lock, now):
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(lock.get("since", 0)))
    left = max(0, int(lock.get("since", 0) + lock.get("ttl", 0) - now))
    return "%s (%s) since %s, expires in %d s" % (lock.get("holder"), lock.get("model") or "no model", since, left)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/var/lib/dgx-spark/serving.lock"),
            state=dict(type="str", choices=["acquired", "released"], default="acquired"),
            token=dict(type="str", required=True, no_log=True),
            holder=dict(type="str", default="unknown"),
            model=dict(type="str", default=""),
            ttl=dict(type="int", default=3600),
            wait=dict(type="int", default=0),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        if module.check_mode:
            module.exit_json(changed=params["state"] == "acquired", holder=params["holder"])
        os.makedirs(directory, 0o755)
    deadline = time.time() + max(0, params["wait"])
    while True:
        with open(path + ".guard", "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            now = time.time()
            lock = read_lock(path)
            if params["state"] == "released":
                if lock is None:
                    module.exit_json(changed=False, holder=None)
                if lock.get("token") != params["token"]:
                    module.exit_json(changed=False, holder=lock.get("holder"),
                                     warnings=["the swap lock is now held by %s; left in place" % describe(lock, now)])
                if not module.check_mode:
                    os.remove(path)
                module.exit_json(changed=True, holder=None)
            result = {"changed": True, "holder": params["holder"]}
            if lock is not None and lock.get("token") == params["token"]:
                module.exit_json(changed=False, holder=params["holder"])
            expired = lock is not None and now > lock.get("since", 0) + lock.get("ttl", 0)
            if lock is None or expired or params["force"]:
                if lock is not None:
                    result["took_over"] = dict((k, v) for k, v in lock.items() if k != "token")
                    result["warnings"] = ["took over the swap lock of %s (%s)"
                                          % (describe(lock, now), "expired" if expired else "forced")]
                if not module.check_mode:
                    tmp = "%s.%d.tmp" % (path, os.getpid())
                    with open(tmp, "w") as handle:
                        json.dump({"holder": params["holder"], "model": params["model"], "token": params["token"],
                                   "since": now, "ttl": params["ttl"]}, handle)
                    os.chmod(tmp, 0o600)
                    os.rename(tmp, path)
                module.exit_json(**result)
        if time.time() >= deadline:
            module.fail_json(msg="the swap lock is held by %s. Wait for that run, pass model_serving_lock_wait "
                                 "to wait up to a bound, or force=true (model_serving_lock_force) to override."
                                 % describe(lock, time.time()), holder=lock.get("holder"))
        time.sleep(1)


if __name__ == "__main__":
    main()
