"""An inventory derives each host's fabric addresses from its place in the group with dgx_spark.cluster.fabric_plan,
as docs/topologies.md shows, resolved by Ansible itself: every role reads fabric_address as it does today."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "lab"))
from labkit import JSON_OUTPUT, json_document  # noqa: E402

NODES = ["spark-2959", "spark-ba63", "spark-3", "spark-4"]


@pytest.mark.parametrize("topology, addresses", [
    ("switch", ["10.10.10.1/24", "10.10.10.2/24", "10.10.10.3/24", "10.10.10.4/24"]),
    # a ring: each node's port 1, on the link to the next node, whose port 0 is .2 of it
    ("ring", ["10.10.10.1/24", "10.10.12.1/24", "10.10.14.1/24", "10.10.16.1/24"])])
def test_an_inventory_derives_each_hosts_addresses_from_its_place(tmp_path, topology, addresses):
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(json.dumps({"sparks": {"hosts": dict((n, {}) for n in NODES)}}))
    (inventory / "group_vars" / "sparks.yml").write_text(
        "fabric_address: \"{{ (groups['sparks'] | dgx_spark.cluster.fabric_plan('%s'))"
        ".interfaces[inventory_hostname][0].address }}\"\n" % topology)
    out = subprocess.run([str(Path(sys.executable).parent / "ansible"), "sparks", "-i", str(inventory), "-c", "local",
                          "-m", "ansible.builtin.debug", "-a", "var=fabric_address"],
                         capture_output=True, text=True, check=False, timeout=120,
                         env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
                                  ANSIBLE_CONFIG=str(tmp_path / "none.cfg"), **JSON_OUTPUT))
    assert out.returncode == 0, out.stdout + out.stderr
    results = json_document(out.stdout)["plays"][0]["tasks"][0]["hosts"]
    assert dict((node, r["fabric_address"]) for node, r in results.items()) == dict(zip(NODES, addresses))


def test_command_output_gives_a_parser_real_lines_inside_a_yaml_block_scalar(tmp_path):
    """Ansible's own templating: '\\n' written in a folded block reaches Jinja as two characters, so the roles join a
    registered result's streams with command_output instead (drain, join, perftest, a failed launch's log)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text("""
- hosts: localhost
  gather_facts: false
  vars:
    joined: {stdout: "[preflight] Running pre-flight checks", stderr: "[ERROR Port-10250]: Port 10250 is in use"}
  tasks:
    - ansible.builtin.debug:
        msg: >-
          {{ joined | dgx_spark.cluster.command_output | dgx_spark.cluster.kubeadm_join_failure }}
    - ansible.builtin.debug:
        msg: >-
          {{ [joined.stdout, joined.stderr] | join('\\n') }}
""")
    out = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), str(playbook)],
                         capture_output=True, text=True, check=False, timeout=120,
                         env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
                                  ANSIBLE_CONFIG=str(tmp_path / "none.cfg"), **JSON_OUTPUT))
    assert out.returncode == 0, out.stdout + out.stderr
    tasks = json_document(out.stdout)["plays"][0]["tasks"]
    failure, naive = (task["hosts"]["localhost"]["msg"] for task in tasks)
    assert failure["detail"] == "[ERROR Port-10250]: Port 10250 is in use"
    assert "\\n" in naive  # what the roles used to write: a backslash and an n, not a line break
