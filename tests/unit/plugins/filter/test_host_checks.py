"""Host check filters: fabric addresses, free space from df, fabric links from ip -j link show."""

from __future__ import annotations

import json
import subprocess

from ansible_collections.dgx_spark.cluster.plugins.filter.host_checks import FilterModule

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


def real(argv):
    """What the real tool prints here (stdout, else its error)."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).strip()


def test_free_space_is_read_from_the_real_df_line_of_each_path_in_order():
    lines = [real(["df", "-P", "-B1", "--", "/"]).splitlines()[-1], real(["df", "-P", "-B1", "--", "/no/such/dir"])]
    checks = FILTERS["disk_checks"](lines, [{"path": "/", "min_free_gib": 0}, {"path": "/no/such/dir", "min_free_gib": 1},
                                            {"path": "/var/lib/docker", "min_free_gib": 1e9}])
    assert checks[0]["ok"] and checks[0]["mount"] == "/" and checks[0]["free_gib"] > 0
    assert not checks[1]["ok"] and checks[1]["message"].startswith("cannot measure free space at /no/such/dir: df:")
    assert not checks[2]["ok"] and checks[2]["message"] == "cannot measure free space at /var/lib/docker: no df output"
    tight = FILTERS["disk_checks"](lines[:1], [{"path": "/", "min_free_gib": 1e9}])[0]
    assert not tight["ok"] and "needs 1e+09 GiB: free space or point the path elsewhere" in tight["message"]


def test_fabric_links_are_judged_from_the_real_ip_json_listing():
    listing = real(["ip", "-j", "link", "show"])
    assert FILTERS["link_problems"](listing, ["lo"]) == []
    assert FILTERS["link_summary"](listing, ["lo"]).startswith("lo UNKNOWN mtu ")
    [missing] = FILTERS["link_problems"](listing, ["no-such-nic0"])
    assert missing.startswith("fabric interface no-such-nic0 does not exist (ip link show lists ") and " lo" in missing
    assert FILTERS["link_summary"](listing, []) == "not checked"


def test_a_fabric_link_down_or_without_carrier_is_named():
    # the flags and operstate iproute2 prints for an interface set down, and for one up without a cable
    listing = json.dumps([{"ifname": "enp1s0f1np1", "flags": ["BROADCAST", "MULTICAST"], "operstate": "DOWN"},
                          {"ifname": "enP2p1s0f1np1", "flags": ["NO-CARRIER", "BROADCAST", "MULTICAST", "UP"],
                           "operstate": "DOWN"}])
    assert FILTERS["link_problems"](listing, ["enp1s0f1np1", "enP2p1s0f1np1"]) == [
        "fabric interface enp1s0f1np1 is administratively down (ip link set dev enp1s0f1np1 up)",
        "fabric interface enP2p1s0f1np1 has no carrier: check the QSFP cable (both boxes, same port) and that the "
        "peer is on"]
