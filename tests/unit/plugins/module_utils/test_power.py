"""Sleep and wake: Wake-on-LAN support read from ethtool's recorded outputs, and the NIC a magic packet reaches."""

from __future__ import annotations

import json

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _power, _tool_output

from ansible_collections.dgx_spark.cluster.tests.unit.recorded import fixture_body


def test_a_nic_that_supports_and_has_magic_packets_armed():
    wol = _tool_output.ethtool_wake_on(fixture_body("power/ethtool-realtek-rtl8126-wake-on-g.txt"))
    assert wol == {"supports": "pumbg", "wake_on": "g", "magic": True, "armed": True}
    classic = _tool_output.ethtool_wake_on(fixture_body("power/ethtool-eth0-wake-on-g-classic.txt"))
    assert classic["magic"] and classic["armed"]


def test_before_and_after_arming_as_recorded():
    before, after = fixture_body("power/ethtool-wol-enable-and-wol-send.txt").split("ethtool -s enp40s0 wol g")
    assert _tool_output.ethtool_wake_on(before) == {"supports": "pumbg", "wake_on": "d", "magic": True,
                                                    "armed": False}
    assert _tool_output.ethtool_wake_on(after)["armed"]


def test_a_nic_without_wake_on_lines_cannot_wake_its_node():
    for block in fixture_body("power/ethtool-no-wake-on-lines.txt").split("$ sudo ethtool")[1:]:
        assert _tool_output.ethtool_wake_on(block) == {"supports": None, "wake_on": None, "magic": False,
                                                       "armed": False}
    assert _tool_output.ethtool_wake_on("\tSupports Wake-on: d\n\tWake-on: d\n")["magic"] is False


IP_JSON = json.dumps([
    {"ifname": "lo", "link_type": "loopback", "address": "00:00:00:00:00:00",
     "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifname": "enP7s7", "link_type": "ether", "address": "4c:bb:47:2e:0a:11",
     "addr_info": [{"family": "inet", "local": "192.168.86.41", "prefixlen": 24, "broadcast": "192.168.86.255"},
                   {"family": "inet6", "local": "fe80::4ebb:47ff:fe2e:a11", "prefixlen": 64}]},
    {"ifname": "enp1s0f1np1", "link_type": "ether", "address": "4c:bb:47:2e:0a:12",
     "addr_info": [{"family": "inet", "local": "10.10.10.1", "prefixlen": 24}]},
    {"ifname": "wg0", "link_type": "none", "addr_info": [{"family": "inet", "local": "10.8.0.2", "prefixlen": 32}]},
])


def test_the_nic_the_ssh_connection_arrives_on():
    found = _power.wol_interface(IP_JSON, "", "192.168.86.10 51234 192.168.86.41 22")
    assert found == {"interface": "enP7s7", "mac": "4c:bb:47:2e:0a:11", "address": "192.168.86.41",
                     "broadcast": "192.168.86.255", "problem": None}


def test_a_named_nic_and_a_broadcast_address_computed_when_ip_does_not_print_one():
    found = _power.wol_interface(json.loads(IP_JSON), "enp1s0f1np1")
    assert (found["mac"], found["broadcast"], found["problem"]) == ("4c:bb:47:2e:0a:12", "10.10.10.255", None)


def test_what_cannot_be_woken_is_said():
    assert "no interface eth9 on this node (it has enP7s7, enp1s0f1np1, wg0)" in _power.wol_interface(
        IP_JSON, "eth9")["problem"]
    assert "a local connection?" in _power.wol_interface(IP_JSON, "", "")["problem"]
    assert "no interface holds 10.0.0.9" in _power.wol_interface(IP_JSON, "", "10.0.0.1 1 10.0.0.9 22")["problem"]
    assert "not an Ethernet NIC" in _power.wol_interface(IP_JSON, "wg0")["problem"]
    assert "set power_wol_interface" in _power.wol_interface("not json", "", "a b c d")["problem"]
