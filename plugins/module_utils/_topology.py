# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fabric's address plan for each topology, from the node order (head first). docs/topologies.md shows it.

Each ConnectX-7 QSFP port of a Spark is two PCIe twins; each twin of a link gets its own subnet (twins on one subnet
break RoCE routing), the same twin of both ends on the same one.
  direct  two nodes, port 1 cabled between them: twin 0 on the first subnet, twin 1 on the next; node i is .i+1.
  switch  2..8 nodes, every node's port 1 to one switch: the same two subnets for every node; node i is .i+1.
  ring    3 or 4 nodes, node i's port 1 cabled to node i+1's port 0 (the last node's to the first's): link i has
          its own two subnets (the first + 2i and + 2i+1); its port-1 end is .1, its port-0 end .2.
"""

from __future__ import annotations

import ipaddress

# QSFP port -> its twins (netdev, RDMA device), PCI domain 0 first, as DGX OS names them
PORT_TWINS = {
    1: (("enp1s0f1np1", "rocep1s0f1"), ("enP2p1s0f1np1", "roceP2p1s0f1")),
    0: (("enp1s0f0np0", "rocep1s0f0"), ("enP2p1s0f0np0", "roceP2p1s0f0")),
}
NODE_COUNTS = {"direct": (2, 2), "switch": (2, 8), "ring": (3, 4)}
FIRST_SUBNET = "10.10.10.0/24"


def _subnet(first, index):
    network = ipaddress.IPv4Network(first)
    return ipaddress.IPv4Network((int(network.network_address) + index * network.num_addresses, network.prefixlen))


def _links(nodes, topology):
    """[(link name, [(node, port, host number)], first subnet index)] for the topology."""
    if topology == "ring":
        count = len(nodes)
        return [("link%d" % i, [(nodes[i], 1, 1), (nodes[(i + 1) % count], 0, 2)], 2 * i) for i in range(count)]
    return [("fabric", [(node, 1, i + 1) for i, node in enumerate(nodes)], 0)]


def plan(nodes, topology="direct", first_subnet=FIRST_SUBNET, overrides=None):
    """Every node's fabric interfaces and links.

    nodes: host names in order (head first). overrides: {host: {netdev: "ip/prefix"}} replacing planned addresses.
    Returns {topology, links: [{name, subnets, ends}], interfaces: {host: [{netdev, rdma_device, port, twin, link,
    address, subnet}]}, neighbours: {host: [hosts it shares a link with]}}. Raises ValueError naming what is wrong
    with the topology, the node count or the first subnet.
    """
    if topology not in NODE_COUNTS:
        raise ValueError("topology %r is not one of %s" % (topology, ", ".join(sorted(NODE_COUNTS))))
    low, high = NODE_COUNTS[topology]
    if not low <= len(nodes) <= high or len(set(nodes)) != len(nodes):
        raise ValueError("a %s fabric has %d to %d different nodes, got %d: %s"
                         % (topology, low, high, len(nodes), ", ".join(nodes)))
    try:
        ipaddress.IPv4Network(first_subnet)
    except ValueError as exc:
        raise ValueError("the first fabric subnet %r is not an IPv4 network: %s" % (first_subnet, exc))
    overrides = overrides or {}
    interfaces = dict((node, []) for node in nodes)
    links = []
    for name, ends, first_index in _links(list(nodes), topology):
        subnets = [_subnet(first_subnet, first_index + twin) for twin in (0, 1)]
        links.append({"name": name, "subnets": [str(s) for s in subnets], "ends": [end[0] for end in ends]})
        for node, port, number in ends:
            for twin, (netdev, rdma_device) in enumerate(PORT_TWINS[port]):
                planned = "%s/%d" % (subnets[twin].network_address + number, subnets[twin].prefixlen)
                address = overrides.get(node, {}).get(netdev) or planned
                interfaces[node].append({"netdev": netdev, "rdma_device": rdma_device, "port": port, "twin": twin,
                                         "link": name, "address": address, "subnet": str(subnets[twin])})
    neighbours = dict((node, sorted(set(other for link in links if node in link["ends"] for other in link["ends"])
                                    - set([node]), key=list(nodes).index)) for node in nodes)
    return {"topology": topology, "links": links, "interfaces": interfaces, "neighbours": neighbours}


def problems(fabric, mtus=None):
    """What makes a plan unusable, as sentences (empty when none): an address that is not a host of its link's
    subnet, the same address twice, two interfaces of one node on one subnet, nodes of one link with different MTUs.
    mtus: {host: mtu}."""
    found = []
    seen = {}
    for node, interfaces in fabric["interfaces"].items():
        subnets = {}
        for interface in interfaces:
            where = "%s %s" % (node, interface["netdev"])
            try:
                address = ipaddress.IPv4Interface(interface["address"])
            except ValueError:
                found.append("%s: %r is not an IPv4 address/prefix" % (where, interface["address"]))
                continue
            if str(address.network) != interface["subnet"] or address.ip in (
                    address.network.network_address, address.network.broadcast_address):
                found.append("%s: %s is not a host address of %s, the subnet of its %s twin %d"
                             % (where, address, interface["subnet"], interface["link"], interface["twin"]))
            if str(address.ip) in seen:
                found.append("%s: %s is also %s's" % (where, address.ip, seen[str(address.ip)]))
            seen.setdefault(str(address.ip), where)
            if str(address.network) in subnets:
                found.append("%s: on %s, as %s is: a node has one interface per subnet"
                             % (where, address.network, subnets[str(address.network)]))
            subnets.setdefault(str(address.network), interface["netdev"])
    for link in fabric["links"]:
        values = sorted(set((mtus or {}).get(node) for node in link["ends"] if (mtus or {}).get(node) is not None))
        if len(values) > 1:
            found.append("%s: its nodes have different MTUs (%s): %s" % (
                link["name"], ", ".join("%s %s" % (node, (mtus or {}).get(node)) for node in link["ends"]),
                "every node of a link needs the same"))
    return found


def _disjoint_rounds(pairs):
    """Pairs in order, packed into rounds in which no node is in two pairs (the first round that has room)."""
    rounds = []
    for pair in pairs:
        for members in rounds:
            if not set(pair) & set(node for other in members for node in other):
                members.append(pair)
                break
        else:
            rounds.append([pair])
    return rounds


def _round_robin(nodes):
    """Every pair of nodes once, in len(nodes)-1 rounds (len(nodes) when odd) of disjoint pairs: the circle method."""
    order = list(nodes) + ([None] if len(nodes) % 2 else [])
    rounds = []
    for unused_round in range(len(order) - 1):
        members = [(order[i], order[-1 - i]) for i in range(len(order) // 2)]
        rounds.append([tuple(sorted(pair, key=list(nodes).index)) for pair in members if None not in pair])
        order = [order[0], order[-1]] + order[1:-1]
    return [members for members in rounds if members]


def gate_rounds(nodes, pairs="all", head_first=True):
    """The node pairs a link gate measures, in rounds of pairs that run at the same time (no node in two).

    nodes: host names in order (head first). pairs: "all" (every pair), "head" (every node with the head), or an
    explicit list of [client, server]. head_first: with "all", every node with the head first, one at a time (the
    head's figures are not shared with another run), then the other pairs in parallel rounds; else every pair in
    parallel rounds. Each pair is [earlier node, later node] for the keywords. Raises ValueError naming the problem.
    """
    nodes = list(nodes)
    if len(nodes) < 2 or len(set(nodes)) != len(nodes):
        raise ValueError("a link gate needs two or more different nodes, got: %s" % ", ".join(nodes))
    if pairs in ("all", "head"):
        head_pairs = [[[nodes[0], node]] for node in nodes[1:]]
        if pairs == "head":
            return head_pairs
        if not head_first:
            return [[list(pair) for pair in members] for members in _round_robin(nodes)]
        return head_pairs + [[list(pair) for pair in members] for members in _round_robin(nodes[1:])]
    if not isinstance(pairs, (list, tuple)) or not pairs:
        raise ValueError("pairs is 'all', 'head' or a list of [client, server] host pairs, got %r" % (pairs,))
    seen = set()
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or pair[0] == pair[1] or not set(pair) <= set(nodes):
            raise ValueError("pair %r is not two different hosts of the play (%s)" % (pair, ", ".join(nodes)))
        if frozenset(pair) in seen:
            raise ValueError("pair %r is given twice" % (pair,))
        seen.add(frozenset(pair))
    return [[list(pair) for pair in members] for members in _disjoint_rounds([tuple(pair) for pair in pairs])]
