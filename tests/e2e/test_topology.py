"""More than two Sparks: three lab nodes on the lab's fabric bridges (a switch, docs/topologies.md), their addresses
derived from the node order by dgx_spark.cluster.fabric_plan in the inventory, as an owner of N Sparks writes it.
Runs last but the teardown (which then takes the three nodes down)."""

from __future__ import annotations

import pytest
import yaml
from labkit import MORE_NODES, NODES, ROOT, lab, playbook, recap, ssh

SPARKS = list(NODES) + ["spark-lab3"]
DERIVED = ("{{{{ (groups['sparks'] | dgx_spark.cluster.fabric_plan('switch')).interfaces[inventory_hostname][{0}]"
           ".address }}}}")


def three_node_inventory(path):
    """inventory/lab.yml with spark-lab3 added and no fabric address written by hand."""
    inventory = yaml.safe_load((ROOT / "inventory" / "lab.yml").read_text())
    groups = inventory["all"]["children"]["sparks"]
    groups["children"]["spark_workers"]["hosts"]["spark-lab3"] = {"ansible_host": MORE_NODES["spark-lab3"]}
    for group in groups["children"].values():
        for host in group["hosts"].values():
            host.pop("fabric_address", None)
            host.pop("fabric_twin_address", None)
    groups["vars"].update(fabric_address=DERIVED.format(0), fabric_twin_address=DERIVED.format(1))
    path.write_text(yaml.safe_dump(inventory))
    return path


@pytest.mark.lab_resize
def test_three_sparks_through_a_switch_take_their_planned_addresses_and_pass_jumbo_pings_on_every_pair(tmp_path):
    lab("down")
    lab("up", env={"LAB_NODES": "3"})
    inventory = three_node_inventory(tmp_path / "inventory.yml")
    out = playbook("fabric.yml", "-i", str(inventory))
    assert out.returncode == 0, out.stdout[-4000:]
    assert {node: counters["failed"] for node, counters in recap(out.stdout).items()} == dict.fromkeys(SPARKS, 0)
    for index, node in enumerate(SPARKS):
        for twin, netdev in enumerate(("enp1s0f1np1", "enP2p1s0f1np1")):
            planned = "10.10.1%d.%d/24" % (twin, index + 1)
            assert planned in ssh(node, "ip -4 -o addr show dev %s" % netdev).stdout, (node, netdev)
            # persisted by fabric_ip from the derived variable (the lab's bridge gave the address, not the file)
            assert planned in ssh(node, "sudo cat /etc/netplan/40-dgx-spark-%s.yaml" % netdev).stdout, (node, netdev)
        # each of the other two on both twins
        assert "%s: 4 jumbo pings of 8972 bytes ok" % node in out.stdout
