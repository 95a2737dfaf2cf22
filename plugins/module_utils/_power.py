# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sleep and wake: which NIC a magic packet reaches, from what `ip -json address show` prints on the node."""

from __future__ import annotations

import ipaddress
import json


def _links(ip_json):
    if isinstance(ip_json, str):
        try:
            ip_json = json.loads(ip_json or "[]")
        except ValueError:
            return []
    return [link for link in ip_json or [] if isinstance(link, dict) and link.get("ifname")]


def _ipv4(link):
    return next((info for info in link.get("addr_info") or [] if info.get("family") == "inet"), None)


def wol_interface(ip_json, interface="", ssh_connection=""):
    """The NIC to wake a node by: the one named, else the one holding the address its SSH connection arrives on
    (the third field of $SSH_CONNECTION). -> {interface, mac, address, broadcast, problem}: problem is None, or
    says why no NIC can be used (unknown name, a local connection, not Ethernet, no IPv4 broadcast)."""
    links = _links(ip_json)
    found = {"interface": interface or None, "mac": None, "address": None, "broadcast": None, "problem": None}
    if interface:
        link = next((link for link in links if link["ifname"] == interface), None)
        if link is None:
            found["problem"] = "there is no interface %s on this node (it has %s)" % (
                interface, ", ".join(link["ifname"] for link in links if link["ifname"] != "lo") or "none")
            return found
    else:
        parts = (ssh_connection or "").split()
        local = parts[2].split("%")[0] if len(parts) >= 4 else ""
        link = next((link for link in links if any((info.get("local") or "").split("%")[0] == local
                                                   for info in link.get("addr_info") or [])), None) if local else None
        if link is None:
            found["problem"] = ("the NIC this node is reached on is unknown (%s): set power_wol_interface" % (
                "no SSH connection: a local connection?" if not local else "no interface holds " + local))
            return found
    found["interface"], found["mac"] = link["ifname"], link.get("address")
    if link.get("link_type") not in (None, "ether"):
        found["problem"] = "%s is not an Ethernet NIC (%s): a magic packet cannot reach it" % (
            link["ifname"], link.get("link_type"))
        return found
    ipv4 = _ipv4(link)
    if ipv4 is None:
        found["problem"] = "%s has no IPv4 address: the magic packet's broadcast address is unknown; set " \
                           "power_wol_broadcast" % link["ifname"]
        return found
    found["address"] = ipv4.get("local")
    network = ipaddress.ip_interface("%s/%s" % (ipv4.get("local"), ipv4.get("prefixlen", 32))).network
    found["broadcast"] = ipv4.get("broadcast") or str(network.broadcast_address)
    return found
