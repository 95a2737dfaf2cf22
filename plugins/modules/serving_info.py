#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: serving_info
short_description: What serves on this node and what a launch needs to know, in one look
version_added: 0.1.0
description:
  - One module run per node gives a launch everything it decides from (the model_serving role runs it on every node
    at once), so a launch of what already serves answers in about one round trip.
  - Always returns the node's serving containers (as M(dgx_spark.cluster.serving_containers_info)) and the user it
    runs as.
  - With O(memory), the node's GPU and memory summary as M(dgx_spark.cluster.gpu_vram_facts) gathers it (on GB10 from
    C(/proc/meminfo)), for the placement plan.
  - With O(lock_path), whether the swap lock file exists (a run holds it, or one died holding it), read without
    taking it.
  - With O(files) and O(units), the SHA-256 of each file and each systemd unit's active and enabled state.
  - With O(images) and O(directories), each docker image's ID (null when absent) and what each path is (a launch asks
    every rank's node for its image - a worker holding the head's image ID needs no copy - and the head for its local
    model directory).
  - With O(probe), when rank 0 of that model runs on this node, its OpenAI API is asked as a launch's readiness asks
    it - C(/health), the served name at C(/v1/models) and one real greedy completion.
  - Reads only; it changes nothing and behaves the same in check mode.
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  docker:
    description: The docker CLI.
    type: str
    default: docker
  memory:
    description: Gather the GPU and memory summary (C(nvidia-smi), and C(/proc/meminfo) on unified memory).
    type: bool
    default: true
  lock_path:
    description: The swap lock file whose presence is reported (on the node that holds the lock).
    type: path
  files:
    description: Files whose SHA-256 is reported (null for a file that does not exist).
    type: list
    elements: path
    default: []
  units:
    description: systemd units whose C(ActiveState) and C(UnitFileState) are reported.
    type: list
    elements: str
    default: []
  images:
    description: Docker images whose ID in the node's docker is reported (C(docker image inspect)), null when absent.
    type: list
    elements: str
    default: []
  directories:
    description: Paths reported as a directory, something else, or absent.
    type: list
    elements: path
    default: []
  probe:
    description: Ask rank 0 of this model, when its container runs here, for a real completion.
    type: dict
    suboptions:
      model:
        description: The catalog key (the containers' C(dgx-spark.model) label).
        type: str
        required: true
      served_name:
        description: The name C(/v1/models) must list and the completion is asked of.
        type: str
        required: true
      port:
        description: The API's port on this node.
        type: int
        required: true
      api_key_file:
        description: The endpoint's API key file (C(VLLM_API_KEY=<key>)); a missing file means no key.
        type: path
      completion_timeout:
        description: Seconds the completion may take.
        type: int
        default: 60
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dgx_spark.cluster.read_only
seealso:
  - module: dgx_spark.cluster.serving_containers_info
  - module: dgx_spark.cluster.gpu_vram_facts
  - module: dgx_spark.cluster.serving_wait
"""

EXAMPLES = r"""
- name: What serves on every node, and whether rank 0 of gpt-oss-120b answers
  dgx_spark.cluster.serving_info:
    lock_path: /var/lib/dgx-spark/serving.lock
    files: [/etc/dgx-spark/serving/watchdog.json]
    units: [dgx-spark-serving-watchdog.service]
    probe:
      model: gpt-oss-120b
      served_name: openai/gpt-oss-120b
      port: 8000
      api_key_file: /var/lib/dgx-spark/serving/api-key.env
  register: look
"""

RETURN = r"""
containers:
  description:
    - docker's inspect record of each serving container (empty when there is none), the values of secret-named
      environment variables replaced by C(********).
  returned: always
  type: list
  elements: dict
user:
  description: The user the module ran as (the connecting user without C(become)).
  returned: always
  type: str
  sample: spark
memory:
  description: The GPU and memory summary, the C(gpu_vram) facts of M(dgx_spark.cluster.gpu_vram_facts).
  returned: when O(memory=true)
  type: dict
  sample: {"unified_memory": true, "total_mib": 122502, "available_mib": 118322, "source": "/proc/meminfo"}
lock_present:
  description: Whether the swap lock file exists.
  returned: when O(lock_path) is set
  type: bool
files:
  description: "C({path: sha256}) of O(files), null for a missing file."
  returned: always
  type: dict
images:
  description: "C({image: ID}) of O(images), null for an image the node does not have."
  returned: always
  type: dict
  sample: {"vllm/vllm-openai:v0.11.0": "sha256:5b0f8e1a9c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"}
directories:
  description: "C({path: kind}) of O(directories): C(directory), C(other) (it exists and is not one), or null (absent)."
  returned: always
  type: dict
  sample: {"/home/spark/models/tiny-llama": "directory"}
units:
  description: "C({unit: {active, enabled}}), systemd's C(ActiveState) and C(UnitFileState) (null without systemctl)."
  returned: always
  type: dict
  sample: {"dgx-spark-serving-watchdog.service": {"active": "active", "enabled": "enabled"}}
probe:
  description:
    - The probe of O(probe); C(ran) is false when rank 0 of that model does not run here.
    - C(problem) is null when the served name is listed and a completion answered (C(completion_tokens) >= 1).
  returned: when O(probe) is set
  type: dict
  sample: {"ran": true, "container": "dgx-spark-serve-gpt-oss-120b-r0", "status": 200, "problem": null,
           "models": ["openai/gpt-oss-120b"], "completion": " is", "completion_tokens": 8, "elapsed": 0.21}
"""

import os
import pwd
import threading
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _api_key, _nvidia_smi, _serving_state
from ansible_collections.dgx_spark.cluster.plugins.module_utils._digest import sha256_of
from ansible_collections.dgx_spark.cluster.plugins.module_utils._openai_api import api_problem, http_status
from ansible_collections.dgx_spark.cluster.plugins.module_utils._runner import CommandRunner


def file_hash(path):
    """sha256_of(path), or None when there is no such file."""
    try:
        return sha256_of(path)
    except FileNotFoundError:
        return None


def unit_states(runner, units):
    systemctl = runner.module.get_bin_path("systemctl")
    states = {}
    for unit in units:
        rc, stdout, stderr = runner.run([systemctl, "show", "--property=ActiveState,UnitFileState", "--", unit]) \
            if systemctl else (None, "", "")
        fields = dict(line.partition("=")[::2] for line in stdout.splitlines() if "=" in line)
        states[unit] = {"active": fields.get("ActiveState"), "enabled": fields.get("UnitFileState")}
    return states


def path_kind(path):
    """'directory', 'other' (it exists and is not one) or None (absent)."""
    if os.path.isdir(path):
        return "directory"
    return "other" if os.path.lexists(path) else None


def image_ids(runner, docker, images):
    """{image: its ID, or None when docker does not have it}."""
    ids = {}
    if images:
        docker = runner.which(docker, "install docker (DGX OS ships it)")
    for image in images:
        rc, stdout, _stderr = runner.run([docker, "image", "inspect", "--format", "{{.Id}}", "--", image])
        ids[image] = stdout.strip() or None if rc == 0 else None
    return ids


def rank0(records, model):
    """The running (not parked) container of rank 0 of model among records, or None."""
    for container in _serving_state.containers(records):
        labels = container["labels"]
        if (container["state"] == "running" and not container["parked"]
                and labels.get("dgx-spark.model") == model and labels.get("dgx-spark.rank") == "0"):
            return container
    return None


def probe_rank0(records, probe):
    """Rank 0's answer: /health, then the served name and a real completion."""
    container = rank0(records, probe["model"])
    if container is None:
        return {"ran": False, "container": None, "status": None, "problem": "rank 0 of %s does not run here"
                % probe["model"]}
    start = time.monotonic()
    base = "http://127.0.0.1:%d" % probe["port"]
    status = http_status(base + "/health")
    result = {"ran": True, "container": container["name"], "status": status}
    if status != 200:
        problem, fields = "%s/health answered %s" % (base, status), {}
    else:
        key = _api_key.read(probe["api_key_file"]) if probe["api_key_file"] else ""
        problem, fields = api_problem(base, probe["served_name"], probe["completion_timeout"], key)
    return dict(result, problem=problem, elapsed=round(time.monotonic() - start, 2), **fields)


def in_background(call, *args):
    """Start call(*args) in a daemon thread (a failing module exits without waiting for it); the returned function
    waits for its result."""
    outcome = {}

    def run():
        try:
            outcome["result"] = call(*args)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # raised again where the result is taken
            outcome["error"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            docker=dict(type="str", default="docker"),
            memory=dict(type="bool", default=True),
            lock_path=dict(type="path"),
            files=dict(type="list", elements="path", default=[]),
            units=dict(type="list", elements="str", default=[]),
            images=dict(type="list", elements="str", default=[]),
            directories=dict(type="list", elements="path", default=[]),
            probe=dict(type="dict", options=dict(
                model=dict(type="str", required=True),
                served_name=dict(type="str", required=True),
                port=dict(type="int", required=True),
                api_key_file=dict(type="path"),
                completion_timeout=dict(type="int", default=60),
            )),
        ),
        supports_check_mode=True,
    )
    params = module.params
    runner = CommandRunner(module)
    records = _serving_state.inspected(runner, params["docker"])
    # rank 0 answers (a CPU engine takes a fraction of a second) while docker, systemd and nvidia-smi are asked
    probed = in_background(probe_rank0, records, params["probe"]) if params["probe"] else None
    result = {"containers": records, "user": pwd.getpwuid(os.geteuid()).pw_name,
              "files": dict((path, file_hash(path)) for path in params["files"]),
              "units": unit_states(runner, params["units"]),
              "images": image_ids(runner, params["docker"], params["images"]),
              "directories": dict((path, path_kind(path)) for path in params["directories"])}
    if params["memory"]:
        memory, failure = _nvidia_smi.gather(module)
        if failure:
            msg, rc, stdout, stderr = failure
            module.fail_json(msg=msg, rc=rc, stdout=stdout, stderr=stderr)
        result["memory"] = memory
    if params["lock_path"]:
        result["lock_present"] = os.path.lexists(params["lock_path"])
    if probed:
        result["probe"] = probed()
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
