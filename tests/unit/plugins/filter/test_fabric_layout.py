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
