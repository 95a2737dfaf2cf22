"""Verify what gpu_vram_facts reported on each lab node against the node itself."""

import json


def _meminfo_mib(host, key):
    line = [entry for entry in host.file("/proc/meminfo").content_string.splitlines() if entry.startswith(key + ":")][0]
    return int(line.split()[1]) // 1024


def test_unified_memory_comes_from_the_nodes_meminfo(host):
    facts = json.loads(host.file("/var/lib/dgx-spark/gpu_vram.json").content_string)
    assert facts["present"] is True
    assert facts["unified_memory"] is True
    assert facts["source"] == "/proc/meminfo"
    assert facts["total_mib"] == _meminfo_mib(host, "MemTotal")
    assert "available_mib" not in facts  # checked in converge: it moves between runs


def test_gpu_record_matches_the_driver(host):
    facts = json.loads(host.file("/var/lib/dgx-spark/gpu_vram.json").content_string)
    [gpu] = facts["gpus"]
    listed = host.check_output("nvidia-smi -L")
    assert gpu["name"] == "NVIDIA GB10" and gpu["uuid"] in listed
    assert gpu["memory_total_mib"] is None
