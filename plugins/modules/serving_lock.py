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
  - Acquires, renews or releases a lock file (holder, model, token, since, expiry) on the head. A second launch or
    stop while the lock is held fails at once naming the holder, or waits up to O(wait) seconds when asked. A lock
    past its expiry (its holder died and nothing renewed it) is taken over and said so. O(force) takes a held lock
    (a human override).
  - O(state=renewed) pushes the expiry O(ttl) seconds ahead, only for the holder's token. A launch keeps its lock
    renewed while it runs (O(keep), done by the action plugin on the controller); an outside scheduler (AWX schedule,
    cron) can hold a lock across runs with C(playbooks/serving_lock.yml) and hand its token to the runs.
  - Changes are serialised with C(flock) on a guard file beside the lock; the lock is written through a temporary
    created exclusively, without following links, mode 0600. A lock file that is not a lock (damaged, not a JSON
    object) counts as no lock, with a warning.
  - Release only removes the lock when it still holds this token.
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  path:
    description: The lock file.
    type: path
    default: /var/lib/dgx-spark/serving.lock
  state:
    description: V(acquired), V(renewed) (the holder pushes the expiry ahead) or V(released).
    type: str
    choices: [acquired, renewed, released]
    default: acquired
  token:
    description: The holder's secret token (random per run, or a scheduler's); only its holder renews or releases.
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
    description: Seconds the lock lives without a renewal.
    type: int
    default: 300
  wait:
    description: Seconds to wait for a held lock before failing (0 fails at once).
    type: int
    default: 0
  force:
    description: Take the lock even when another run holds it.
    type: bool
    default: false
  keep:
    description:
      - With O(state=acquired), renew the lock every third of O(ttl) from the controller for as long as the
        ansible-playbook run lives (its action plugin starts a keeper process that renews over SSH and ends with the
        run, or when the lock is released or taken). A run that dies stops renewing, and its lock expires O(ttl)
        seconds later.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Reports whether the lock would be acquired (and fails when it is held) without writing it.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Take the swap lock for this run, renewed while it runs
  dgx_spark.cluster.serving_lock:
    token: "{{ run_token }}"
    holder: "{{ lookup('ansible.builtin.env', 'USER') }}"
    model: gpt-oss-120b
    ttl: 300
    keep: true
  become: true
  no_log: true

- name: A scheduler renews the lock it holds between runs
  dgx_spark.cluster.serving_lock:
    token: "{{ scheduler_token }}"
    state: renewed
    ttl: 3600
  become: true
  no_log: true
"""

RETURN = r"""
holder:
  description: The holder after the task (null once released).
  returned: always
  type: str
expires:
  description: When the lock expires unless renewed (epoch seconds; null once released).
  returned: always
  type: float
took_over:
  description: The previous holder when an expired or forced lock was taken.
  returned: when it happened
  type: dict
keeper:
  description: The PID of the controller-side process that renews the lock (O(keep)).
  returned: when O(keep) started one
  type: int
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _lock_file


def _exit(module, warnings, **result):
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/var/lib/dgx-spark/serving.lock"),
            state=dict(type="str", choices=["acquired", "renewed", "released"], default="acquired"),
            token=dict(type="str", required=True, no_log=True),
            holder=dict(type="str", default="unknown"),
            model=dict(type="str", default=""),
            ttl=dict(type="int", default=300),
            wait=dict(type="int", default=0),
            force=dict(type="bool", default=False),
            keep=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    if params["ttl"] < 1 or params["wait"] < 0:
        module.fail_json(msg="ttl must be at least 1 second and wait at least 0 (got ttl=%d, wait=%d)"
                             % (params["ttl"], params["wait"]))
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        if module.check_mode or params["state"] != "acquired":
            module.exit_json(changed=params["state"] == "acquired", holder=None, expires=None)
        os.makedirs(directory, 0o755)
    deadline = time.time() + params["wait"]
    while True:
        with _lock_file.Guard(path, create=not module.check_mode):
            now = time.time()
            lock, note = _lock_file.read(path)
            warnings = [note] if note else []
            if params["state"] != "acquired":
                ours = lock is not None and lock["token"] == params["token"]
                if params["state"] == "released":
                    if ours and not module.check_mode:
                        _lock_file.remove(path)
                    if lock is not None and not ours:
                        warnings.append("the swap lock is now held by %s; left in place" % _lock_file.describe(lock))
                    _exit(module, warnings, changed=ours, expires=None,
                          holder=None if ours or lock is None else lock.get("holder"))
                if not ours:
                    module.fail_json(msg="cannot renew the swap lock: %s" % (
                        "it is held by %s" % _lock_file.describe(lock) if lock else "nobody holds it (it expired or "
                        "was released): acquire it again"), holder=lock.get("holder") if lock else None)
                lock["expires"], lock["ttl"] = now + params["ttl"], params["ttl"]
                if not module.check_mode:
                    _lock_file.write(path, lock)
                _exit(module, warnings, changed=False, holder=lock["holder"], expires=lock["expires"])
            if lock is not None and lock["token"] == params["token"]:
                _exit(module, warnings, changed=False, holder=lock["holder"], expires=lock["expires"])
            expired = lock is not None and _lock_file.expired(lock, now)
            if lock is None or expired or params["force"]:
                result = {"changed": True, "holder": params["holder"], "expires": now + params["ttl"]}
                if lock is not None:
                    result["took_over"] = dict((k, v) for k, v in lock.items() if k != "token")
                    warnings.append("took over the swap lock of %s (%s)"
                                    % (_lock_file.describe(lock, now), "expired" if expired else "forced"))
                if not module.check_mode:
                    _lock_file.write(path, {"holder": params["holder"], "model": params["model"],
                                            "token": params["token"], "since": now, "expires": result["expires"],
                                            "ttl": params["ttl"]})
                _exit(module, warnings, **result)
        if time.time() >= deadline:
            module.fail_json(msg="the swap lock is held by %s. Wait for that run, pass model_serving_lock_wait "
                                 "to wait up to a bound, present the holder's token (model_serving_lock_token) when "
                                 "a scheduler holds it for you, or force=true (model_serving_lock_force) to override."
                                 % _lock_file.describe(lock), holder=lock.get("holder"))
        time.sleep(1)


if __name__ == "__main__":
    main()
