"""Fabric layout filters: addresses, their networks, each node's peers."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.filter.fabric import FilterModule

FILTERS = FilterModule().filters()
HOSTVARS = {"spark-2959": {"fabric_address": "10.10.10.1/24", "fabric_twin_address": "10.10.11.1/24"},
            "spark-ba63": {"fabric_address": "10.10.10.2/24", "fabric_twin_address": "10.10.11.2/24"}}


def test_address_ip_drops_the_prefix_only():
    assert FILTERS["address_ip"]("10.10.10.1/24") == "10.10.10.1"
    assert FILTERS["address_ip"]("10.10.10.1") == "10.10.10.1"


def test_twins_on_different_subnets_have_different_networks():
    assert FILTERS["ipv4_network"]("10.10.10.1/24") == "10.10.10.0/24"
    assert FILTERS["ipv4_network"]("10.10.11.1/24") != FILTERS["ipv4_network"]("10.10.10.2/24")
    assert FILTERS["ipv4_network"]("not-an-address") is None


def test_peers_are_reached_through_the_local_twin_on_their_subnet():
    peers = FILTERS["fabric_peers"](["spark-ba63"], HOSTVARS, ["enp1s0f1np1", "enP2p1s0f1np1"])
    assert peers == [{"host": "spark-ba63", "twin": 0, "ip": "10.10.10.2", "local_interface": "enp1s0f1np1"},
                     {"host": "spark-ba63", "twin": 1, "ip": "10.10.11.2", "local_interface": "enP2p1s0f1np1"}]


def test_inventory_addresses_become_the_plans_port_1_overrides():
    netdevs = ["enp1s0f1np1", "enP2p1s0f1np1"]
    assert FILTERS["fabric_inventory_addresses"](HOSTVARS["spark-ba63"], netdevs) == {
        "enp1s0f1np1": "10.10.10.2/24", "enP2p1s0f1np1": "10.10.11.2/24"}
    assert FILTERS["fabric_inventory_addresses"]({"fabric_address": "10.10.12.1/24"}, netdevs) == {
        "enp1s0f1np1": "10.10.12.1/24"}


def route_check(route_get, ping_rc=0, ping_lines=()):
    item = {"host": "spark-2959", "ip": "10.10.10.1"}
    ping = {"rc": ping_rc, "stdout_lines": list(ping_lines), "stderr_lines": []}
    return FILTERS["fabric_route_check"]([dict(route_get, item=item), ping], ["enp1s0f1np1"])["route"]


def test_an_address_is_reached_only_by_a_fabric_twin_and_an_answered_ping():
    # the shapes `ip -j route get` prints for a host route through a neighbour and for the management LAN's default
    fabric = '[{"dst":"10.10.10.1","gateway":"10.10.14.2","dev":"enp1s0f1np1","prefsrc":"10.10.14.1","flags":[]}]'
    lan = '[{"dst":"10.10.10.1","gateway":"10.59.63.1","dev":"eth0","prefsrc":"10.59.63.13","flags":[]}]'
    assert route_check({"rc": 0, "stdout": fabric}) is None
    assert route_check({"rc": 0, "stdout": lan}) == (
        "leaves by eth0 via 10.59.63.1, not by a fabric twin (enp1s0f1np1)")
    assert route_check({"rc": 0, "stdout": fabric}, 1, ["3 packets transmitted, 0 received, 100% packet loss"]) == (
        "routed by enp1s0f1np1 via 10.10.14.2 but the jumbo ping failed: "
        "3 packets transmitted, 0 received, 100% packet loss")
    assert route_check({"rc": 2, "stdout": "", "stderr": "RTNETLINK answers: Network is unreachable"}) == (
        "no route: RTNETLINK answers: Network is unreachable")


def test_a_ring_gate_measures_links_on_the_twins_of_the_ports_they_join():
    plan = FILTERS["fabric_plan"](["a", "b", "c", "d"], "ring")
    assert FILTERS["fabric_link_pairs"](plan) == [["a", "b"], ["b", "c"], ["c", "d"], ["a", "d"]]
    towards = FILTERS["fabric_link_twins"](plan, "a")
    assert sorted(towards) == ["b", "d"]  # not c: no link
    assert [(i["rdma_device"], i["address"]) for i in towards["b"]] == [("rocep1s0f1", "10.10.10.1/24"),
                                                                        ("roceP2p1s0f1", "10.10.11.1/24")]
    assert [(i["rdma_device"], i["address"]) for i in towards["d"]] == [("rocep1s0f0", "10.10.16.2/24"),
                                                                        ("roceP2p1s0f0", "10.10.17.2/24")]
    switch = FILTERS["fabric_plan"](["a", "b", "c"], "switch")
    assert FILTERS["fabric_link_pairs"](switch) == [["a", "b"], ["a", "c"], ["b", "c"]]
