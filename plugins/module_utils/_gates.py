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

    node: {host, twins: [{interface, rdma_dev, address}], ibdev2netdev, ibv_devinfo: {dev: text}, show_gids,
    ethtool: {netdev: text}, links: {netdev: `ip -j link show` text}}.
    settings: {gid_index, expected_speed_mbps, expected_mtu, min_active_mtu}.
    """
    host = node["host"]
    links = parse.ibdev2netdev(node.get("ibdev2netdev", ""))
    by_netdev = dict((link["netdev"], link) for link in links)
    gids = parse.show_gids(node.get("show_gids", ""))
    checks = []
    for index, twin in enumerate(node["twins"]):
        netdev, rdma_dev, address = twin["interface"], twin["rdma_dev"], address_ip(twin["address"])
        link = by_netdev.get(netdev)
        others_up = [l["netdev"] for l in links if l["up"] and l["netdev"] not in [t["interface"] for t in node["twins"]]]
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


def roce_bandwidth_checks(runs, settings, node_checks=()):
    """Checks from ib_write_bw client runs: [{twins: [0] | [1] | [0, 1], clients: [text, ...], rc: [...]}]."""
    slow_links = [c for c in node_checks if c["check"] == "link_speed_mbps" and c["verdict"] == "fail"]
    small_mtu = [c for c in node_checks if c["check"] in ("link_mtu", "active_mtu") and c["verdict"] == "fail"]
    checks = []
    for run in runs:
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
            cause = "link at %sG (see link_speed_mbps)" % (speed // 1000 if speed else "?")
        elif small_mtu:
            cause = "MTU below the fabric's (see link_mtu / active_mtu)"
        elif both:
            cause = ("both twins together are not faster than one: the twins share a subnet (traffic takes one "
                     "twin) or one twin's cable is in the wrong port")
        else:
            cause = "below the known ~92 Gb/s per twin: check MTU 9000 on both ends, the cable, and CPU/IRQ load"
        checks.append(_check("between nodes", twin, name, total, threshold,
                             total is not None and total >= threshold, cause))
    return checks


def roce_latency_checks(runs, settings):
    checks = []
    for run in runs:
        result = parse.ib_write_lat_results(run["clients"][0])
        value = result["t_typical_us"]
        checks.append(_check("between nodes", run["twins"][0], "ib_write_lat_typical_us", value,
                             settings["max_latency_us"], value is not None and value <= settings["max_latency_us"],
                             "latency %s us above %s us: a switch in the path, or power saving on the NICs"
                             % (value, settings["max_latency_us"]) if value is not None else
                             "ib_write_lat did not report a result"))
    return checks


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
    """Gate nccl_results(): out-of-bounds 0 OK, no failure line, average bus bandwidth >= threshold."""
    warnings = result.get("warnings") or []
    hint = (" NCCL WARN: " + " | ".join(warnings[:3])) if warnings else ""
    checks = [_check("between nodes", "both", "nccl_out_of_bounds", result.get("out_of_bounds"), 0,
                     result.get("out_of_bounds_ok") and not result.get("failures") and bool(result.get("rows")),
                     ("no result table: the run failed or hung" if not result.get("rows") else
                      "nccl-tests found wrong values") + hint + (
                          (" " + " | ".join(result["failures"][:2])) if result.get("failures") else ""))]
    avg = result.get("avg_busbw_gbps")
    checks.append(_check("between nodes", "both", "nccl_avg_busbw_gbps", avg, settings["min_busbw_gbps"],
                         avg is not None and avg >= settings["min_busbw_gbps"],
                         "average bus bandwidth below %s GB/s: NCCL is not using both twins (NCCL_IB_HCA), the link "
                         "is degraded (run playbooks/roce_check.yml), or it fell back to sockets%s"
                         % (settings["min_busbw_gbps"], hint)))
    return checks


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
