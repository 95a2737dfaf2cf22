# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdicts for the RoCE and NCCL gates: value, threshold, pass/fail and the likely cause, from parsed tool output."""

from __future__ import annotations

import json

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _tool_output as parse
from ansible_collections.dgx_spark.cluster.plugins.module_utils._fabric import address_ip


def _check(node, twin, name, value, threshold, ok, cause=""):
    """One gate check; twin is None for checks that are not per twin."""
    return {"node": node, "twin": twin, "check": name, "value": value, "threshold": threshold,
            "verdict": "pass" if ok else "fail", "cause": "" if ok else cause}


check = _check  # the other gates (Kubernetes) build their checks with it


def roce_node_checks(node, settings):
    """Per-twin checks on one node.

    node: {host, twins: [{netdev, rdma_device, address}] (as fabric_plan names a node's interfaces), ibdev2netdev,
    ibv_devinfo: {dev: text}, show_gids, ethtool: {netdev: text}, links: {netdev: `ip -j link show` text}}.
    settings: {gid_index, expected_speed_mbps, expected_mtu, min_active_mtu}.
    """
    host = node["host"]
    links = parse.ibdev2netdev(node.get("ibdev2netdev", ""))
    by_netdev = dict((link["netdev"], link) for link in links)
    gids = parse.show_gids(node.get("show_gids", ""))
    checks = []
    for index, twin in enumerate(node["twins"]):
        netdev, rdma_dev, address = twin["netdev"], twin["rdma_device"], address_ip(twin["address"])
        link = by_netdev.get(netdev)
        others_up = [l["netdev"] for l in links if l["up"] and l["netdev"] not in [t["netdev"] for t in node["twins"]]]
        if link is None:
            cause = ("ibdev2netdev does not list %s: the mlx5 driver is not loaded or the interface name is wrong"
                     % netdev)
        elif link["rdma_dev"] != rdma_dev:
            cause = "ibdev2netdev maps %s to %s, not %s: fix fabric_rdma_devices" % (netdev, link["rdma_dev"], rdma_dev)
        elif others_up:
            cause = ("%s is down while %s is up: the cable is in the other QSFP port; move it or set "
                     "fabric_interface/fabric_twin_interface to the cabled twins" % (netdev, ", ".join(others_up)))
        else:
            cause = "%s is down: check the QSFP cable and that the peer is on" % netdev
        mapped_ok = link is not None and link["rdma_dev"] == rdma_dev and link["up"]
        checks.append(_check(host, index, "rdma_map", "%s -> %s (%s)" % (
            rdma_dev, netdev, "Up" if link and link["up"] else "missing" if link is None else "Down"),
            "%s -> %s (Up)" % (rdma_dev, netdev), mapped_ok, cause))

        port = parse.ibv_devinfo(node.get("ibv_devinfo", {}).get(rdma_dev, "")).get(rdma_dev, {}).get(
            "ports", {}).get(1, {})
        checks.append(_check(host, index, "port_state", port.get("state"), "PORT_ACTIVE",
                             port.get("state") == "PORT_ACTIVE",
                             "RDMA port %s/1 is %s: the link is down or the driver failed" % (rdma_dev, port.get("state"))))
        active_mtu = port.get("active_mtu")
        checks.append(_check(host, index, "active_mtu", active_mtu, settings["min_active_mtu"],
                             active_mtu is not None and active_mtu >= settings["min_active_mtu"],
                             "RoCE active MTU %s on %s: the netdev MTU is too small; set MTU %s on both nodes "
                             "(playbooks/fabric.yml)" % (active_mtu, rdma_dev, settings["expected_mtu"])))

        v2 = [g for g in gids if g["rdma_dev"] == rdma_dev and g["version"] == "v2" and g["ipv4"] == address]
        at_index = [g for g in v2 if g["index"] == settings["gid_index"]]
        if at_index:
            cause = ""
        elif v2:
            cause = ("the RoCE v2 GID of %s is at index %d, not %d: set roce_check_gid_index and NCCL_IB_GID_INDEX "
                     "to %d" % (address, v2[0]["index"], settings["gid_index"], v2[0]["index"]))
        else:
            cause = ("no RoCE v2 GID for %s on %s: the address is not on %s (run playbooks/fabric.yml)"
                     % (address, rdma_dev, netdev))
        checks.append(_check(host, index, "roce_v2_gid", v2[0]["index"] if v2 else None, settings["gid_index"],
                             bool(at_index), cause))

        speed = parse.ethtool_speed_mbps(node.get("ethtool", {}).get(netdev, ""))
        if speed is None:
            cause = "ethtool reports no speed for %s: the link is down" % netdev
        elif speed < settings["expected_speed_mbps"]:
            cause = ("link at %dG on %s: a switch or cable negotiated down; force %dG on the switch port or use a "
                     "200G QSFP112 cable" % (speed // 1000, netdev, settings["expected_speed_mbps"] // 1000))
        else:
            cause = ""
        checks.append(_check(host, index, "link_speed_mbps", speed, settings["expected_speed_mbps"],
                             speed is not None and speed >= settings["expected_speed_mbps"], cause))

        try:
            link_mtu = json.loads(node.get("links", {}).get(netdev) or "[]")[0].get("mtu")
        except (ValueError, IndexError, AttributeError):
            link_mtu = None
        checks.append(_check(host, index, "link_mtu", link_mtu, settings["expected_mtu"],
                             link_mtu == settings["expected_mtu"],
                             "MTU %s on %s: set %s on both nodes (playbooks/fabric.yml)"
                             % (link_mtu, netdev, settings["expected_mtu"])))
    return checks


def link_name(hosts):
    """How a report names the nodes a measurement ran between: 'a <-> b' (every node of an N-node run in order)."""
    return " <-> ".join(hosts) if hosts else "between nodes"


def _run_ends(run):
    """The nodes a perftest run was between (client, server), as given."""
    return [host for host in (run.get("client"), run.get("server")) if host]


def roce_bandwidth_checks(runs, settings, node_checks=()):
    """Checks from ib_write_bw client runs: [{client, server, twins: [0] | [1] | [0, 1], clients: [text, ...],
    rc: [...]}]; each names its pair of nodes, and a failure's cause names the pair's slow link or small MTU."""
    checks = []
    for run in runs:
        ends = _run_ends(run)
        ours = [c for c in node_checks if not ends or c["node"] in ends]
        slow_links = [c for c in ours if c["check"] == "link_speed_mbps" and c["verdict"] == "fail"]
        small_mtu = [c for c in ours if c["check"] in ("link_mtu", "active_mtu") and c["verdict"] == "fail"]
        results = [parse.ib_write_bw_results(text) for text in run["clients"]]
        total = round(sum(r["bw_avg_gbps"] or 0.0 for r in results), 2) if all(r["ok"] for r in results) else None
        both = len(run["twins"]) > 1
        threshold = settings["min_both_gbps"] if both else settings["min_twin_gbps"]
        name = "ib_write_bw_both_gbps" if both else "ib_write_bw_gbps"
        twin = "both" if both else run["twins"][0]
        if total is None:
            failed = [text for r, text in zip(results, run["clients"]) if not r["ok"]]
            tails = [line for text in failed for line in text.strip().splitlines()[-3:]]
            cause = "ib_write_bw did not report a result (rc %s): %s" % (run.get("rc"), " / ".join(tails))
        elif slow_links:
            speed = slow_links[0]["value"]
            cause = "link at %sG on %s (see link_speed_mbps)" % (speed // 1000 if speed else "?", slow_links[0]["node"])
        elif small_mtu:
            cause = "MTU below the fabric's on %s (see link_mtu / active_mtu)" % small_mtu[0]["node"]
        elif both:
            cause = ("both twins together are not faster than one: the twins share a subnet (traffic takes one "
                     "twin) or one twin's cable is in the wrong port")
        else:
            cause = "below the known ~92 Gb/s per twin: check MTU 9000 on both ends, the cable, and CPU/IRQ load"
        checks.append(_check(link_name(ends), twin, name, total, threshold,
                             total is not None and total >= threshold, cause))
    return checks


def roce_latency_checks(runs, settings):
    checks = []
    for run in runs:
        result = parse.ib_write_lat_results(run["clients"][0])
        value = result["t_typical_us"]
        ends = _run_ends(run)
        checks.append(_check(link_name(ends), run["twins"][0], "ib_write_lat_typical_us", value,
                             settings["max_latency_us"], value is not None and value <= settings["max_latency_us"],
                             "latency %s us above %s us: a switch in the path, or power saving on the NICs"
                             % (value, settings["max_latency_us"]) if value is not None else
                             "ib_write_lat did not report a result"))
    return checks


def roce_matrix(checks, nodes):
    """The link checks as a node x node matrix: {nodes, links: [{nodes, twin0, twin1, both, latency_us, verdict,
    causes}], table: {a: {b: link}} (both directions), lines: one per link, the failed ones with their causes}."""
    links = {}
    for check in checks:
        ends = check["node"].split(" <-> ")
        if len(ends) != 2 or not check["check"].startswith("ib_write_"):
            continue
        link = links.setdefault(tuple(ends), {"nodes": ends, "twin0": None, "twin1": None, "both": None,
                                              "latency_us": None, "verdict": "pass", "causes": []})
        key = "latency_us" if check["check"] == "ib_write_lat_typical_us" else \
            "both" if check["twin"] == "both" else "twin%d" % check["twin"]
        link[key] = check["value"]
        if check["verdict"] == "fail":
            link["verdict"] = "fail"
            if check["cause"] not in link["causes"]:
                link["causes"].append(check["cause"])
    order = list(nodes)
    ranked = sorted(links.values(), key=lambda l: [order.index(n) if n in order else len(order) for n in l["nodes"]])
    table = {}
    for link in ranked:
        table.setdefault(link["nodes"][0], {})[link["nodes"][1]] = link
        table.setdefault(link["nodes"][1], {})[link["nodes"][0]] = link
    lines = ["RoCE links, Gb/s twin 0 / twin 1 / both:"] + [
        "%s %s <-> %s: %s / %s / %s%s" % (
            link["verdict"].upper(), link["nodes"][0], link["nodes"][1], link["twin0"], link["twin1"], link["both"],
            (" - " + "; ".join(link["causes"])) if link["causes"] else "") for link in ranked]
    return {"nodes": order, "links": ranked, "table": table, "lines": lines if ranked else []}


def nccl_mpirun_argv(ips, env, binary, options):
    """argv for one nccl-tests rank per node: timeout(1) around mpirun, -x for every variable, then the program.

    options: {timeout, min_bytes, max_bytes, step_factor, iters, warmup_iters}.
    """
    argv = ["timeout", "--kill-after=10", str(options["timeout"]), "mpirun", "-np", str(len(ips)),
            "-H", ",".join("%s:1" % address_ip(ip) for ip in ips)]
    for key in sorted(env):
        argv += ["-x", "%s=%s" % (key, env[key])]
    return argv + [binary, "-b", str(options["min_bytes"]), "-e", str(options["max_bytes"]),
                   "-f", str(options["step_factor"]), "-g", "1", "-n", str(options["iters"]),
                   "-w", str(options["warmup_iters"])]


def nccl_checks(result, settings):
    """Gate nccl_results(): out-of-bounds 0 OK, no failure line, average bus bandwidth >= threshold.

    settings: {min_busbw_gbps, hosts (the run's nodes, named in each check; optional), hint (added to a slow
    run's cause; optional)}."""
    where = link_name(settings.get("hosts"))
    warnings = result.get("warnings") or []
    hint = (" NCCL WARN: " + " | ".join(warnings[:3])) if warnings else ""
    checks = [_check(where, "both", "nccl_out_of_bounds", result.get("out_of_bounds"), 0,
                     result.get("out_of_bounds_ok") and not result.get("failures") and bool(result.get("rows")),
                     ("no result table: the run failed or hung" if not result.get("rows") else
                      "nccl-tests found wrong values") + hint + (
                          (" " + " | ".join(result["failures"][:2])) if result.get("failures") else ""))]
    avg = result.get("avg_busbw_gbps")
    checks.append(_check(where, "both", "nccl_avg_busbw_gbps", avg, settings["min_busbw_gbps"],
                         avg is not None and avg >= settings["min_busbw_gbps"],
                         "average bus bandwidth below %s GB/s: NCCL is not using both twins (NCCL_IB_HCA), the link "
                         "is degraded (run playbooks/roce_check.yml), or it fell back to sockets%s%s"
                         % (settings["min_busbw_gbps"], hint, settings.get("hint") or "")))
    return checks


def nccl_gate(runs, settings):
    """Judge every nccl-tests run of the gate: the run across all nodes first, then any per-pair runs.

    runs: [{hosts, rc, stdout, stderr}]. settings: {min_busbw_gbps}.
    Returns {checks, runs: [{hosts, rc, timed_out, avg_busbw_gbps, rows, warnings, output_tail, passed}],
    slowest_link: {nodes, avg_busbw_gbps} among the two-node runs (a run without a figure is the slowest), or None}.
    A slow run of more than two nodes names the slowest pair when pairs ran, else says how to find it.
    """
    judged = []
    for run in runs:
        output = "\n".join(text for text in (run.get("stdout"), run.get("stderr")) if text)
        result = parse.nccl_results(output)
        judged.append({"hosts": list(run["hosts"]), "rc": run.get("rc"), "timed_out": run.get("rc") == 124,
                       "avg_busbw_gbps": result.get("avg_busbw_gbps"), "rows": result.get("rows"),
                       "warnings": result.get("warnings"),
                       "output_tail": output.splitlines()[-15:], "result": result})
    pairs = [run for run in judged if len(run["hosts"]) == 2]
    slowest = min(pairs, key=lambda run: -1.0 if run["avg_busbw_gbps"] is None else run["avg_busbw_gbps"]) \
        if pairs and len(judged) > len(pairs) else None
    checks = []
    for run in judged:
        hint = ""
        if len(run["hosts"]) > 2:
            hint = ("; slowest link %s at %s GB/s" % (link_name(slowest["hosts"]), slowest["avg_busbw_gbps"])
                    if slowest else "; run with nccl_test_per_pair=true to name the slowest link")
        ours = nccl_checks(run.pop("result"), {"min_busbw_gbps": settings["min_busbw_gbps"], "hosts": run["hosts"],
                                               "hint": hint})
        run["passed"] = all(c["verdict"] == "pass" for c in ours)
        checks += ours
    return {"checks": checks, "runs": judged, "slowest_link": {
        "nodes": slowest["hosts"], "avg_busbw_gbps": slowest["avg_busbw_gbps"]} if slowest else None}


def check_line(check):
    """One line for a check: verdict, where, what, value against threshold, and the cause when it failed."""
    return "%s %s%s %s=%s (threshold %s)%s" % (
        check["verdict"].upper(), check["node"], "" if check.get("twin") is None else " twin %s" % check["twin"],
        check["check"], check["value"], check["threshold"], " - " + check["cause"] if check["cause"] else "")


def report(checks, meta=None):
    """{passed, failed_checks, checks, summary (lines), ...meta} for the JSON report and the play output."""
    failed = [c for c in checks if c["verdict"] == "fail"]
    lines = [check_line(c) for c in checks]
    out = dict(meta or {})
    out.update({"passed": not failed and bool(checks), "failed_checks": len(failed), "checks": checks,
                "summary": lines})
    return out
