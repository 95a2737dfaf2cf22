#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: serving_request
short_description: Check a model launch request on the controller, before any host is contacted
version_added: 0.1.0
description:
  - Runs on the controller only (an action plugin; it contacts no host). Gives the catalog entry of O(model) (the
    shipped catalog in O(catalog_file) merged with the inventory's O(catalog), every field validated) and refuses,
    in one message naming what to fix, what the model_serving role must not act on - the play's settings
    (O(settings), the swap lock's wait and TTL, the vLLM backend), where the secrets would go (a secret file the
    controller cannot read, a Hugging Face token bound for a URL that is not https or the loopback, an endpoint open
    to the LAN without an API key, a malformed key) - both when O(play) - and the node's own settings
    (O(node_settings) and O(node_minimums), read from the variables of the host the task runs for). Run for every
    host of the play with O(play) true for one of them, each node's problems are named by that node.
  - The checks are the collection's validation vocabulary, the one the modules apply (module_utils/_validate).
  - Never given a secret, so none can reach its result - the role passes whether a token is set and whether the key
    is valid (O(hf_token_given), O(api_key)).
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  model:
    description: The catalog key to launch.
    type: str
    required: true
  catalog_file:
    description: The shipped catalog (the model_serving role's C(files/catalog.yml)).
    type: path
    required: true
  catalog:
    description: The inventory's additions and overrides, by catalog key (merged field by field).
    type: dict
    default: {}
  engine_root:
    description: Where trt_build writes TensorRT-LLM engines on the nodes (the tensorrt backend serves C(<engine_root>/<key>)).
    type: str
    default: /var/lib/dgx-spark/trt-engines
  settings:
    description: The play's settings as C([field, value, kind]) checks, each kind one of the validation vocabulary's.
    type: list
    elements: list
    default: []
  lock_wait:
    description: Seconds a launch waits for the swap lock (0 or more).
    type: raw
    default: 0
  lock_ttl:
    description: Seconds the swap lock lives unless renewed (more than 0).
    type: raw
    default: 300
  backend:
    description: vLLM's multi-node backend (V(native) or V(ray)).
    type: str
    default: native
  unreadable:
    description: The secret file variables the controller could not read, each with its path.
    type: dict
    default: {}
  hf_token_given:
    description: Whether a Hugging Face token is set (it then goes only to an https O(hf_endpoint) or the loopback).
    type: bool
    default: false
  hf_endpoint:
    description: Where the Hugging Face downloads go (empty for https://huggingface.co).
    type: str
    default: ""
  api_key:
    description:
      - The endpoint's API key as configured - V(absent), V(valid) or V(invalid) (16 to 256 letters, digits and
        C(._~+/=-)); never the key. A TensorRT-LLM model serves none (trtllm-serve checks no key).
    type: str
    choices: [absent, valid, invalid]
    default: absent
  lan_trusted:
    description: Whether every machine on the LAN may use the endpoint (then it needs no key).
    type: bool
    default: false
  play:
    description:
      - Whether to check the play's settings and secrets (O(settings) to O(lan_trusted)) too, and to name what breaks
        a rule of the catalog entry. The other nodes of the play fail on a bad entry without repeating why.
    type: bool
    default: true
  node_settings:
    description:
      - The node's settings, a kind for each variable name, read from the variables of the host the task runs for; a
        trailing C([]) checks every item of a list. A variable the host does not define is not checked.
    type: dict
    default: {}
  node_minimums:
    description: The node's integer settings, the least value for each variable name.
    type: dict
    default: {}
notes:
  - Supports check mode (it changes nothing).
"""

EXAMPLES = r"""
- name: The request is well-formed (the catalog entry; the settings; where the token and the endpoint's key go)
  dgx_spark.cluster.serving_request:
    model: "{{ model_serving_model }}"
    catalog_file: "{{ role_path }}/files/catalog.yml"
    catalog: "{{ model_serving_catalog }}"
    settings:
      - [model_serving_ray_port, "{{ model_serving_ray_port }}", unprivileged_port]
    api_key: absent
    lan_trusted: true
    node_settings:
      model_serving_hf_cache: data_dir
      "model_serving_devices[]": device
    node_minimums:
      model_serving_watchdog_failures: 1
    play: "{{ inventory_hostname == ansible_play_hosts_all[0] }}"
  register: request

- name: Where the model's image comes from
  ansible.builtin.debug:
    msg: "{{ request.entry.image }}"
"""

RETURN = r"""
entry:
  description: The validated catalog entry (the shipped one merged with the inventory's), its defaults filled in.
  returned: success
  type: dict
  sample: {"image": "nvcr.io/nvidia/vllm:25.11-py3", "engine": "vllm", "port": 8000, "tp": "auto", "pp": 1}
started_at:
  description: When the check ran (epoch seconds), the start of the launch it belongs to.
  returned: success
  type: float
  sample: 1764806400.25
"""
