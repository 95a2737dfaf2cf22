# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the fabric layout in the inventory: addresses, their networks, each node's peers."""

from __future__ import annotations

import ipaddress
import json

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _lazy

_fabric = _lazy.Module("_fabric")
_topology = _lazy.Module("_topology")


def ipv4_network(address):
    """'10.10.10.1/24' -> '10.10.10.0/24' (None when it is not an IPv4 interface address)."""
    try:
        return str(ipaddress.IPv4Interface(address).network)
    except (ValueError, TypeError):
        return None


def fabric_peers(hosts, hostvars, local_interfaces):
    """Peers' fabric addresses: [{host, twin, ip, local_interface}] for each host and twin (0 primary, 1 second).

    local_interfaces are this node's [primary, second] twin netdevs, the ones to reach each peer address through.
    """
    peers = []
    for host in hosts:
        for twin, key in enumerate(("fabric_address", "fabric_twin_address")):
            address = hostvars[host].get(key)
            if address:
                peers.append({"host": host, "twin": twin, "ip": _fabric.address_ip(address),
                              "local_interface": local_interfaces[twin]})
    return peers


def fabric_inventory_addresses(host_vars, netdevs):
    """A host's fabric_address and fabric_twin_address keyed by port 1's twin netdevs: fabric_plan's overrides."""
    return dict((netdev, host_vars.get(key)) for netdev, key in zip(netdevs, ("fabric_address", "fabric_twin_address"))
                if host_vars.get(key))


def fabric_route_check(results, netdevs):
    """One address's (`ip -j route get` result, ping result) -> {item, route}: route is None when the packet leaves
    by one of netdevs (this node's fabric twins) and the jumbo ping answered, else what went wrong."""
    route_get, ping = results
    problem = None
    if route_get.get("rc") != 0:
        problem = "no route: %s" % (route_get.get("stderr") or "rc %s" % route_get.get("rc")).strip()
    else:
        try:
            route = (json.loads(route_get.get("stdout") or "[]") or [{}])[0]
        except ValueError:
            route = {}
        via = "%s%s" % (route.get("dev"), " via %s" % route["gateway"] if route.get("gateway") else "")
        if route.get("dev") not in netdevs:
            problem = "leaves by %s, not by a fabric twin (%s)" % (via, ", ".join(netdevs))
        elif ping.get("rc") != 0:
            lines = (ping.get("stdout_lines") or [])[-2:] + (ping.get("stderr_lines") or [])
            problem = "routed by %s but the jumbo ping failed: %s" % (via, " / ".join(lines) or "rc %s" % ping.get("rc"))
    return {"item": route_get.get("item"), "route": problem}


def fabric_plan(nodes, topology="direct", first_subnet=None, overrides=None):
    """The address plan of a topology from the node order (module_utils/_topology.py, docs/topologies.md); the first
    link's subnet defaults to _topology.FIRST_SUBNET."""
    try:
        return _topology.plan(list(nodes), topology, first_subnet or _topology.FIRST_SUBNET, overrides)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def fabric_plan_problems(fabric, mtus=None):
    """What makes a fabric_plan unusable, as sentences (empty when none)."""
    return _topology.problems(fabric, mtus)


def fabric_link_twins(fabric, host):
    """{peer: [host's interfaces on the link it shares with peer, twin 0 first]} (module_utils/_topology.py)."""
    return _topology.link_twins(fabric, host)


def fabric_link_pairs(fabric):
    """Each link's two ends once, in node order: the pairs a link gate measures on a ring."""
    return _topology.link_pairs(fabric)


def gate_rounds(nodes, pairs="all", head_first=True):
    """The node pairs a link gate measures, in rounds that run at the same time (module_utils/_topology.py)."""
    try:
        return _topology.gate_rounds(list(nodes), pairs, head_first)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    """dgx_spark.cluster fabric layout filters."""

    def filters(self):
        return {"ipv4_network": ipv4_network, "fabric_peers": fabric_peers, "address_ip": _fabric.later("address_ip"),
                "fabric_plan": fabric_plan, "fabric_plan_problems": fabric_plan_problems,
                "fabric_inventory_addresses": fabric_inventory_addresses, "fabric_route_check": fabric_route_check,
                "fabric_link_twins": fabric_link_twins, "fabric_link_pairs": fabric_link_pairs,
                "gate_rounds": gate_rounds}
