"""The fabric's address plan of each topology (docs/topologies.md) and its checks."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.dgx_spark.cluster.plugins.filter.fabric import FilterModule, fabric_plan, fabric_plan_problems

FILTERS = FilterModule().filters()

PAIR = ["spark-2959", "spark-ba63"]
EIGHT = PAIR + ["spark-%d" % i for i in range(3, 9)]


def addresses(plan):
    return dict((node, [(i["netdev"], i["address"]) for i in interfaces])
                for node, interfaces in plan["interfaces"].items())


def test_direct_is_the_pair_as_cabled_today():
    plan = fabric_plan(PAIR)
    assert addresses(plan) == {
        "spark-2959": [("enp1s0f1np1", "10.10.10.1/24"), ("enP2p1s0f1np1", "10.10.11.1/24")],
        "spark-ba63": [("enp1s0f1np1", "10.10.10.2/24"), ("enP2p1s0f1np1", "10.10.11.2/24")]}
    assert [i["rdma_device"] for i in plan["interfaces"]["spark-2959"]] == ["rocep1s0f1", "roceP2p1s0f1"]
    assert plan["neighbours"] == {"spark-2959": ["spark-ba63"], "spark-ba63": ["spark-2959"]}
    assert fabric_plan_problems(plan, {"spark-2959": 9000, "spark-ba63": 9000}) == []


def test_switch_puts_every_node_on_the_same_two_subnets_in_node_order():
    plan = fabric_plan(EIGHT, "switch")
    assert [plan["interfaces"][n][0]["address"] for n in EIGHT] == ["10.10.10.%d/24" % i for i in range(1, 9)]
    assert [plan["interfaces"][n][1]["address"] for n in EIGHT] == ["10.10.11.%d/24" % i for i in range(1, 9)]
    assert plan["links"] == [{"name": "fabric", "subnets": ["10.10.10.0/24", "10.10.11.0/24"], "ends": EIGHT}]
    assert plan["neighbours"]["spark-5"] == [n for n in EIGHT if n != "spark-5"]
    assert fabric_plan_problems(plan) == []


def test_a_ring_of_three_gives_each_link_its_own_two_subnets_and_uses_both_ports():
    nodes = PAIR + ["spark-3"]
    plan = fabric_plan(nodes, "ring")
    assert [(link["name"], link["ends"], link["subnets"]) for link in plan["links"]] == [
        ("link0", ["spark-2959", "spark-ba63"], ["10.10.10.0/24", "10.10.11.0/24"]),
        ("link1", ["spark-ba63", "spark-3"], ["10.10.12.0/24", "10.10.13.0/24"]),
        ("link2", ["spark-3", "spark-2959"], ["10.10.14.0/24", "10.10.15.0/24"])]
    assert addresses(plan)["spark-2959"] == [
        ("enp1s0f1np1", "10.10.10.1/24"), ("enP2p1s0f1np1", "10.10.11.1/24"),   # port 1 to spark-ba63
        ("enp1s0f0np0", "10.10.14.2/24"), ("enP2p1s0f0np0", "10.10.15.2/24")]   # port 0 from spark-3
    assert all(sorted(neighbours) == sorted(set(nodes) - {node}) for node, neighbours in plan["neighbours"].items())
    # port 1's twins first on every node: what an inventory's fabric_address and fabric_twin_address take
    assert addresses(plan)["spark-3"][:2] == [("enp1s0f1np1", "10.10.14.1/24"), ("enP2p1s0f1np1", "10.10.15.1/24")]
    assert fabric_plan_problems(plan) == []


def test_in_a_ring_of_four_the_opposite_nodes_share_no_link():
    nodes = PAIR + ["spark-3", "spark-4"]
    plan = fabric_plan(nodes, "ring")
    assert plan["neighbours"]["spark-2959"] == ["spark-ba63", "spark-4"]
    assert plan["neighbours"]["spark-3"] == ["spark-ba63", "spark-4"]
    assert len({i["subnet"] for node in nodes for i in plan["interfaces"][node]}) == 8


def deliver(plan, source, address, hops=4):
    """Follow the plan's routing from source to address as a kernel would (connected subnets, then the host routes;
    a node forwards only on the interfaces the plan lets it): the nodes passed through, or None when it is dropped."""
    path = [source]
    node, came_in = source, None
    for unused_hop in range(hops):
        mine = dict((i["address"].split("/")[0], i["netdev"]) for i in plan["interfaces"][node])
        if address in mine:
            return path
        if came_in is not None and came_in not in plan["forwarding"][node]:
            return None
        route = [dict(r, netdev=netdev) for netdev, routes in plan["routes"][node].items() for r in routes
                 if r["to"] == address + "/32"]
        connected = [i for i in plan["interfaces"][node]
                     if ipaddress.IPv4Address(address) in ipaddress.IPv4Network(i["subnet"])]
        if connected:
            gateway, netdev = address, connected[0]["netdev"]
        elif route:
            gateway, netdev = route[0]["via"], route[0]["netdev"]
        else:
            return None
        subnet = [i["subnet"] for i in plan["interfaces"][node] if i["netdev"] == netdev][0]
        assert ipaddress.IPv4Address(gateway) in ipaddress.IPv4Network(subnet), "gateway off its link"
        nxt = [(other, i["netdev"]) for other in plan["interfaces"] for i in plan["interfaces"][other]
               if i["address"].split("/")[0] == gateway]
        if not nxt:
            return None
        node, came_in = nxt[0]
        path.append(node)
    return None


@pytest.mark.parametrize("count", [3, 4])
def test_a_ring_routes_every_address_of_every_node_from_every_other(count):
    nodes = PAIR + ["spark-%d" % i for i in range(3, count + 1)]
    plan = fabric_plan(nodes, "ring")
    for source, target in itertools.permutations(nodes, 2):
        for interface in plan["interfaces"][target]:
            path = deliver(plan, source, interface["address"].split("/")[0])
            assert path is not None and path[-1] == target, (source, interface)
            # a neighbour is reached in one hop on the link both share; a ring of four's opposite node in two
            assert len(path) == (2 if target in plan["neighbours"][source] else 3), path
    if count == 3:
        assert all(not netdevs for netdevs in plan["forwarding"].values())
        assert all(sum(map(len, routes.values())) == 4 for routes in plan["routes"].values())
        # each node pings both others on each twin of the link it shares with them
        assert [(p["local_interface"], p["host"], p["ip"]) for p in plan["peers"]["spark-2959"]] == [
            ("enp1s0f1np1", "spark-ba63", "10.10.10.2"), ("enP2p1s0f1np1", "spark-ba63", "10.10.11.2"),
            ("enp1s0f0np0", "spark-3", "10.10.14.1"), ("enP2p1s0f0np0", "spark-3", "10.10.15.1")]
    else:
        # the same middle node both ways: the head for spark-ba63 <-> spark-4, spark-ba63 for the head <-> spark-3
        assert [node for node in nodes if plan["forwarding"][node]] == ["spark-2959", "spark-ba63"]
        assert deliver(plan, "spark-3", "10.10.10.1")[1] == deliver(plan, "spark-2959", "10.10.12.2")[1]


@pytest.mark.parametrize("topology, count", [("direct", 2), ("switch", 8)])
def test_a_shared_subnet_needs_no_route(topology, count):
    plan = fabric_plan(EIGHT[:count], topology)
    assert all(not routes for routes in plan["routes"].values())
    assert all(not netdevs for netdevs in plan["forwarding"].values())
    assert len(plan["peers"][EIGHT[0]]) == 2 * (count - 1)


@pytest.mark.parametrize("nodes, topology, message", [
    (PAIR + ["spark-3"], "direct", "a direct fabric has 2 to 2 different nodes, got 3"),
    (EIGHT + ["spark-9"], "switch", "a switch fabric has 2 to 8 different nodes, got 9"),
    (PAIR, "ring", "a ring fabric has 3 to 4 different nodes, got 2"),
    (["spark-2959", "spark-2959"], "switch", "different nodes"),
    (PAIR, "mesh", "topology 'mesh' is not one of direct, ring, switch"),
])
def test_what_a_topology_cannot_take_is_refused_naming_the_rule(nodes, topology, message):
    with pytest.raises(AnsibleFilterError, match=message):
        fabric_plan(nodes, topology)


def test_overrides_replace_planned_addresses_and_bad_ones_are_named():
    plan = fabric_plan(PAIR, "direct", "192.168.100.0/24", {"spark-ba63": {"enp1s0f1np1": "192.168.100.20/24"}})
    assert addresses(plan)["spark-ba63"][0] == ("enp1s0f1np1", "192.168.100.20/24")
    assert addresses(plan)["spark-ba63"][1] == ("enP2p1s0f1np1", "192.168.101.2/24")
    assert fabric_plan_problems(plan) == []
    bad = fabric_plan(PAIR, "direct", overrides={
        "spark-ba63": {"enp1s0f1np1": "10.10.10.1/24", "enP2p1s0f1np1": "10.10.10.3/24"}})
    problems = fabric_plan_problems(bad, {"spark-2959": 9000, "spark-ba63": 1500})
    assert problems == [
        "spark-ba63 enp1s0f1np1: 10.10.10.1 is also spark-2959 enp1s0f1np1's",
        "spark-ba63 enP2p1s0f1np1: 10.10.10.3/24 is not a host address of 10.10.11.0/24, the subnet of its fabric "
        "twin 1",
        "spark-ba63 enP2p1s0f1np1: on 10.10.10.0/24, as enp1s0f1np1 is: a node has one interface per subnet",
        "fabric: its nodes have different MTUs (spark-2959 9000, spark-ba63 1500): every node of a link needs the same"]


def _pairs(rounds):
    return [frozenset(pair) for members in rounds for pair in members]


@pytest.mark.parametrize("count", [2, 3, 4, 5, 8])
@pytest.mark.parametrize("head_first", [True, False])
def test_gate_rounds_measure_every_pair_once_and_no_node_twice_in_a_round(count, head_first):
    nodes = ["n%d" % i for i in range(count)]
    rounds = FILTERS["gate_rounds"](nodes, "all", head_first)
    assert sorted(map(sorted, _pairs(rounds))) == sorted(map(sorted, itertools.combinations(nodes, 2)))
    for members in rounds:
        ends = [node for pair in members for node in pair]
        assert len(ends) == len(set(ends))
        assert all(nodes.index(pair[0]) < nodes.index(pair[1]) for pair in members)
    if head_first:  # every node with the head, alone, first
        assert rounds[:count - 1] == [[["n0", node]] for node in nodes[1:]]
        assert all("n0" not in pair for members in rounds[count - 1:] for pair in members)
    else:  # the circle method: count - 1 rounds (count when odd) of count // 2 pairs
        assert len(rounds) == count - 1 + count % 2


def test_gate_rounds_head_and_explicit_pairs():
    nodes = ["a", "b", "c", "d"]
    assert FILTERS["gate_rounds"](nodes, "head") == [[["a", "b"]], [["a", "c"]], [["a", "d"]]]
    assert FILTERS["gate_rounds"](nodes, [["a", "b"], ["b", "c"], ["c", "d"], ["d", "a"]]) == [
        [["a", "b"], ["c", "d"]], [["b", "c"], ["d", "a"]]]


@pytest.mark.parametrize("pairs, message", [
    ([["a", "a"]], "not two different hosts"), ([["a", "z"]], "not two different hosts"),
    ([["a", "b"], ["b", "a"]], "given twice"), ("some", "'all', 'head' or a list")])
def test_gate_rounds_refuse_what_is_not_a_pair_of_the_play(pairs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        FILTERS["gate_rounds"](["a", "b", "c"], pairs)
