"""fabric_ip on a real twin interface of a lab node: check mode, real change, idempotence, detection, ownership."""

from __future__ import annotations

import json

import pytest
from labkit import lab, module, ssh

NODE, TWIN, ADDRESS = "spark-ba63", "enP2p1s0f1np1", "10.10.11.2/24"
NETPLAN = "/etc/netplan/40-dgx-spark-%s.yaml" % TWIN


def twin_state():
    link = json.loads(ssh(NODE, "ip -j address show dev %s" % TWIN).stdout)[0]
    addresses = ["%s/%s" % (a["local"], a["prefixlen"]) for a in link["addr_info"] if a["family"] == "inet"]
    netplan = ssh(NODE, "sudo stat -c %%a %s" % NETPLAN, check=False)
    return addresses, link["mtu"], netplan.stdout.strip() if netplan.returncode == 0 else None


@pytest.fixture(scope="module", autouse=True)
def stripped_twin():
    lab("up")
    ssh(NODE, "sudo ip address flush dev %s && sudo ip link set dev %s mtu 1500 && sudo rm -f %s"
        % (TWIN, TWIN, NETPLAN))
    yield
    # leave the twin as the lab had it, whatever a failed test left
    ssh(NODE, "sudo ip address flush dev %s; sudo ip address add %s dev %s; sudo ip link set dev %s mtu 9000; "
              "sudo rm -f %s" % (TWIN, ADDRESS, TWIN, TWIN, NETPLAN))


def test_check_mode_reports_the_change_and_changes_nothing():
    rc, result = module(NODE, "fabric_ip", {"interface": TWIN, "address": ADDRESS}, "--become", "--check", "--diff")
    assert rc == 0 and result["changed"] is True, result
    assert result["added"] == [ADDRESS] and result["mtu_before"] == 1500 and result["mtu"] == 9000
    assert "10.10.11.2/24" in result["diff"]["after"] and result["diff"]["before"] == ""
    assert twin_state() == ([], 1500, None)


def test_real_change_then_no_change():
    rc, result = module(NODE, "fabric_ip", {"interface": TWIN, "address": ADDRESS}, "--become")
    assert rc == 0 and result["changed"] is True and result["persist"] == "netplan", result
    assert twin_state() == ([ADDRESS], 9000, "600")
    # netplan itself accepts the file
    assert ssh(NODE, "sudo netplan generate", check=False).returncode == 0
    # the peer answers over the re-addressed twin with jumbo frames
    ssh(NODE, "ping -M do -s 8972 -c 2 -W 2 -I %s 10.10.11.1" % TWIN)
    rc, again = module(NODE, "fabric_ip", {"interface": TWIN, "address": ADDRESS}, "--become")
    assert rc == 0 and again["changed"] is False and again["commands"] == []


def test_detection_picks_the_second_twin_with_its_reason():
    rc, result = module(NODE, "fabric_ip", {"twin": 1, "address": ADDRESS}, "--become")
    assert rc == 0 and result["changed"] is False, result
    assert result["interface"] == TWIN and result["detected"] is True
    assert "roceP2p1s0f1 port 1 in ibdev2netdev (Up)" in result["detection"]["reason"]


def test_absent_removes_only_its_own_address():
    ssh(NODE, "sudo ip address add 192.168.77.5/24 dev %s" % TWIN)
    rc, result = module(NODE, "fabric_ip", {"interface": TWIN, "state": "absent"}, "--become")
    assert rc == 0 and result["removed"] == [ADDRESS], result
    addresses, mtu, netplan = twin_state()
    assert addresses == ["192.168.77.5/24"] and netplan is None and mtu == 9000


def test_an_address_on_the_other_twins_subnet_is_warned_about():
    rc, result = module(NODE, "fabric_ip", {"interface": TWIN, "address": "10.10.10.77/24"}, "--become", "--check")
    assert rc == 0
    assert any("enp1s0f1np1 also has 10.10.10.2/24" in w for w in result.get("warnings", [])), result


def test_bad_address_fails_before_touching_the_node():
    rc, result = module(NODE, "fabric_ip", {"interface": TWIN, "address": "10.10.11.2"}, "--become")
    assert rc != 0 and result["failed"] is True and "prefix length" in result["msg"]
    assert "10.10.11.2/24" not in twin_state()[0]


def routes_on_twin():
    return ssh(NODE, "ip -4 route show dev %s" % TWIN).stdout


def test_routes_are_set_persisted_moved_and_removed_leaving_others_alone():
    ours = {"interface": TWIN, "address": ADDRESS, "routes": [{"to": "10.10.99.1/32", "via": "10.10.11.1"}]}
    rc, result = module(NODE, "fabric_ip", ours, "--become", "--check", "--diff")
    assert rc == 0 and result["changed"] and result["routes_added"] == ours["routes"], result
    assert "to: 10.10.99.1/32" in result["diff"]["after"] and "10.10.99.1" not in routes_on_twin()
    rc, result = module(NODE, "fabric_ip", ours, "--become")
    assert rc == 0 and "10.10.99.1 via 10.10.11.1" in routes_on_twin(), result
    persisted = ssh(NODE, "sudo cat %s" % NETPLAN).stdout
    assert "- to: 10.10.99.1/32\n          via: 10.10.11.1" in persisted
    assert ssh(NODE, "sudo netplan generate", check=False).returncode == 0
    rc, again = module(NODE, "fabric_ip", ours, "--become")
    assert rc == 0 and again["changed"] is False and again["commands"] == []
    # through another neighbour: the old route goes, the new one comes; a route someone else set stays
    ssh(NODE, "sudo ip route add 10.10.98.0/24 via 10.10.11.1 dev %s" % TWIN)
    moved = dict(ours, routes=[{"to": "10.10.99.1/32", "via": "10.10.11.254"}])
    rc, result = module(NODE, "fabric_ip", moved, "--become")
    assert rc == 0 and result["routes_removed"] == ours["routes"] and result["routes_added"] == moved["routes"]
    assert "10.10.99.1 via 10.10.11.254" in routes_on_twin() and "10.10.99.1 via 10.10.11.1 " not in routes_on_twin()
    rc, result = module(NODE, "fabric_ip", dict(ours, routes=[]), "--become")
    assert rc == 0 and result["routes_removed"] == moved["routes"], result
    assert "10.10.99.1" not in routes_on_twin() and "10.10.98.0/24 via 10.10.11.1" in routes_on_twin()
    assert "routes:" not in ssh(NODE, "sudo cat %s" % NETPLAN).stdout
    ssh(NODE, "sudo ip route del 10.10.98.0/24 via 10.10.11.1 dev %s" % TWIN)
