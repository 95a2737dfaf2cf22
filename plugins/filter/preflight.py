# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that judge host facts for the preflight role (pure functions of gathered data)."""

from __future__ import annotations

import json

GIB = 1 << 30


def disk_checks(df_lines, checks):
    """The last `df -P -B1` line (or df's error) for each check's path, in order, and the checks
    ({path, min_free_gib}) -> [{path, mount, free_gib, min_free_gib, ok, message, summary}]."""
    judged = []
    lines = list(df_lines or [])
    for index, check in enumerate(checks or []):
        path, need = check["path"], float(check["min_free_gib"])
        line = lines[index] if index < len(lines) else ""
        cells = line.split()
        if len(cells) < 6 or not cells[3].isdigit():
            judged.append({"path": path, "mount": None, "free_gib": None, "min_free_gib": need, "ok": False,
                           "message": "cannot measure free space at %s: %s" % (path, line.strip() or "no df output"),
                           "summary": "%s ?" % path})
            continue
        free, mount = round(int(cells[3]) / float(GIB), 1), cells[5]
        ok = free >= need
        judged.append({
            "path": path, "mount": mount, "free_gib": free, "min_free_gib": need, "ok": ok,
            "message": "" if ok else "%s (on %s) has %.1f GiB free, needs %g GiB: free space or point the path "
                                     "elsewhere" % (path, mount, free, need),
            "summary": "%s %.1f/%g GiB free" % (path, free, need)})
    return judged


def _links(ip_json):
    """`ip -j link show` output -> {ifname: link}."""
    try:
        data = json.loads(ip_json or "[]")
    except ValueError:
        return {}
    return {link.get("ifname"): link for link in data if isinstance(link, dict)}


def link_problems(ip_json, names):
    """`ip -j link show` output and the fabric netdevs -> problems (missing link, admin down, no carrier)."""
    links = _links(ip_json)
    problems = []
    for name in names or []:
        link = links.get(name)
        if link is None:
            # the NICs first (a host with containers has many bridges), never the containers' veths
            present = sorted((n for n in links if n and not n.startswith("veth")),
                             key=lambda n: (not n.startswith(("en", "eth", "ib")), n))
            problems.append("fabric interface %s does not exist (ip link show lists %s)" % (
                name, ", ".join(present[:12] + (["..."] if len(present) > 12 else [])) or "no links"))
        elif "UP" not in link.get("flags", []):
            problems.append("fabric interface %s is administratively down (ip link set dev %s up)" % (name, name))
        elif "NO-CARRIER" in link.get("flags", []) or link.get("operstate") == "DOWN":
            problems.append("fabric interface %s has no carrier: check the QSFP cable (both boxes, same port) and "
                            "that the peer is on" % name)
    return problems


def link_summary(ip_json, names):
    """One line: each fabric interface with its state and MTU."""
    links = _links(ip_json)
    parts = []
    for name in names or []:
        link = links.get(name)
        parts.append("%s %s" % (name, "missing" if link is None else "%s mtu %s" % (
            link.get("operstate"), link.get("mtu"))))
    return ", ".join(parts) or "not checked"


class FilterModule(object):
    """dgx_spark.cluster preflight filters."""

    def filters(self):
        return {"disk_checks": disk_checks, "link_problems": link_problems, "link_summary": link_summary}
