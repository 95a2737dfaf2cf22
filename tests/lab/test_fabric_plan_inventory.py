"""An inventory derives each host's fabric addresses from its place in the group with dgx_spark.cluster.fabric_plan,
as docs/topologies.md shows, resolved by Ansible itself: every role reads fabric_address as it does today."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODES = ["spark-2959", "spark-ba63", "spark-3", "spark-4"]


def test_an_inventory_derives_each_hosts_addresses_from_its_place(tmp_path):
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(json.dumps({"sparks": {"hosts": dict((n, {}) for n in NODES)}}))
    (inventory / "group_vars" / "sparks.yml").write_text(
        "fabric_address: \"{{ (groups['sparks'] | dgx_spark.cluster.fabric_plan('switch'))"
        ".interfaces[inventory_hostname][0].address }}\"\n")
    out = subprocess.run([str(Path(sys.executable).parent / "ansible"), "sparks", "-i", str(inventory), "-c", "local",
                          "-m", "ansible.builtin.debug", "-a", "var=fabric_address"],
                         capture_output=True, text=True, check=False, timeout=120,
                         env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
                                  ANSIBLE_CONFIG=str(tmp_path / "none.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                                  ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json"))
    assert out.returncode == 0, out.stdout + out.stderr
    document = json.JSONDecoder().raw_decode(out.stdout[out.stdout.index("{"):])[0]  # after profile_tasks' line
    results = document["plays"][0]["tasks"][0]["hosts"]
    assert dict((node, r["fabric_address"]) for node, r in results.items()) == dict(
        (node, "10.10.10.%d/24" % (index + 1)) for index, node in enumerate(NODES))
