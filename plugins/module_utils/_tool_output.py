# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parsers for the text the fabric and serving tools print.

Each takes the tool's text as printed (shell prompts, mpirun/ssh noise and banners tolerated) and returns plain
data. They never raise on unexpected text: what they cannot find comes back empty or None, and the caller gates.
"""

from __future__ import annotations

import re


def command_output(result):
    """A registered command result -> its stdout and stderr as one text, joined by a newline (either may be empty
    or absent: a skipped task gives ""); text is returned as it is. Playbooks cannot write that join inside a YAML block scalar, where
    '\\n' reaches Jinja as a backslash and an n."""
    if isinstance(result, str):
        return result
    streams = [result.get(name) or "" for name in ("stdout", "stderr")] if isinstance(result, dict) else []
    return "\n".join(text for text in streams if text)


# ------------------------------------------------------------------ ibdev2netdev / rdma link / show_gids / ibv_devinfo
_IBDEV2NETDEV = re.compile(r"^\s*(\S+)\s+port\s+(\d+)\s+==>\s+(\S+)\s+\((\w+)\)")
_RDMA_LINK = re.compile(r"^link\s+(\S+)/(\d+)\s+state\s+(\S+)(?:\s+physical_state\s+(\S+))?(?:.*?\s+netdev\s+(\S+))?")
_GID_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\d+)\s+([0-9a-fx:]+)\s+(?:(\d+\.\d+\.\d+\.\d+)\s+)?(v[12])\s+(\S+)\s*$")


def ibdev2netdev(text):
    """`ibdev2netdev` -> [{rdma_dev, port, netdev, up}] in printed order."""
    links = []
    for line in (text or "").splitlines():
        match = _IBDEV2NETDEV.match(line)
        if match:
            links.append({"rdma_dev": match.group(1), "port": int(match.group(2)), "netdev": match.group(3),
                          "up": match.group(4).lower() == "up"})
    return links


def rdma_link(text):
    """`rdma link [show]` -> [{rdma_dev, port, state, physical_state, netdev, active}]."""
    links = []
    for line in (text or "").splitlines():
        match = _RDMA_LINK.match(line.strip())
        if match:
            links.append({"rdma_dev": match.group(1), "port": int(match.group(2)), "state": match.group(3),
                          "physical_state": match.group(4), "netdev": match.group(5),
                          "active": match.group(3) == "ACTIVE"})
    return links


def show_gids(text):
    """`show_gids` -> [{rdma_dev, port, index, gid, ipv4, version, netdev}] (version is "v1" or "v2")."""
    gids = []
    for line in (text or "").splitlines():
        match = _GID_ROW.match(line.strip())
        if match:
            gids.append({"rdma_dev": match.group(1), "port": int(match.group(2)), "index": int(match.group(3)),
                         "gid": match.group(4), "ipv4": match.group(5), "version": match.group(6),
                         "netdev": match.group(7)})
    return gids


def ibv_devinfo(text):
    """`ibv_devinfo [-d dev]` -> {rdma_dev: {fw_ver, ports: {n: {state, max_mtu, active_mtu, link_layer}}}}."""
    devices, device, port = {}, None, None
    for line in (text or "").splitlines():
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "hca_id":
            device = devices.setdefault(value, {"fw_ver": None, "ports": {}})
            port = None
        elif device is None:
            continue
        elif key == "fw_ver":
            device["fw_ver"] = value
        elif key == "port" and value.isdigit():
            port = device["ports"].setdefault(int(value), {})
        elif port is not None and key in ("state", "link_layer"):
            port[key] = value.split(" (")[0]
        elif port is not None and key in ("max_mtu", "active_mtu"):
            number = value.split()[0] if value else ""
            port[key] = int(number) if number.isdigit() else None
    return devices


# ------------------------------------------------------------------ ethtool
_ETHTOOL_SPEED = re.compile(r"^\s*Speed:\s*(?:(\d+)Mb/s|(.+))\s*$")


def ethtool_speed_mbps(text):
    """`ethtool <netdev>` (or its `grep Speed` line) -> link speed in Mb/s, or None when unknown / link down."""
    for line in (text or "").splitlines():
        match = _ETHTOOL_SPEED.match(line)
        if match:
            return int(match.group(1)) if match.group(1) else None
    return None


_WAKE_LINE = re.compile(r"^\s*(Supports Wake-on|Wake-on):\s*([a-zA-Z]*)\s*$")


def ethtool_wake_on(text):
    """`ethtool <netdev>` (or its `grep Wake` lines) -> {supports, wake_on, magic, armed}: the 'Supports Wake-on:'
    and 'Wake-on:' modes as printed (None when the driver prints no such line: the NIC has no Wake-on-LAN), magic
    when it supports magic packets (g), armed when magic packets wake it now."""
    found = {}
    for line in (text or "").splitlines():
        match = _WAKE_LINE.match(line)
        if match:
            found.setdefault(match.group(1), match.group(2))
    supports, wake_on = found.get("Supports Wake-on"), found.get("Wake-on")
    return {"supports": supports, "wake_on": wake_on, "magic": "g" in (supports or ""),
            "armed": "g" in (wake_on or "") and "d" not in (wake_on or "")}


# ------------------------------------------------------------------ perftest
_BW_HEADER = re.compile(r"#bytes\s+#iterations\s+BW peak\[(Gb|MB|MiB)/sec\]\s+BW average\[(Gb|MB|MiB)/sec\]")
_LAT_HEADER = re.compile(r"#bytes\s+#iterations\s+t_min\[usec\]")
_TO_GBPS = {"Gb": 1.0, "MB": 8e6 / 1e9, "MiB": 8 * 1048576 / 1e9}


def _number_rows(lines, start, width):
    rows = []
    for line in lines[start:]:
        cells = line.split()
        if not cells or not cells[0].isdigit():
            if rows:
                break
            continue
        if len(cells) >= width:
            rows.append(cells)
    return rows


def ib_write_bw_results(text):
    """perftest bandwidth client output -> {bw_avg_gbps, bw_peak_gbps, msg_size_bytes, unit, ...}.

    The unit is whatever the tool printed (`--report_gbits` gives Gb/sec, the default MB/sec); figures come back in
    Gb/s either way. `--run_infinitely` prints a row per interval: the average of the rows is reported and peak is
    None when the tool says it was not measured (printed as 0.00). Nothing parsed -> `ok: false`.
    """
    lines = (text or "").splitlines()
    result = {"ok": False, "bw_avg_gbps": None, "bw_peak_gbps": None, "msg_size_bytes": None, "iterations": None,
              "unit": None, "samples": 0, "device": None, "qps": None, "link_type": None, "gid_index": None}
    for line in lines:
        for key, pattern in (("device", r"Device\s*:\s*(\S+)"), ("qps", r"Number of qps\s*:\s*(\d+)"),
                             ("link_type", r"Link type\s*:\s*(\S+)"), ("gid_index", r"GID index\s*:\s*(\d+)")):
            match = re.search(pattern, line)
            if match and result[key] is None:
                result[key] = int(match.group(1)) if key in ("qps", "gid_index") else match.group(1)
    header = next(((i, m) for i, m in ((i, _BW_HEADER.search(line)) for i, line in enumerate(lines)) if m), None)
    if header is None:
        return result
    index, match = header
    unit = match.group(2)
    rows = _number_rows(lines, index + 1, 4)
    if not rows:
        return result
    scale = _TO_GBPS[unit]
    peaks = [float(row[2]) for row in rows]
    averages = [float(row[3]) for row in rows]
    result.update({
        "ok": True, "unit": unit + "/sec", "samples": len(rows),
        "msg_size_bytes": int(rows[-1][0]), "iterations": int(rows[-1][1]),
        "bw_avg_gbps": round(sum(averages) / len(averages) * scale, 3),
        "bw_peak_gbps": round(max(peaks) * scale, 3) if max(peaks) > 0 else None,
    })
    return result


def ib_write_lat_results(text):
    """perftest latency client output -> {ok, msg_size_bytes, t_min_us, t_max_us, t_typical_us, t_avg_us, ...}."""
    lines = (text or "").splitlines()
    result = {"ok": False, "msg_size_bytes": None, "iterations": None, "t_min_us": None, "t_max_us": None,
              "t_typical_us": None, "t_avg_us": None, "t_stdev_us": None, "p99_us": None, "p99_9_us": None}
    start = next((i for i, line in enumerate(lines) if _LAT_HEADER.search(line)), None)
    rows = _number_rows(lines, start + 1, 9) if start is not None else []
    if rows:
        row = rows[-1]
        names = ("t_min_us", "t_max_us", "t_typical_us", "t_avg_us", "t_stdev_us", "p99_us", "p99_9_us")
        result.update(dict(zip(names, (float(cell) for cell in row[2:9]))))
        result.update({"ok": True, "msg_size_bytes": int(row[0]), "iterations": int(row[1])})
    return result


# ------------------------------------------------------------------ nccl-tests
_NCCL_OOB = re.compile(r"^#\s*Out of bounds values\s*:\s*(\d+)\s+(\w+)")
_NCCL_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*([\d.]+)")
_NCCL_HEADER = re.compile(r"nccl-tests version (\S+)")
_NCCL_TEST = re.compile(r"Collective test starting:\s*(\S+)")
_NCCL_RANK = re.compile(r"^#\s+Rank\s+(\d+)\s+Group\s+\d+\s+Pid\s+\d+\s+on\s+(\S+)\s+device\s+(\d+)\s+\[[^\]]*\]\s+(.+?)\s*$")
_NCCL_FAILURE = re.compile(r"Test NCCL failure|Test CUDA failure|NCCL failure")


def _nccl_float(cell):
    try:
        return float(cell)
    except ValueError:  # nccl-tests prints "N/A" for wrong counts when validation is off
        return None


def nccl_results(text):
    """nccl-tests output -> {rows, avg_busbw_gbps, out_of_bounds, ok, warnings, failures, ranks, ...}.

    A row needs 13 columns (size count type redop root, then time/algbw/busbw/#wrong out-of-place and in-place);
    `busbw_gbps` is the better of out-of-place and in-place. `ok` means a table was printed, the out-of-bounds
    line says `0 OK` and no `Test NCCL failure` line appeared. `NCCL WARN` lines are kept (wrapped continuation
    lines of a WARN are joined), so a failure message can show them.
    """
    result = {"ok": False, "test": None, "version": None, "rows": [], "avg_busbw_gbps": None,
              "max_busbw_gbps": None, "out_of_bounds": None, "out_of_bounds_ok": False, "warnings": [],
              "failures": [], "ranks": []}
    lines = (text or "").splitlines()
    warning_continues = False
    for line in lines:
        stripped = line.strip()
        if "NCCL WARN" in line:
            result["warnings"].append(stripped)
            warning_continues = stripped.endswith(":")
            continue
        if warning_continues and stripped and not stripped.startswith("#") and " NCCL " not in line:
            result["warnings"][-1] += " " + stripped
            continue
        warning_continues = False
        if _NCCL_FAILURE.search(line):
            result["failures"].append(stripped)
            continue
        for key, pattern in (("version", _NCCL_HEADER), ("test", _NCCL_TEST)):
            match = pattern.search(line)
            if match:
                result[key] = match.group(1)
        rank = _NCCL_RANK.match(stripped)
        if rank:
            result["ranks"].append({"rank": int(rank.group(1)), "host": rank.group(2),
                                    "device": int(rank.group(3)), "gpu": rank.group(4)})
            continue
        match = _NCCL_OOB.match(stripped)
        if match:
            result["out_of_bounds"] = int(match.group(1))
            result["out_of_bounds_ok"] = match.group(1) == "0" and match.group(2) == "OK"
            continue
        match = _NCCL_AVG.match(stripped)
        if match:
            result["avg_busbw_gbps"] = float(match.group(1))
            continue
        cells = stripped.split()
        if len(cells) >= 13 and cells[0].isdigit() and cells[1].isdigit():
            oop = [_nccl_float(c) for c in cells[5:8]]
            inp = [_nccl_float(c) for c in cells[9:12]]
            row = {"size_bytes": int(cells[0]), "count": int(cells[1]), "type": cells[2], "redop": cells[3],
                   "oop_time_us": oop[0], "oop_algbw_gbps": oop[1], "oop_busbw_gbps": oop[2],
                   "oop_wrong": int(cells[8]) if cells[8].isdigit() else None,
                   "ip_time_us": inp[0], "ip_algbw_gbps": inp[1], "ip_busbw_gbps": inp[2],
                   "ip_wrong": int(cells[12]) if cells[12].isdigit() else None}
            busbws = [v for v in (oop[2], inp[2]) if v is not None]
            row["busbw_gbps"] = max(busbws) if busbws else None
            wrongs = [w for w in (row["oop_wrong"], row["ip_wrong"]) if w is not None]
            row["wrong"] = sum(wrongs) if wrongs else None
            result["rows"].append(row)
    busbws = [row["busbw_gbps"] for row in result["rows"] if row["busbw_gbps"] is not None]
    result["max_busbw_gbps"] = max(busbws) if busbws else None
    result["ok"] = bool(result["rows"]) and result["out_of_bounds_ok"] and not result["failures"]
    return result


# ------------------------------------------------------------------ ray status
_RAY_NODE = re.compile(r"^\s*(\d+)\s+node_[0-9a-f]+")
_RAY_RESOURCE = re.compile(r"^\s*([\d.]+)(\w*)/([\d.]+)(\w*)\s+(\S+)")


def ray_status(text):
    """`ray status` -> {nodes_active, nodes_pending, gpus_total, gpus_used, cpus_total, cpus_used, failures}.

    Handles the current layout (Active:/Pending:/Recent failures: then "Total Usage:") and the older one
    ("Usage:" and "Total Constraints:/Total Demands:"), with log lines before the banner.
    """
    result = {"ok": False, "nodes_active": 0, "nodes_pending": 0, "gpus_total": None, "gpus_used": None,
              "cpus_total": None, "cpus_used": None, "failures": []}
    section = None
    for line in (text or "").splitlines():
        stripped = line.strip()
        if stripped.startswith("======== Autoscaler status"):
            result["ok"] = True
        if stripped in ("Node status", "Resources") or stripped.startswith("----"):
            section = None
            continue
        header = stripped.rstrip(":")
        if stripped.endswith(":") and header in ("Active", "Pending", "Recent failures", "Usage", "Total Usage",
                                                 "Total Constraints", "Total Demands", "Pending Demands",
                                                 "From request_resources"):
            section = header
            continue
        if section in ("Active", "Pending"):
            match = _RAY_NODE.match(line)
            if match:
                result["nodes_active" if section == "Active" else "nodes_pending"] += int(match.group(1))
        elif section == "Recent failures" and stripped and not stripped.startswith("("):
            result["failures"].append(stripped)
        elif section in ("Usage", "Total Usage"):
            match = _RAY_RESOURCE.match(line)
            if match and match.group(5) in ("GPU", "CPU"):
                used, total = float(match.group(1)), float(match.group(3))
                prefix = "gpus" if match.group(5) == "GPU" else "cpus"
                result[prefix + "_used"], result[prefix + "_total"] = used, total
    return result


# ------------------------------------------------------------------ TensorRT-LLM (trtllm-build, trtllm-serve)
_TRTLLM_VERSION = re.compile(r"\[TensorRT-LLM\]\s+TensorRT[- ]LLM version:\s*(\S+)")
_TRTLLM_ERROR = re.compile(r"\[TRT-LLM\]\s+\[E\]\s+(.*)$")
_TRTLLM_BACKEND = re.compile(r"\[TRT-LLM\]\s+\[I\]\s+(?:\[llmapi\]\s+)?Using LLM with (\S+) backend")
_UVICORN = re.compile(r"Uvicorn running on (https?://\S+)")


def trtllm_version(text):
    """The TensorRT-LLM version a tool printed ('[TensorRT-LLM] TensorRT-LLM version: 0.18.0'), or None."""
    match = _TRTLLM_VERSION.search(text or "")
    return match.group(1) if match else None


def trtllm_errors(text):
    """The '[TRT-LLM] [E]' messages a TensorRT-LLM tool printed, in order."""
    return [m.group(1).strip() for m in (_TRTLLM_ERROR.search(line) for line in (text or "").splitlines()) if m]


def trtllm_serve_log(text):
    """`trtllm-serve` output -> {version, backend, ready, url, errors}.

    ready: the API finished starting ('Application startup complete.' and the 'Uvicorn running on' line);
    errors: the '[TRT-LLM] [E]' lines (for example 'Failed to initialize executor on rank 0: ...')."""
    text = text or ""
    backend = _TRTLLM_BACKEND.search(text)
    url = _UVICORN.search(text)
    return {"version": trtllm_version(text), "backend": backend.group(1).lower() if backend else None,
            "ready": "Application startup complete." in text and url is not None,
            "url": url.group(1) if url else None, "errors": trtllm_errors(text)}
