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
    address, subnet}] (port 1's twins first)}, neighbours: {host: [hosts it shares a link with]}, peers, routes,
    forwarding (see _link_peers and _routes)}. Raises ValueError naming what is wrong
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
    for node in nodes:  # port 1's twins first: the inventory's fabric_address and fabric_twin_address
        interfaces[node].sort(key=lambda interface: (-interface["port"], interface["twin"]))
    neighbours = dict((node, sorted(set(other for link in links if node in link["ends"] for other in link["ends"])
                                    - set([node]), key=list(nodes).index)) for node in nodes)
    routes, forwarding = _routes(list(nodes), interfaces, neighbours)
    return {"topology": topology, "links": links, "interfaces": interfaces, "neighbours": neighbours,
            "peers": _link_peers(interfaces), "routes": routes, "forwarding": forwarding}


def _link_peers(interfaces):
    """{host: [{host, twin, ip, local_interface}]}: the other ends of each of its links, twin by twin."""
    return dict((node, [{"host": other, "twin": mine["twin"], "ip": theirs["address"].split("/")[0],
                         "local_interface": mine["netdev"]}
                        for mine in interfaces[node] for other in interfaces if other != node
                        for theirs in interfaces[other] if (theirs["link"], theirs["twin"]) == (mine["link"], mine["twin"])])
                for node in interfaces)


def _on_link(interfaces, node, link, twin):
    return [i for i in interfaces[node] if i["link"] == link and i["twin"] == twin][0]


def _routes(nodes, interfaces, neighbours):
    """Host routes that make every address of every node reachable from every other over the fabric.

    A neighbour's addresses on links this node is not on go over the link the two share, to the neighbour's address
    of the same twin there (the neighbour owns them: no forwarding). A node that shares no link (a ring of four's
    opposite node) goes through the first node in the ring that neighbours both, the same one both ways, which
    forwards on its interfaces of those links. Returns ({host: {netdev: [{to, via}]}}, {host: [netdevs forwarding]}).
    """
    routes = dict((node, {}) for node in nodes)
    forwarding = dict((node, set()) for node in nodes)
    for node in nodes:
        my_links = set(i["link"] for i in interfaces[node])
        for other in nodes:
            if other == node:
                continue
            middle = other if other in neighbours[node] else [n for n in neighbours[node] if n in neighbours[other]][0]
            link = [i["link"] for i in interfaces[middle] if i["link"] in my_links][0]
            for target in interfaces[other]:
                if target["link"] in my_links:
                    continue
                local = _on_link(interfaces, node, link, target["twin"])
                routes[node].setdefault(local["netdev"], []).append({
                    "to": target["address"].split("/")[0] + "/32",
                    "via": _on_link(interfaces, middle, link, target["twin"])["address"].split("/")[0]})
            if middle != other:
                forwarding[middle].update(i["netdev"] for i in interfaces[middle])
    return routes, dict((node, sorted(netdevs)) for node, netdevs in forwarding.items())


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


def link_twins(fabric, host):
    """{peer: [this host's interfaces on the link it shares with peer, twin 0 first]} for each neighbour: what a
    link gate measures between the two (a ring's links are on either port)."""
    mine = fabric["interfaces"][host]
    return dict((peer, sorted([i for i in mine if i["link"] in set(t["link"] for t in fabric["interfaces"][peer])],
                              key=lambda interface: interface["twin"]))
                for peer in fabric["neighbours"][host])


def link_pairs(fabric):
    """Each link's two ends once ([earlier, later] in the node order), for a gate that measures every link: the
    pairs of a ring (a ring of four's opposite nodes share none); every pair of a shared subnet."""
    order = list(fabric["interfaces"])
    pairs = []
    for link in fabric["links"]:
        ends = sorted(link["ends"], key=order.index)
        pairs += [[a, b] for i, a in enumerate(ends) for b in ends[i + 1:] if [a, b] not in pairs]
    return pairs


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
