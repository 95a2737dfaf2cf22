#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpu_vram_facts
short_description: GPU and memory facts for model placement, correct on GB10 unified memory
version_added: 0.1.0
description:
  - Runs C(nvidia-smi --query-gpu=index,name,uuid,pci.bus_id,driver_version,compute_cap,memory.total,memory.used,memory.free
    --format=csv,noheader,nounits) once and parses the CSV (never the human table).
  - On GB10 (DGX Spark) the driver prints C([N/A]) for every memory field because the GPU shares the host's
    unified memory. The module then reports O(ignore:unified_memory=true) and takes the node's total and available memory
    from C(/proc/meminfo), naming that source in the result. It never falls back to a guessed size.
  - On discrete GPUs the node totals are the sums of the per-GPU C(memory.total) and C(memory.free).
  - Read-only; runs fully in check mode.
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  nvidia_smi_path:
    description:
      - The C(nvidia-smi) executable, a name looked up on E(PATH) or an absolute path.
    type: str
    default: nvidia-smi
  fail_on_missing:
    description:
      - When V(true), a missing C(nvidia-smi), a non-zero exit or output that is not the queried CSV fails the task
        with what to check.
      - When V(false), the same cases return an explicit empty result (C(present=false), no GPUs, null totals)
        with the reason in C(error).
    type: bool
    default: true
  meminfo_path:
    description:
      - Where to read the host memory counters for unified-memory GPUs.
    type: path
    default: /proc/meminfo
  timeout:
    description:
      - Seconds to wait for C(nvidia-smi); a hung driver fails the task instead of blocking the play.
    type: int
    default: 30
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
notes:
  - Facts are returned under C(ansible_facts.gpu_vram) and so are available as the variable C(gpu_vram).
seealso:
  - name: NVIDIA System Management Interface
    description: The nvidia-smi reference for C(--query-gpu) fields.
    link: https://docs.nvidia.com/deploy/nvidia-smi/index.html
"""

EXAMPLES = r"""
- name: Gather GPU memory facts
  dgx_spark.cluster.gpu_vram_facts:

- name: Show what a model may use on this node
  ansible.builtin.debug:
    msg: "{{ gpu_vram.available_mib }} MiB available ({{ gpu_vram.source }}), unified={{ gpu_vram.unified_memory }}"

- name: Nodes without a driver report an empty result instead of failing
  dgx_spark.cluster.gpu_vram_facts:
    fail_on_missing: false
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    gpu_vram:
      description: GPUs and the node's memory as a model planner needs them.
      returned: always
      type: dict
      contains:
        present:
          description: Whether nvidia-smi answered with at least one GPU.
          type: bool
          sample: true
        gpus:
          description: One record per GPU, in nvidia-smi's order.
          type: list
          elements: dict
          sample:
            - index: 0
              name: NVIDIA GB10
              uuid: GPU-3f1c2c36-7a04-4a4e-b0c6-1b1d1c4c1f1e
              pci_bus_id: "0000000F:01:00.0"
              driver_version: "580.95.05"
              compute_cap: "12.1"
              memory_total_mib: null
              memory_used_mib: null
              memory_free_mib: null
              unified_memory: true
        gpu_count:
          description: Number of GPUs.
          type: int
          sample: 1
        unified_memory:
          description: True when the GPUs share host memory (memory fields N/A), as on GB10.
          type: bool
          sample: true
        total_mib:
          description: Memory a model can be placed in on this node, in MiB; null when no GPU was found.
          type: int
          sample: 122502
        available_mib:
          description: Memory available now, in MiB (MemAvailable, or the GPUs' free memory); null when no GPU.
          type: int
          sample: 117318
        source:
          description: Where C(total_mib) and C(available_mib) come from.
          type: str
          choices: [nvidia-smi, /proc/meminfo]
          sample: /proc/meminfo
        driver_version:
          description: Driver version of the first GPU.
          type: str
          sample: "580.95.05"
        error:
          description: Why the result is empty, with O(fail_on_missing=false); null otherwise.
          type: str
          sample: null
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dgx_spark.cluster.plugins.module_utils._nvidia_smi import empty_result, gather


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nvidia_smi_path=dict(type="str", default="nvidia-smi"),
            fail_on_missing=dict(type="bool", default=True),
            meminfo_path=dict(type="path", default="/proc/meminfo"),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    params = module.params
    facts, failure = gather(module, params["nvidia_smi_path"], params["meminfo_path"], params["timeout"])
    if failure:
        msg, rc, stdout, stderr = failure
        if module.params["fail_on_missing"]:
            module.fail_json(msg=msg, rc=rc, stdout=stdout, stderr=stderr)
        facts = empty_result(msg)
    module.exit_json(changed=False, ansible_facts={"gpu_vram": facts})


if __name__ == "__main__":
    main()
