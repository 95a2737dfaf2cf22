"""The last lab test: lab.sh down takes down whatever lab is up (after tests/e2e/test_topology.py, four nodes in a
ring: this module brings up nothing first) and leaves no container, network, volume, mount, cgroup or process of it;
a lab beside it (LAB_INSTANCE) keeps its own."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from labkit import INSTANCE, PREFIX, lab, lab_container_ids, ssh


@pytest.mark.lab_teardown
def test_down_leaves_nothing_behind():
    ids = lab_container_ids()
    probe = "sleep 424%d" % INSTANCE  # this lab's own
    ssh("spark-2959", "docker run -d --name lab-leak-probe lab/busybox " + probe)
    lab("down")
    time.sleep(1)
    assert lab_container_ids() == []
    networks = subprocess.run(["podman", "network", "ls", "--format", "{{.Name}}"], capture_output=True, text=True,
                              check=True).stdout.split()
    assert [n for n in networks if n.startswith(PREFIX + "-")] == []
    volumes = subprocess.run(["podman", "volume", "ls", "--format", "{{.Name}}"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert [v for v in volumes if v.startswith(PREFIX + "-")] == []
    mounts = Path("/proc/mounts").read_text()
    assert not [cid for cid in ids if cid[:12] in mounts]
    assert 2 <= len(ids) <= 4  # the lab's nodes: four in a ring after tests/e2e/test_topology.py
    for cid in ids:
        leaked = subprocess.run(["find", "/sys/fs/cgroup", "-maxdepth", "4", "-name", "*%s*" % cid[:12]],
                                capture_output=True, text=True, check=False).stdout.split()
        assert leaked == []
    assert probe not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
