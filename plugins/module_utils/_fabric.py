# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fabric interface logic for fabric_ip: twin detection, address plans, the netplan file. No I/O but sysfs reads."""

from __future__ import annotations

import ipaddress
import json
import os
import re

FABRIC_DRIVER = "mlx5_core"
NETDEV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$")  # IFNAMSIZ 16 incl. NUL, as ip(8) accepts
MANAGED_BY = "dgx_spark.cluster.fabric_ip"


def valid_netdev(name):
    return bool(name) and bool(NETDEV_NAME.match(name)) and name not in (".", "..")


def parse_interface_address(text):
    """'10.10.10.1/24' -> IPv4Interface; raises ValueError with the rule when it is not an IPv4 CIDR host address."""
    if "/" not in (text or ""):
        raise ValueError("must be an IPv4 address with a prefix length, for example 10.10.10.1/24")
    iface = ipaddress.IPv4Interface(text)
    if iface.network.prefixlen < 31 and iface.ip in (iface.network.network_address, iface.network.broadcast_address):
        raise ValueError("%s is the network or broadcast address of %s" % (iface.ip, iface.network))
    return iface


def address_ip(address):
    """'10.10.10.1/24' (an inventory fabric address) -> '10.10.10.1'; an address without a prefix stays as it is."""
    return str(address).split("/", 1)[0]


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def sysfs_netdev(sys_net, name):
    """What sysfs says about one netdev: driver, carrier, operstate, mtu, PCI address (None when absent)."""
    base = os.path.join(sys_net, name)
    driver_link = os.path.join(base, "device", "driver")
    device_link = os.path.join(base, "device")
    carrier = _read(os.path.join(base, "carrier"))
    mtu = _read(os.path.join(base, "mtu"))
    return {
        "name": name,
        "driver": os.path.basename(os.path.realpath(driver_link)) if os.path.islink(driver_link) else None,
        "pci_address": os.path.basename(os.path.realpath(device_link)) if os.path.islink(device_link) else None,
        "carrier": carrier == "1",
        "operstate": _read(os.path.join(base, "operstate")),
        "mtu": int(mtu) if mtu and mtu.isdigit() else None,
    }


def fabric_candidates(sys_net, rdma_links):
    """Netdevs that are ConnectX twins: mlx5_core in sysfs and/or listed by ibdev2netdev. Ordered by PCI address
    (then name), so the first twin is the PCI-domain-0 one (enp1s0f1np1 before enP2p1s0f1np1)."""
    rdma_by_netdev = dict((link["netdev"], link) for link in rdma_links or [])
    names = sorted(os.listdir(sys_net)) if os.path.isdir(sys_net) else []
    candidates = []
    for name in names:
        info = sysfs_netdev(sys_net, name)
        reasons = []
        if info["driver"] == FABRIC_DRIVER:
            reasons.append("driver %s in sysfs" % FABRIC_DRIVER)
        if name in rdma_by_netdev:
            link = rdma_by_netdev[name]
            reasons.append("RDMA device %s port %s in ibdev2netdev (%s)"
                           % (link["rdma_dev"], link["port"], "Up" if link["up"] else "Down"))
        if reasons:
            info["reasons"] = reasons
            info["rdma_dev"] = rdma_by_netdev.get(name, {}).get("rdma_dev")
            candidates.append(info)
    # PCI domain order; netdevs without a PCI device (the lab) keep name order, lowercase "enp" first like domain 0
    candidates.sort(key=lambda c: (c["pci_address"] or "", c["name"].lower(), c["name"]))
    return candidates


def choose_twin(candidates, twin):
    """(chosen candidate or None, why) among candidates with carrier up; twin 0 is the first, 1 the second."""
    up = [c for c in candidates if c["carrier"]]
    if not candidates:
        return None, ("no ConnectX fabric interface found: no netdev with driver %s in sysfs and none listed by "
                      "ibdev2netdev; name the interface with the interface option" % FABRIC_DRIVER)
    if len(up) <= twin:
        return None, ("found fabric interfaces %s but only %d with carrier up (%s); twin %d needs %d: check the "
                      "QSFP cable and that the peer is powered on, or name the interface"
                      % (", ".join(c["name"] for c in candidates), len(up),
                         ", ".join(c["name"] for c in up) or "none", twin, twin + 1))
    chosen = up[twin]
    return chosen, "twin %d of the fabric interfaces with carrier up (%s): %s" % (
        twin, ", ".join(c["name"] for c in up), "; ".join(chosen["reasons"]))


def ip_addresses(ip_json_text):
    """`ip -j -4 addr show dev X` -> ['a.b.c.d/len', ...] of its IPv4 addresses."""
    data = json.loads(ip_json_text or "[]")
    found = []
    for link in data:
        for info in link.get("addr_info", []):
            if info.get("family") == "inet":
                found.append("%s/%s" % (info["local"], info["prefixlen"]))
    return found


def ip_link(ip_json_text):
    """`ip -j link show dev X` -> {mtu, up (admin), operstate}."""
    data = json.loads(ip_json_text or "[]")
    if not data:
        return None
    link = data[0]
    return {"mtu": link.get("mtu"), "admin_up": "UP" in link.get("flags", []), "operstate": link.get("operstate")}


def address_plan(current, wanted, owned, state, purge):
    """Which addresses to add and delete on the interface.

    current: addresses on the interface now; wanted: the one this task asks for; owned: those this module's
    persistent file says it added earlier. Addresses it did not add are left alone unless purge is set.
    """
    current_set = set(current)
    if state == "absent":
        remove = [a for a in current if a in set(owned) | ({wanted} if wanted else set())]
        return [], remove
    add = [wanted] if wanted not in current_set else []
    stale_own = [a for a in current if a in set(owned) and a != wanted]
    others = [a for a in current if a != wanted and a not in set(owned)]
    remove = stale_own + (others if purge else [])
    return add, remove


def render_netplan(interface, addresses, mtu, routes=()):
    """The module's own netplan file for one fabric interface (static, no DHCP, no link-local), with its host routes
    ([{to, via}]) when any."""
    lines = [
        "# Managed by %s: fabric interface %s. Edits are overwritten; set the address with the module." % (
            MANAGED_BY, interface),
        "network:",
        "  version: 2",
        "  ethernets:",
        "    %s:" % interface,
        "      dhcp4: false",
        "      dhcp6: false",
        "      link-local: []",
        "      addresses:",
    ]
    lines += ["        - %s" % address for address in addresses]
    lines.append("      mtu: %d" % mtu)
    if routes:
        lines.append("      routes:")
        for route in routes:
            lines += ["        - to: %s" % route["to"], "          via: %s" % route["via"]]
    return "\n".join(lines) + "\n"


_NETPLAN_ADDRESS = re.compile(r"^\s+-\s+(\d+\.\d+\.\d+\.\d+/\d+)\s*$")


def owned_addresses(netplan_text):
    """Addresses listed in a file this module wrote (an unrelated file gives none: it is not ours)."""
    if not netplan_text or MANAGED_BY not in netplan_text.splitlines()[0]:
        return []
    return [m.group(1) for m in (_NETPLAN_ADDRESS.match(line) for line in netplan_text.splitlines()) if m]


_NETPLAN_ROUTE = re.compile(r"^\s+-\s+to:\s+(\S+)\s*\n\s+via:\s+(\S+)\s*$", re.M)


def owned_routes(netplan_text):
    """Host routes ([{to, via}]) listed in a file this module wrote."""
    if not netplan_text or MANAGED_BY not in netplan_text.splitlines()[0]:
        return []
    return [{"to": to, "via": via} for to, via in _NETPLAN_ROUTE.findall(netplan_text)]


def parse_route(route):
    """{to, via} -> the same with to as a network (a bare address is /32); raises ValueError naming the rule."""
    if not isinstance(route, dict) or set(route) != set(["to", "via"]):
        raise ValueError("a route is {to: address/prefix, via: address}, got %r" % (route,))
    to = ipaddress.IPv4Network(route["to"], strict=True)
    return {"to": str(to), "via": str(ipaddress.IPv4Address(route["via"]))}


def ip_routes(ip_json_text):
    """`ip -j -4 route show dev X` -> [{to, via}] of its routes through a gateway (a host route's dst has no /32)."""
    found = []
    for route in json.loads(ip_json_text or "[]"):
        if route.get("gateway") and route.get("dst") not in (None, "default"):
            found.append({"to": str(ipaddress.IPv4Network(route["dst"])), "via": route["gateway"]})
    return found


def route_plan(current, wanted, owned, state):
    """Which routes ([{to, via}]) to add and delete: wanted ones missing; this module's earlier ones (owned) no longer
    wanted, or all of them with state absent. Routes it did not add are left alone."""
    if state == "absent":
        return [], [r for r in current if r in owned or r in wanted]
    return [r for r in wanted if r not in current], [r for r in current if r in owned and r not in wanted]


def nm_device_managed(nmcli_terse_text, interface):
    """From `nmcli -t -f DEVICE,STATE device`: is the interface managed by NetworkManager?"""
    for line in (nmcli_terse_text or "").splitlines():
        device, _sep, state = line.rpartition(":")
        if device.replace("\\:", ":") == interface:
            return state not in ("unmanaged", "unavailable")
    return False


def nm_connection_argv(nmcli, action, name, interface, addresses, mtu, routes=()):
    """nmcli argv to add or modify the module's connection profile for the interface."""
    settings = ["ipv4.method", "manual", "ipv4.addresses", ",".join(addresses),
                "ipv4.routes", ",".join("%s %s" % (r["to"], r["via"]) for r in routes), "ipv6.method", "disabled",
                "802-3-ethernet.mtu", str(mtu), "connection.autoconnect", "yes"]
    if action == "add":
        return [nmcli, "connection", "add", "type", "ethernet", "ifname", interface, "con-name", name] + settings
    return [nmcli, "connection", "modify", name] + settings


_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+(?:/\d+)?")


def nm_routes(value):
    """An ipv4.routes value -> [{to, via}]: each destination (with a prefix) and the gateway after it, whether
    nmcli prints "10.0.0.1/32 10.0.1.2" or "{ ip = 10.0.0.1/32, nh = 10.0.1.2 }"."""
    routes = []
    for token in _IPV4.findall(value or ""):
        if "/" in token:
            routes.append({"to": str(ipaddress.IPv4Network(token)), "via": None})
        elif routes and routes[-1]["via"] is None:
            routes[-1]["via"] = token
    return [r for r in routes if r["via"]]


def nm_profile(nmcli_terse_text):
    """`nmcli -t -f ipv4.addresses,ipv4.routes,802-3-ethernet.mtu connection show NAME` -> {addresses, mtu}, and
    routes when the profile has any."""
    values = {}
    for line in (nmcli_terse_text or "").splitlines():
        key, _sep, value = line.partition(":")
        values[key] = value
    addresses = [a.strip() for a in values.get("ipv4.addresses", "").split(",") if a.strip()]
    mtu = values.get("802-3-ethernet.mtu", "")
    profile = {"addresses": addresses, "mtu": int(mtu) if mtu.isdigit() else None}
    routes = nm_routes(values.get("ipv4.routes"))
    if routes:
        profile["routes"] = routes
    return profile
