"""More than two Sparks: three lab nodes on the lab's fabric bridges (a switch, docs/topologies.md), their addresses
derived from the node order by dgx_spark.cluster.fabric_plan in the inventory, as an owner of N Sparks writes it;
then the same three cabled as a ring (a bridge per twin of each link, both QSFP ports). Runs last but the teardown
(which then takes the four nodes down). make test runs it on a second lab (LAB_INSTANCE=2, its fabric on 10.20.x)
beside the pair's tests on the first, with the teardown after it."""

from __future__ import annotations

import json
import subprocess

import pytest
from labkit import (JSON_OUTPUT, NODES, PREFIX, REPORTS, fabric, json_document, lab, node_inventory, playbook, recap,
                    relay, ssh, wait_for)

SPARKS = list(NODES) + ["spark-lab3"]


@pytest.fixture(scope="module")
def three_sparks(tmp_path_factory):
    """The lab with three nodes, their inventory, and the output of fabric.yml run on them (addresses, SSH trust)."""
    lab("down")
    lab("up", env={"LAB_NODES": "3"})
    inventory = node_inventory(tmp_path_factory.mktemp("three") / "inventory.yml", 3)
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
            planned = fabric("10.10.1%d.%d/24") % (twin, index + 1)
            assert planned in ssh(node, "ip -4 -o addr show dev %s" % netdev).stdout, (node, netdev)
            # persisted by fabric_ip from the derived variable (the lab's bridge gave the address, not the file)
            assert planned in ssh(node, "sudo cat /etc/netplan/40-dgx-spark-%s.yaml" % netdev).stdout, (node, netdev)
        # each of the other two on both twins
        assert "%s: 4 jumbo pings of 8972 bytes ok" % node in out.stdout


def roce_gate_with_lab3_at_100g(inventory, lab3_scenario):
    """(output, report, {(node, node): matrix link}) of the RoCE gate, failed, with spark-lab3's links at 100G."""
    lab3_scenario("degraded_link")
    out = playbook("roce_check.yml", "-i", str(inventory))
    assert out.returncode != 0 and "RoCE gate failed" in out.stdout
    report = json.loads((REPORTS / "roce_check.json").read_text())
    return out, report, {tuple(link["nodes"]): link for link in report["matrix"]["links"]}


@pytest.mark.lab_resize
def test_the_roce_gate_measures_every_link_and_names_the_degraded_one(three_sparks, lab3_scenario):
    out, report, links = roce_gate_with_lab3_at_100g(three_sparks[0], lab3_scenario)
    # every node with the head, then the other pair
    assert report["pairs"] == [["spark-2959", "spark-ba63"], ["spark-2959", "spark-lab3"], ["spark-ba63", "spark-lab3"]]
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


def staged_model(tmp_path, image):
    """Extra vars with a catalog entry 'lab-staged' of three pipeline stages (a local model directory on the head),
    without the launch's preflight and jumbo pings (proven by the tests above; these are about the plan and copies)."""
    ssh("spark-2959", "mkdir -p /home/spark/models/staged && echo '{}' > /home/spark/models/staged/config.json && "
                      "head -c 8388608 /dev/urandom > /home/spark/models/staged/model.safetensors")
    entry = {"local_path": "/home/spark/models/staged", "image": image, "params_b": 0.01, "dtype": "float32",
             "pp": 3, "max_model_len": 512, "served_name": "staged", "port": 8000}
    extra = tmp_path / "catalog.json"
    extra.write_text(json.dumps({"model_serving_catalog": {"lab-staged": entry}, "model_serving_preflight": False,
                                 "model_serving_fabric_check": False}))
    return extra


@pytest.mark.lab_resize
def test_a_launch_plans_pipeline_stages_on_the_three_nodes_in_their_order(three_sparks, tmp_path):
    """--check: the plan and what the launch would do, nothing started (a real launch of stages meets the lab engine's
    pipeline bug, test_serving.py). The image is one every fresh lab node has."""
    out = playbook("launch_model.yml", "-i", str(three_sparks[0]), "-e", "model=lab-staged",
                   "-e", "@%s" % staged_model(tmp_path, "lab/busybox:latest"), "--check")
    assert out.returncode == 0, out.stdout[-4000:]
    assert "lab-staged: pp on spark-2959 + spark-ba63 + spark-lab3, tp=1 x pp=3" in out.stdout
    for node in SPARKS:
        assert ssh(node, "docker ps -q --filter label=dgx-spark.role=serving").stdout.strip() == "", node


RELAY_IMAGE = "lab/relay-test:1"
RELAY_DIR = "/var/tmp/dgx-spark-relay"
WORKERS = SPARKS[1:]
# docker whose load dies after 20 MB of the archive, as a node whose disk fills or whose daemon dies mid-copy
DYING_LOAD = """sudo tee /usr/local/bin/docker-dying-load >/dev/null <<'EOF'
#!/bin/sh
if [ "$1" = load ]; then
  head -c 20000000 >/dev/null; echo 'Error: simulated crash mid-load' >&2; exit 1
fi
exec docker "$@"
EOF
sudo chmod 755 /usr/local/bin/docker-dying-load"""


def image_id(node, image=RELAY_IMAGE):
    return ssh(node, "docker image inspect -f '{{.Id}}' %s" % image, check=False).stdout.strip()


def copy_in_a_relay(inventory, *args):
    """(rc, {node: the copy task's result}) of the relay from the head to both workers, ba63 first."""
    return relay(inventory, WORKERS, *args, image=RELAY_IMAGE)[:2]


@pytest.fixture(scope="module")
def relay_image(three_sparks):
    """A 48 MiB image on the head only."""
    ssh("spark-2959", "printf 'FROM lab/busybox\\nRUN dd if=/dev/urandom of=/blob bs=1M count=48 2>/dev/null\\n' "
                      "| docker build -q --network host -t %s - >/dev/null" % RELAY_IMAGE)
    yield image_id("spark-2959")
    for node in SPARKS:
        ssh(node, "docker image rm -f %s >/dev/null 2>&1; true" % RELAY_IMAGE)


def without_relay_image():
    for node in WORKERS:
        ssh(node, "docker image rm -f %s >/dev/null 2>&1; true" % RELAY_IMAGE)


@pytest.mark.lab_resize
def test_an_image_goes_to_the_workers_in_a_relay_each_forwarding_what_it_receives(three_sparks, relay_image):
    without_relay_image()
    # 48 MiB take the head 5 s: the next node starts while the first receives (uncapped, a loaded host can let the
    # first have it all before the second asks, and the second then exports it from the first's layer store)
    lab("link-rate", "spark-2959", "80")
    try:
        rc, results = copy_in_a_relay(three_sparks[0])
    finally:
        lab("link-rate", "spark-2959", "0")
    assert rc == 0, results
    first, second = results["spark-ba63"], results["spark-lab3"]
    assert first["changed"] and first["export"] == "layer store" and first["relay"]["to_next"]
    # the second node's bytes came from the first as it received them, not from the head
    assert second["changed"] and second["export"] == "relay" and second["relay"] == {
        "from": fabric("10.10.10.2"), "fell_back": None, "to_next": False}
    assert second["bytes"] == first["bytes"] and second["checksum"] != first["checksum"]  # each hop its own key
    assert [image_id(node) for node in WORKERS] == [relay_image] * 2
    for node in WORKERS:  # the spool went with its reader, the markers with the sender
        assert ssh(node, "ls -A %s 2>/dev/null; true" % RELAY_DIR).stdout.strip() == "", node
    # again: every node holds it, nothing moves
    rc, results = copy_in_a_relay(three_sparks[0])
    assert rc == 0 and [results[node]["changed"] for node in WORKERS] == [False, False], results


@pytest.mark.lab_resize
def test_a_node_that_already_holds_the_image_forwards_it_from_its_own_docker(three_sparks, relay_image):
    ssh("spark-lab3", "docker image rm -f %s >/dev/null 2>&1; true" % RELAY_IMAGE)
    rc, results = copy_in_a_relay(three_sparks[0])
    assert rc == 0, results
    assert not results["spark-ba63"]["changed"]
    assert results["spark-lab3"]["changed"] and results["spark-lab3"]["export"] == "layer store"
    assert results["spark-lab3"]["relay"]["fell_back"] is None and image_id("spark-lab3") == relay_image


@pytest.mark.lab_resize
def test_a_node_that_fails_mid_relay_is_named_and_the_next_copies_from_the_head(three_sparks, relay_image):
    without_relay_image()
    for node in SPARKS:  # the module runs its docker on the source too (inspect): only ba63's load is broken
        ssh(node, DYING_LOAD)
    rc, results = copy_in_a_relay(three_sparks[0], "-e", "broken=spark-ba63")
    assert rc != 0
    first, second = results["spark-ba63"], results["spark-lab3"]
    assert first["failed"] and "simulated crash mid-load" in first["msg"], first
    assert second["changed"] and not second.get("failed"), second
    assert "its own copy failed" in second["relay"]["fell_back"] and second["export"] == "layer store"
    assert any(fabric("the relay from 10.10.10.2 failed") in warning for warning in second["warnings"])
    assert image_id("spark-lab3") == relay_image and image_id("spark-ba63") == ""  # nothing half-loaded
    for node in WORKERS:
        assert ssh(node, "pgrep -fx 'python3 -'", check=False).stdout.strip() == "", node  # no receiver or sender


@pytest.mark.lab_resize
def test_a_launch_over_three_nodes_takes_the_image_to_the_workers_in_a_relay(three_sparks, relay_image, tmp_path):
    """The role's relay (rank 1 from the head, rank 2 from rank 1), then a start that fails: the image holds no engine
    (a real launch of stages meets the lab engine's pipeline bug, test_serving.py)."""
    without_relay_image()
    out = playbook("launch_model.yml", "-i", str(three_sparks[0]), "-e", "model=lab-staged",
                   "-e", "@%s" % staged_model(tmp_path, RELAY_IMAGE), env=JSON_OUTPUT)
    assert out.returncode != 0
    document = json_document(out.stdout)
    copies = [task["hosts"] for play in document["plays"] for task in play["tasks"]
              if "The image copy has finished" in task["task"]["name"]]
    assert len(copies) == 1, out.stdout[-3000:]
    assert copies[0]["spark-ba63"]["relay"] == {"from": None, "fell_back": None, "to_next": True}
    # from rank 1, as it received it or (48 MiB go fast on a loaded host) from its docker once it had it all, never
    # from the head (the module's test proves the forwarding while receiving)
    assert copies[0]["spark-lab3"]["relay"] == {"from": fabric("10.10.10.2"), "fell_back": None, "to_next": False}
    assert copies[0]["spark-lab3"]["export"] in ("relay", "layer store")
    assert [image_id(node) for node in WORKERS] == [relay_image] * 2
    weights = [task["hosts"] for play in document["plays"] for task in play["tasks"]
               if "Copy the weights" in task["task"]["name"]]
    assert weights[0]["spark-ba63"]["relay"] == {"from": None, "fell_back": None, "to_next": True}
    # from rank 1, as it received them or (8 MiB go fast) from its files once it had them all, never from the head
    assert weights[0]["spark-lab3"]["relay"] == {"from": fabric("10.10.10.2"), "fell_back": None, "to_next": False}
    staged = "cd /home/spark/models/staged && sha256sum config.json model.safetensors"
    assert [ssh(node, staged).stdout for node in WORKERS] == [ssh("spark-2959", staged).stdout] * 2
    for node in SPARKS:  # the failed start left nothing
        assert ssh(node, "docker ps -aq --filter label=dgx-spark.role=serving").stdout.strip() == "", node


@pytest.mark.lab_resize
def test_a_launch_whose_weights_fail_waits_for_the_image_and_stops_nothing(three_sparks, relay_image, tmp_path):
    """The image copies in the background while the weights fail (a link dangling on the head): the launch waits for
    the image before it fails, so nothing runs on after it, and it names the step."""
    without_relay_image()
    extra = staged_model(tmp_path, RELAY_IMAGE)
    ssh("spark-2959", "ln -sfn /home/spark/models/staged/gone /home/spark/models/staged/tokenizer.json")
    lab("link-rate", "spark-2959", "80")  # the 48 MiB image takes 5 s: far longer than the weights take to fail
    try:
        out = playbook("launch_model.yml", "-i", str(three_sparks[0]), "-e", "model=lab-staged", "-e", "@%s" % extra)
        images = [image_id(node) for node in WORKERS]  # as the launch returns
    finally:
        lab("link-rate", "spark-2959", "0")
        ssh("spark-2959", "rm -f /home/spark/models/staged/tokenizer.json")
    assert out.returncode != 0
    assert "in step 'Copy the weights (a Hugging Face cache entry or a local directory) from the head, the same way'" \
        in out.stdout and "dangling links" in out.stdout, out.stdout[-3000:]
    assert "Nothing was stopped" in out.stdout
    assert images == [relay_image] * 2  # the launch returned only once the image copy had ended, whole
    for node in WORKERS:  # no copy, receiver or sender runs on (an async job's wrapper takes a moment to exit)
        wait_for("nothing running on %s" % node, lambda: ssh(
            node, "pgrep -fx 'python3 -'; pgrep -f '[a]sync_wrapper'", check=False).stdout.strip() == "", 10)


RELAY_MODEL = "/home/spark/models/relay-test"
MODEL_DIGESTS = "cd %s && sha256sum config.json model.safetensors" % RELAY_MODEL
# tar whose extraction dies after 5 MB, as a node whose disk fills mid-copy (before /usr/bin on the module's PATH)
DYING_TAR = """sudo tee /usr/local/bin/tar >/dev/null <<'EOF'
#!/bin/sh
if [ "$1" = -x ]; then
  head -c 5000000 >/dev/null; echo 'tar: simulated disk full' >&2; exit 2
fi
exec /usr/bin/tar "$@"
EOF
sudo chmod 755 /usr/local/bin/tar"""


@pytest.fixture(scope="module")
def relay_model(three_sparks):
    """A 24 MiB model directory on the head only; yields its files' digests."""
    ssh("spark-2959", "mkdir -p {0} && echo '{{}}' > {0}/config.json && head -c 25165824 /dev/urandom "
                      "> {0}/model.safetensors".format(RELAY_MODEL))
    yield ssh("spark-2959", MODEL_DIGESTS).stdout
    for node in SPARKS:
        ssh(node, "rm -rf %s" % RELAY_MODEL, check=False)


def without_relay_model():
    for node in WORKERS:
        ssh(node, "rm -rf %s" % RELAY_MODEL)


def models(node):
    return ssh(node, "ls -A /home/spark/models").stdout.split()


def weights_in_a_relay(inventory):
    return relay(inventory, WORKERS, path=RELAY_MODEL)[:2]


@pytest.mark.lab_resize
def test_weights_go_to_the_workers_in_a_relay_and_a_node_holding_them_forwards_its_own(three_sparks, relay_model):
    without_relay_model()
    lab("link-rate", "spark-2959", "80")  # 24 MiB take the head 2.5 s: the next node starts while the first receives
    try:
        rc, results = weights_in_a_relay(three_sparks[0])
    finally:
        lab("link-rate", "spark-2959", "0")
    assert rc == 0, results
    first, second = results["spark-ba63"], results["spark-lab3"]
    assert first["changed"] and first["export"] == "files" and first["relay"]["to_next"], first
    # the second node's bytes came from the first as it received them, not from the head
    assert second["changed"] and second["export"] == "relay" and second["relay"] == {
        "from": fabric("10.10.10.2"), "fell_back": None, "to_next": False}, second
    assert second["bytes_sent"] == first["bytes_sent"] > 24 << 20 and second["checksum"] != first["checksum"]
    assert [ssh(node, MODEL_DIGESTS).stdout for node in WORKERS] == [relay_model] * 2
    relay_id = first["invocation"]["module_args"]["relay_id"]
    for node in WORKERS:  # the spool went with its reader, the markers with the sender; no staging directory left
        assert [name for name in ssh(node, "ls -A %s" % RELAY_DIR, check=False).stdout.split()
                if name.startswith(relay_id)] == [], node
        assert [name for name in models(node) if name.startswith(".weight_sync")] == [], node
    ssh("spark-lab3", "rm -rf %s" % RELAY_MODEL)
    rc, results = weights_in_a_relay(three_sparks[0])
    assert rc == 0 and not results["spark-ba63"]["changed"], results  # it holds them: skipped, and says so
    assert results["spark-lab3"]["export"] == "files" and results["spark-lab3"]["relay"]["fell_back"] is None
    assert ssh("spark-lab3", MODEL_DIGESTS).stdout == relay_model


@pytest.mark.lab_resize
def test_a_node_whose_weights_die_mid_relay_is_named_and_the_next_copies_from_the_head(three_sparks, relay_model):
    without_relay_model()
    ssh("spark-ba63", DYING_TAR)
    try:
        rc, results = weights_in_a_relay(three_sparks[0])
    finally:
        ssh("spark-ba63", "sudo rm -f /usr/local/bin/tar")
    assert rc != 0
    first, second = results["spark-ba63"], results["spark-lab3"]
    assert first["failed"] and "simulated disk full" in first["msg"] and "Nothing was moved" in first["msg"], first
    assert second["changed"] and not second.get("failed"), second
    assert "its own copy failed" in second["relay"]["fell_back"] and second["export"] == "files"
    assert ssh("spark-lab3", MODEL_DIGESTS).stdout == relay_model
    # nothing half-copied on the failed node (no model, no staging directory), no receiver or sender left
    assert [name for name in models("spark-ba63") if "relay-test" in name or name.startswith(".weight_sync")] == []
    for node in WORKERS:
        assert ssh(node, "pgrep -fx 'python3 -'", check=False).stdout.strip() == "", node


# Four nodes in a ring as fabric_plan('ring') plans it (docs/topologies.md): node -> netdev -> address. Node i's port 1
# is cabled to node i+1's port 0; the head and spark-lab3, and spark-ba63 and spark-lab4, share no link.
RING = {
    "spark-2959": {"enp1s0f1np1": fabric("10.10.10.1/24"), "enP2p1s0f1np1": fabric("10.10.11.1/24"),
                   "enp1s0f0np0": fabric("10.10.16.2/24"), "enP2p1s0f0np0": fabric("10.10.17.2/24")},
    "spark-ba63": {"enp1s0f1np1": fabric("10.10.12.1/24"), "enP2p1s0f1np1": fabric("10.10.13.1/24"),
                   "enp1s0f0np0": fabric("10.10.10.2/24"), "enP2p1s0f0np0": fabric("10.10.11.2/24")},
    "spark-lab3": {"enp1s0f1np1": fabric("10.10.14.1/24"), "enP2p1s0f1np1": fabric("10.10.15.1/24"),
                   "enp1s0f0np0": fabric("10.10.12.2/24"), "enP2p1s0f0np0": fabric("10.10.13.2/24")},
    "spark-lab4": {"enp1s0f1np1": fabric("10.10.16.1/24"), "enP2p1s0f1np1": fabric("10.10.17.1/24"),
                   "enp1s0f0np0": fabric("10.10.14.2/24"), "enP2p1s0f0np0": fabric("10.10.15.2/24")},
}
FORWARDING = "/etc/sysctl.d/60-dgx-spark-fabric.conf"


def fabric_address(node):
    return RING[node]["enp1s0f1np1"].split("/")[0]


@pytest.fixture(scope="module")
def four_in_a_ring(three_sparks, tmp_path_factory):
    """The lab cabled again as a ring of four (lab.sh recreates the nodes on a network per twin of each link, their
    disks kept), its inventory (fabric_topology ring, port-1 addresses from the plan), and fabric.yml's run on it."""
    lab("up", env={"LAB_NODES": "4", "LAB_TOPOLOGY": "ring"})
    inventory = node_inventory(tmp_path_factory.mktemp("ring") / "inventory.yml", 4, "ring")
    return inventory, playbook("fabric.yml", "-i", str(inventory))


@pytest.mark.lab_resize
def test_a_ring_of_four_addresses_both_ports_and_every_node_reaches_every_other(four_in_a_ring):
    first = four_in_a_ring[1]
    assert first.returncode == 0, first.stdout[-4000:]
    for node, twins in RING.items():
        for netdev, address in twins.items():
            assert address in ssh(node, "ip -4 -o addr show dev %s" % netdev).stdout, (node, netdev)
            assert address in ssh(node, "sudo cat /etc/netplan/40-dgx-spark-%s.yaml" % netdev).stdout, (node, netdev)
        # each neighbour on the twins of the link they share; the other nodes' addresses through the routes
        assert "%s: 4 jumbo pings of 8972 bytes ok" % node in first.stdout
        assert "%s: 6 addresses of the other nodes reached over the fabric" % node in first.stdout
    # spark-lab4 reaches the head's port 1 (on its link to spark-ba63) over its own link to the head, persisted
    assert fabric("10.10.10.1 via 10.10.16.2 dev enp1s0f1np1") in ssh("spark-lab4", "ip route").stdout
    persisted = ssh("spark-lab4", "sudo cat /etc/netplan/40-dgx-spark-enp1s0f1np1.yaml").stdout
    assert fabric("- to: 10.10.10.1/32\n          via: 10.10.16.2") in persisted
    # the opposite nodes go through the first node that neighbours both, which forwards (and only it, and the head)
    assert fabric("10.10.14.1 via 10.10.10.2 dev enp1s0f1np1") in ssh("spark-2959", "ip route").stdout
    for node in RING:
        forwarding = ssh(node, "cat %s 2>/dev/null; true" % FORWARDING).stdout
        assert ("net.ipv4.conf.enp1s0f0np0.forwarding=1" in forwarding) == (node in ("spark-2959", "spark-ba63")), node
    # node-to-node SSH (mpirun, the copies) from every node to every other's fabric address
    for node in RING:
        for other in RING:
            if other != node:
                assert ssh(node, "ssh %s hostname" % fabric_address(other)).stdout.strip() == other, (node, other)


@pytest.mark.lab_resize
def test_without_its_route_or_the_middle_nodes_forwarding_the_far_node_is_cut_off_until_the_role_runs(four_in_a_ring):
    ssh("spark-lab3", fabric("sudo ip route del 10.10.10.1/32 via 10.10.12.1"))
    ssh("spark-ba63", "sudo sysctl -q -w net.ipv4.conf.enp1s0f0np0.forwarding=0")
    # the lab gives no other way (the management LAN does not carry the fabric's subnets)
    assert ssh("spark-lab3", fabric("ping -c 1 -W 1 10.10.10.1"), check=False).returncode != 0
    assert ssh("spark-2959", fabric("ping -c 1 -W 1 10.10.14.1"), check=False).returncode != 0
    out = playbook("fabric.yml", "-i", str(four_in_a_ring[0]))
    assert out.returncode == 0, out.stdout[-4000:]
    # the route and the forwarding put back; on the other two, a second run changes nothing
    assert {node: counters["changed"] for node, counters in recap(out.stdout).items()} == {
        "spark-2959": 0, "spark-ba63": 1, "spark-lab3": 1, "spark-lab4": 0}
    assert ssh("spark-lab3", fabric("ping -c 1 -W 1 10.10.10.1"), check=False).returncode == 0
    assert ssh("spark-2959", fabric("ping -c 1 -W 1 10.10.14.1"), check=False).returncode == 0


@pytest.mark.lab_resize
def test_a_cut_link_is_named_by_the_twin_and_neighbour_on_each_end(four_in_a_ring):
    bridge = subprocess.run(["podman", "network", "inspect", "-f", "{{.NetworkInterface}}", PREFIX + "-link1t0"],
                            capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["ip", "link", "set", "dev", bridge, "down"], check=True)
    try:
        out = playbook("fabric.yml", "-i", str(four_in_a_ring[0]))
    finally:
        subprocess.run(["ip", "link", "set", "dev", bridge, "up"], check=True)
    assert out.returncode != 0
    # link1's twin 0 joins spark-ba63's port 1 and spark-lab3's port 0; its twin 1 and the other links still work
    assert fabric("spark-ba63: jumbo ping failed on twin 0 (enp1s0f1np1 -> spark-lab3 10.10.12.2)") in out.stdout
    assert fabric("spark-lab3: jumbo ping failed on twin 0 (enp1s0f0np0 -> spark-ba63 10.10.12.1)") in out.stdout
    assert "spark-2959: 4 jumbo pings of 8972 bytes ok" in out.stdout


@pytest.mark.lab_resize
def test_the_roce_gate_measures_each_link_of_the_ring_on_the_twins_of_its_two_ports(four_in_a_ring, lab3_scenario):
    unused_out, report, links = roce_gate_with_lab3_at_100g(four_in_a_ring[0], lab3_scenario)
    # the ring's four links, two at a time (the opposite nodes share none)
    assert report["pairs"] == [["spark-2959", "spark-ba63"], ["spark-lab3", "spark-lab4"],
                               ["spark-ba63", "spark-lab3"], ["spark-2959", "spark-lab4"]]
    assert {pair: link["verdict"] for pair, link in links.items()} == {
        ("spark-2959", "spark-ba63"): "pass", ("spark-lab3", "spark-lab4"): "fail",
        ("spark-ba63", "spark-lab3"): "fail", ("spark-2959", "spark-lab4"): "pass"}
    assert links[("spark-2959", "spark-lab4")]["both"] > 170  # the head's port 0 against spark-lab4's port 1
    # every node's four twins are checked: port 0's devices too
    mapped = [check["value"] for check in report["checks"]
              if check["node"] == "spark-lab3" and check["check"] == "rdma_map"]
    assert mapped == ["rocep1s0f1 -> enp1s0f1np1 (Up)", "roceP2p1s0f1 -> enP2p1s0f1np1 (Up)",
                      "rocep1s0f0 -> enp1s0f0np0 (Up)", "roceP2p1s0f0 -> enP2p1s0f0np0 (Up)"]
    # a pair of opposite nodes is no link: refused before any host is contacted
    refused = playbook("roce_check.yml", "-i", str(four_in_a_ring[0]), "-e",
                       json.dumps({"roce_check_pairs": [["spark-2959", "spark-lab3"]]}))
    assert refused.returncode != 0 and "in a ring a pair is two neighbours" in refused.stdout
    assert "spark-2959 and spark-lab3 share none" in refused.stdout


@pytest.mark.lab_resize
def test_the_nccl_gate_runs_across_the_ring_and_per_link(four_in_a_ring):
    out = playbook("nccl_test.yml", "-i", str(four_in_a_ring[0]), "-e", "nccl_test_per_pair=true")
    assert out.returncode == 0, out.stdout[-4000:]
    report = json.loads((REPORTS / "nccl_test.json").read_text())
    assert report["hosts"] == list(RING)
    # each link once, not the opposite nodes (their traffic would cross the middle node's kernel)
    assert sorted(tuple(run["hosts"]) for run in report["pairs"]) == [
        ("spark-2959", "spark-ba63"), ("spark-2959", "spark-lab4"), ("spark-ba63", "spark-lab3"),
        ("spark-lab3", "spark-lab4")]


@pytest.mark.lab_resize
def test_a_training_job_runs_across_the_ring_each_rank_reaching_the_others_through_the_routes(four_in_a_ring):
    """Real torchrun (Gloo) on the four nodes: every rank reaches the head's rendezvous at 10.10.10.1 and every other
    rank's fabric address, over the link they share or, for the opposite node, through the middle one."""
    lab("train")
    job = json.dumps({"train_launch_jobs": {"tiny-regression": {
        "venv": "/opt/dgx-spark-lab/train/venv", "args": ["--steps", "20", "--step-seconds", "0.1"]}}})
    out = playbook("train.yml", "-i", str(four_in_a_ring[0]), "-e", "job=tiny-regression", "-e", job,
                   "-e", "train_follow=true", "-e", "train_launch_follow_interval=1")
    assert out.returncode == 0, out.stdout[-4000:]
    assert "succeeded on spark-2959, spark-ba63, spark-lab3, spark-lab4" in out.stdout
    for node in RING:
        ssh(node, "sudo rm -rf /var/lib/dgx-spark/train", check=False)
