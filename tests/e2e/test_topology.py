"""More than two Sparks: three lab nodes on the lab's fabric bridges (a switch, docs/topologies.md), their addresses
derived from the node order by dgx_spark.cluster.fabric_plan in the inventory, as an owner of N Sparks writes it.
Runs last but the teardown (which then takes the three nodes down)."""

from __future__ import annotations

import json

import pytest
import yaml
from labkit import MORE_NODES, NODES, REPORTS, ROOT, lab, playbook, recap, ssh

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


@pytest.fixture(scope="module")
def three_sparks(tmp_path_factory):
    """The lab with three nodes, their inventory, and the output of fabric.yml run on them (addresses, SSH trust)."""
    lab("down")
    lab("up", env={"LAB_NODES": "3"})
    inventory = three_node_inventory(tmp_path_factory.mktemp("three") / "inventory.yml")
    return inventory, playbook("fabric.yml", "-i", str(inventory))


@pytest.fixture
def lab3_scenario():
    def switch(name):
        lab("scenario", "spark-lab3", name)
    yield switch
    switch("healthy")


@pytest.mark.lab_resize
def test_three_sparks_through_a_switch_take_their_planned_addresses_and_pass_jumbo_pings_on_every_pair(three_sparks):
    out = three_sparks[1]
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


@pytest.mark.lab_resize
def test_the_roce_gate_measures_every_link_and_names_the_degraded_one(three_sparks, lab3_scenario):
    lab3_scenario("degraded_link")
    out = playbook("roce_check.yml", "-i", str(three_sparks[0]))
    assert out.returncode != 0 and "RoCE gate failed" in out.stdout
    report = json.loads((REPORTS / "roce_check.json").read_text())
    # every node with the head, then the other pair
    assert report["pairs"] == [["spark-2959", "spark-ba63"], ["spark-2959", "spark-lab3"], ["spark-ba63", "spark-lab3"]]
    links = {tuple(link["nodes"]): link for link in report["matrix"]["links"]}
    assert {pair: link["verdict"] for pair, link in links.items()} == {
        ("spark-2959", "spark-ba63"): "pass", ("spark-2959", "spark-lab3"): "fail", ("spark-ba63", "spark-lab3"): "fail"}
    assert links[("spark-2959", "spark-ba63")]["both"] > 170
    for pair in (("spark-2959", "spark-lab3"), ("spark-ba63", "spark-lab3")):
        assert links[pair]["twin0"] < 85 and links[pair]["twin1"] < 85
        assert links[pair]["causes"][0] == "link at 100G on spark-lab3 (see link_speed_mbps)"
    assert "FAIL spark-ba63 <-> spark-lab3: " in out.stdout  # the matrix in the play's summary
    assert {c["node"] for c in report["checks"] if c["check"] == "link_speed_mbps" and c["verdict"] == "fail"} == {
        "spark-lab3"}


@pytest.mark.lab_resize
def test_the_nccl_gate_runs_across_three_and_per_pair_naming_the_slowest_link(three_sparks, lab3_scenario):
    lab3_scenario("nccl_slow")
    out = playbook("nccl_test.yml", "-i", str(three_sparks[0]), "-e", "nccl_test_per_pair=true")
    assert out.returncode != 0 and "NCCL gate failed" in out.stdout
    report = json.loads((REPORTS / "nccl_test.json").read_text())
    assert report["hosts"] == SPARKS and report["avg_busbw_gbps"] < 21.875
    pairs = {tuple(run["hosts"]): run["passed"] for run in report["pairs"]}
    assert pairs == {("spark-2959", "spark-ba63"): True, ("spark-2959", "spark-lab3"): False,
                     ("spark-ba63", "spark-lab3"): False}
    assert "spark-lab3" in report["slowest_link"]["nodes"]
    assert "Slowest link: %s" % " <-> ".join(report["slowest_link"]["nodes"]) in out.stdout
    for node in SPARKS:  # nothing left running after the failed runs
        assert ssh(node, "pgrep -f all_reduce_perf", check=False).returncode == 1, node


@pytest.mark.lab_resize
def test_a_launch_plans_pipeline_stages_on_the_three_nodes_in_their_order(three_sparks, tmp_path):
    """--check: the plan and what the launch would do, nothing started (a real launch of stages meets the lab engine's
    pipeline bug, test_serving.py). The image is one every fresh lab node has."""
    ssh("spark-2959", "mkdir -p /home/spark/models/staged")
    entry = {"local_path": "/home/spark/models/staged", "image": "lab/busybox:latest", "params_b": 0.01, "dtype": "float32",
             "pp": 3, "max_model_len": 512, "served_name": "staged", "port": 8000}
    extra = tmp_path / "catalog.json"
    extra.write_text(json.dumps({"model_serving_catalog": {"lab-staged": entry}}))
    out = playbook("launch_model.yml", "-i", str(three_sparks[0]), "-e", "model=lab-staged", "-e", "@%s" % extra,
                   "--check")
    assert out.returncode == 0, out.stdout[-4000:]
    assert "lab-staged: pp on spark-2959 + spark-ba63 + spark-lab3, tp=1 x pp=3" in out.stdout
    for node in SPARKS:
        assert ssh(node, "docker ps -q --filter label=dgx-spark.role=serving").stdout.strip() == "", node
