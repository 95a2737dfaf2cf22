"""Preflight filters: free space from df, fabric links from ip -j link show."""

from __future__ import annotations

import json
import subprocess

from ansible_collections.dgx_spark.cluster.plugins.filter.preflight import FilterModule

FILTERS = FilterModule().filters()


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
    nics = sorted(link["ifname"] for link in json.loads(listing) if link["ifname"].startswith(("en", "eth")))
    assert missing.startswith("fabric interface no-such-nic0 does not exist (ip link show lists %s"
                              % (nics[0] if nics else "")), missing
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
