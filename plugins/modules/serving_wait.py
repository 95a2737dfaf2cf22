#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: serving_wait
short_description: Wait until an engine container answers its health URL (and a real completion), failing at once when it dies
version_added: 0.1.0
description:
  - Polls O(url) and the state of O(container) (C(docker inspect)) every O(interval) seconds until the URL answers
    HTTP 200, the container stops running, or O(timeout) seconds pass.
  - A container that exits while waiting fails the task at once with its exit code and its last log lines, instead
    of waiting out the deadline. With vLLM multi-node this is how a rank that never joins ends the wait - the head
    gives up after its C(--distributed-timeout-seconds) and exits.
  - With O(peers), the other ranks' containers are watched too (over SSH on the fabric, every O(peer_interval)
    seconds) - a rank whose container exited or is gone fails the wait at once, naming it, rather than after the
    head's C(--distributed-timeout-seconds).
  - With O(served_name), ready also means the OpenAI API on the same host and port lists that name at C(/v1/models)
    and answers one real greedy completion at C(/v1/completions) (8 tokens), all within the same deadline.
  - Reads only; it changes nothing and behaves the same in check mode.
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  container:
    description: Name of the engine's container on this node.
    type: str
    required: true
  url:
    description: The health URL (HTTP 200 means ready), for example V(http://127.0.0.1:8000/health).
    type: str
    required: true
  timeout:
    description: Seconds to wait in all.
    type: int
    default: 900
  interval:
    description: Seconds between two polls (each is a C(docker inspect) and one HTTP request).
    type: float
    default: 0.5
  log_lines:
    description: How many of the container's last log lines a failure carries.
    type: int
    default: 25
  served_name:
    description:
      - The model name the API must list at C(/v1/models) and answer a completion for, once O(url) answers 200.
      - Omitted, the wait ends at the first 200 from O(url).
    type: str
  completion_timeout:
    description: Seconds the one real completion may take (the first request after start-up can be slow).
    type: int
    default: 120
  api_key_file:
    description:
      - The endpoint's API key file on this node (C(VLLM_API_KEY=<key>), as the model_serving role writes it); its
        key goes as a bearer token with the C(/v1) requests. A missing file means a model served without a key.
    type: path
  peers:
    description:
      - The other ranks of the group, as the watchdog lists them (dgx_spark.cluster.serving_watchdog_rank) - a rank
        whose container exited, died or was removed while waiting fails the task (one still created, its unit
        waiting for its own peers, does not).
      - A rank on another node is asked over SSH (C(BatchMode), as the connecting user, on its fabric address); while
        waiting, an SSH that does not connect is not taken for a dead rank.
      - Once the head answered, every peer is asked once more - ready means each peer's container runs (one that
        does not, or whose node does not answer, fails the task naming it).
    type: list
    elements: dict
    default: []
    suboptions:
      rank:
        description: The rank.
        type: int
        required: true
      container:
        description: Its container's name.
        type: str
        required: true
      address:
        description: Its node's fabric address.
        type: str
        required: true
      local:
        description: Whether it runs on this node (C(docker inspect) here, no SSH).
        type: bool
        default: false
      first:
        description: Whether it starts before the others (the watchdog's start order; not used by the wait).
        type: bool
        default: false
  peer_interval:
    description: Seconds between two looks at O(peers) (each an SSH per remote rank).
    type: float
    default: 3
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: It only reads, so it waits in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Wait for vLLM's API on the head
  dgx_spark.cluster.serving_wait:
    container: dgx-spark-serve-gpt-oss-120b-r0
    url: http://127.0.0.1:8000/health
    timeout: 900

- name: Ready means the API lists the served name and answers a real completion
  dgx_spark.cluster.serving_wait:
    container: dgx-spark-serve-gpt-oss-120b-r0
    url: http://127.0.0.1:8000/health
    served_name: openai/gpt-oss-120b
  register: ready
"""

RETURN = r"""
elapsed:
  description: Seconds waited.
  returned: always
  type: float
state:
  description: The container's last seen state (running, exited, absent, ...).
  returned: always
  type: str
exit_code:
  description: The container's exit code when it stopped.
  returned: when the container stopped
  type: int
peer:
  description: The rank of O(peers) whose container stopped, or does not run once the head answered (rank,
    container, address, state, exit_code).
  returned: when a peer's container stopped or does not run
  type: dict
status:
  description: The last HTTP status of O(url) (null when it did not answer).
  returned: always
  type: int
models:
  description: The model ids C(/v1/models) listed.
  returned: when O(served_name) is set and O(url) answered
  type: list
  elements: str
  sample: [openai/gpt-oss-120b]
completion:
  description: The text of the real completion.
  returned: when O(served_name) is set and the completion answered
  type: str
completion_tokens:
  description: Tokens the completion generated (at least 1 when ready).
  returned: when O(served_name) is set and the completion answered
  type: int
log_tail:
  description: The container's last log lines.
  returned: on failure
  type: list
  elements: str
"""

import json
import shlex
import time

from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _api_key, _validate
from ansible_collections.dgx_spark.cluster.plugins.module_utils._openai_api import api_problem, http_status
from ansible_collections.dgx_spark.cluster.plugins.module_utils._runner import CommandRunner


SSH_UNREACHABLE = 255
# a peer in one of these cannot join any more (C(created) is a rank whose unit still waits for its own peers)
GONE = ("exited", "dead", "absent")


def parsed_state(rc, stdout):
    """(state, exit code) from `docker inspect`; ('absent', None) when docker does not know the container."""
    if rc != 0:
        return "absent", None
    state = json.loads(stdout)[0].get("State") or {}
    return state.get("Status") or "unknown", state.get("ExitCode")


def container_state(runner, docker, name):
    rc, stdout, stderr = runner.run([docker, "inspect", name])
    return parsed_state(rc, stdout)


def peer_state(runner, docker, peer):
    """(state, exit code) of a peer rank's container; None when its node did not answer over SSH."""
    if peer["local"]:
        return container_state(runner, docker, peer["container"])
    rc, stdout, stderr = runner.run(["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", peer["address"],
                                     shlex.join(["docker", "inspect", peer["container"]])])
    return None if rc == SSH_UNREACHABLE else parsed_state(rc, stdout)


# a node that did not answer over SSH, once the head answered
SILENT = ("unknown (its node did not answer over SSH)", None)


def failing_peer(runner, docker, peers, failing, silent=None):
    """The first peer whose container's state is failing(state), with its state and exit code; a node silent over
    SSH is seen as `silent` (None: passed over). None when no peer fails."""
    for peer in peers:
        seen = peer_state(runner, docker, peer) or silent
        if seen is not None and failing(seen[0]):
            return dict(peer, state=seen[0], exit_code=seen[1])
    return None


def log_tail(runner, docker, name, lines):
    rc, stdout, stderr = runner.run([docker, "logs", "--tail", str(lines), name])
    return (stdout + stderr).splitlines()[-lines:]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container=dict(type="str", required=True),
            url=dict(type="str", required=True),
            timeout=dict(type="int", default=900),
            interval=dict(type="float", default=0.5),
            log_lines=dict(type="int", default=25),
            served_name=dict(type="str"),
            completion_timeout=dict(type="int", default=120),
            api_key_file=dict(type="path"),
            peers=dict(type="list", elements="dict", default=[], options=dict(
                rank=dict(type="int", required=True),
                container=dict(type="str", required=True),
                address=dict(type="str", required=True),
                local=dict(type="bool", default=False),
                first=dict(type="bool", default=False),
            )),
            peer_interval=dict(type="float", default=3),
        ),
        supports_check_mode=True,
    )
    name, url, served_name = module.params["container"], module.params["url"], module.params["served_name"]
    peers = module.params["peers"]
    found = _validate.first_problem([("container", name, "container"), ("url", url, "url")] + [
        (field % index, peer[key], kind) for index, peer in enumerate(peers)
        for field, key, kind in (("peers[%d].container", "container", "container"),
                                 ("peers[%d].address", "address", "ipv4"))])
    if found:
        module.fail_json(msg=found)
    parts = urlsplit(url)
    base = "%s://%s" % (parts.scheme, parts.netloc)
    runner = CommandRunner(module)
    docker = runner.which("docker", "install Docker (the engine runs in a container)")
    key = _api_key.read(module.params["api_key_file"]) if module.params["api_key_file"] else ""
    start = time.monotonic()
    deadline = start + module.params["timeout"]
    next_peer_look = start
    while True:
        if peers and time.monotonic() >= next_peer_look:
            peer = failing_peer(runner, docker, peers, lambda state: state in GONE)
            next_peer_look = time.monotonic() + module.params["peer_interval"]
            if peer:
                elapsed = round(time.monotonic() - start, 1)
                module.fail_json(msg="rank %d's container %s on %s is %s (exit code %s) after %.0f s, before %s "
                                     "answered: the group cannot become ready"
                                     % (peer["rank"], peer["container"], peer["address"], peer["state"],
                                        peer["exit_code"], elapsed, url), elapsed=elapsed, peer=peer, status=None)
        state, exit_code = container_state(runner, docker, name)
        status = None if state != "running" else http_status(url)
        elapsed = round(time.monotonic() - start, 1)
        if status == 200:
            problem, fields = api_problem(base, served_name, module.params["completion_timeout"], key) \
                if served_name else (None, {})
            elapsed = round(time.monotonic() - start, 1)
            if problem:
                module.fail_json(msg=problem, elapsed=elapsed, state=state, status=status, **fields)
            # ready means the whole group: every peer's container still runs once the head answered
            peer = failing_peer(runner, docker, peers, lambda state: state != "running", SILENT)
            if peer:
                module.fail_json(msg="rank %d's container %s on %s is %s (exit code %s) although %s answered: the "
                                     "group is not whole" % (peer["rank"], peer["container"], peer["address"],
                                                             peer["state"], peer["exit_code"], url),
                                 elapsed=elapsed, peer=peer, state=state, status=status, **fields)
            module.exit_json(changed=False, elapsed=elapsed, state=state, status=status, **fields)
        if state != "running":
            tail = log_tail(runner, docker, name, module.params["log_lines"]) if state != "absent" else []
            module.fail_json(msg="container %s is %s (exit code %s) after %.0f s, before %s answered: %s"
                             % (name, state, exit_code, elapsed, url, " | ".join(tail[-8:]) or "no log"),
                             elapsed=elapsed, state=state, exit_code=exit_code, status=None, log_tail=tail)
        if time.monotonic() >= deadline:
            tail = log_tail(runner, docker, name, module.params["log_lines"])
            module.fail_json(msg="%s did not answer 200 within %d s (last status %s); container %s still runs: %s"
                             % (url, module.params["timeout"], status, name, " | ".join(tail[-8:]) or "no log"),
                             elapsed=elapsed, state=state, status=status, log_tail=tail)
        time.sleep(max(0.1, module.params["interval"]))


if __name__ == "__main__":
    main()
