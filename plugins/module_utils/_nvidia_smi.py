# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers for `nvidia-smi --query-gpu=... --format=csv` output and /proc/meminfo, and the one query of a node's GPUs
and memory (gather) that gpu_vram_facts and serving_info run.

The parsers are pure functions (no I/O), so unit tests feed them recorded outputs.
"""

from __future__ import annotations

import csv
import re

from ansible_collections.dgx_spark.cluster.plugins.module_utils._runner import TIMED_OUT_RC, CommandRunner, tail

# Values the driver prints where it has no number. GB10 (unified memory) prints [N/A] for memory.*.
NOT_AVAILABLE = frozenset(("[n/a]", "n/a", "[not supported]", "not supported", "[unknown error]",
                           "[insufficient permissions]", "[gpu is lost]"))

GPU_QUERY_FIELDS = ("index", "name", "uuid", "pci.bus_id", "driver_version", "compute_cap",
                    "memory.total", "memory.used", "memory.free")

INT_FIELDS = frozenset(("index", "memory.total", "memory.used", "memory.free"))

_UNIT_SUFFIX = re.compile(r"^(-?\d+(?:\.\d+)?)\s*(?:MiB|%|W|MHz|C)$")
_HEADER_UNIT = re.compile(r"\s*\[[^\]]*\]\s*$")


class NvidiaSmiParseError(ValueError):
    """The text is not the CSV that the query asked for."""


def _value(raw):
    text = raw.strip()
    if text.lower() in NOT_AVAILABLE:
        return None
    match = _UNIT_SUFFIX.match(text)
    return match.group(1) if match else text


def _data_lines(text):
    """Lines that can hold CSV: drops blanks, shell prompts and comment headers, keeps the order."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("$ ", "#")):
            continue
        yield stripped


def _header_names(cells):
    return [_HEADER_UNIT.sub("", cell).strip() for cell in cells]


def parse_query_csv(text, fields):
    """Parse `--query-gpu=<fields> --format=csv[,noheader][,nounits]` output into one dict per row.

    Keys are the field names asked for; values are strings, ints for INT_FIELDS, or None where the
    driver printed [N/A] / Not Supported. A header row, unit suffixes and indentation are tolerated.
    """
    fields = list(fields)
    rows = list(csv.reader(_data_lines(text), skipinitialspace=True))
    if rows and _header_names(rows[0])[:1] == fields[:1]:
        header = _header_names(rows[0])
        known = [name for name in header if name != "..."]
        if known != fields[:len(known)]:
            raise NvidiaSmiParseError("header %r does not match the queried fields %r" % (header, fields))
        rows = rows[1:]
    records = []
    for number, cells in enumerate(rows, start=1):
        if len(cells) != len(fields):
            raise NvidiaSmiParseError(
                "row %d has %d values, the query asked for %d (%s): %r"
                % (number, len(cells), len(fields), ",".join(fields), ", ".join(cells)))
        record = {}
        for field, cell in zip(fields, cells):
            value = _value(cell)
            if value is not None and field in INT_FIELDS:
                try:
                    value = int(float(value))
                except ValueError:
                    raise NvidiaSmiParseError("field %s in row %d is not a number: %r" % (field, number, cell))
            record[field] = value
        records.append(record)
    return records


def gpu_record(row):
    """A query row in the shape the module returns (MiB suffixes, snake_case names)."""
    total = row.get("memory.total")
    return {
        "index": row.get("index"),
        "name": row.get("name"),
        "uuid": row.get("uuid"),
        "pci_bus_id": row.get("pci.bus_id"),
        "driver_version": row.get("driver_version"),
        "compute_cap": row.get("compute_cap"),
        "memory_total_mib": total,
        "memory_used_mib": row.get("memory.used"),
        "memory_free_mib": row.get("memory.free"),
        "unified_memory": total is None,
    }


def parse_meminfo(text):
    """/proc/meminfo -> {key: kB}. Raises NvidiaSmiParseError when MemTotal is absent."""
    values = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if sep and parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0])
    if "MemTotal" not in values:
        raise NvidiaSmiParseError("no MemTotal line in /proc/meminfo")
    return values


def node_summary(gpus, meminfo_text=None):
    """Node totals. Unified memory (any GPU without a memory.total) takes them from /proc/meminfo."""
    unified = any(gpu["unified_memory"] for gpu in gpus)
    if unified:
        if meminfo_text is None:
            raise NvidiaSmiParseError("unified memory GPU but /proc/meminfo was not read")
        meminfo = parse_meminfo(meminfo_text)
        total_kib = meminfo["MemTotal"]
        available_kib = meminfo.get("MemAvailable", meminfo.get("MemFree", 0))
        return {
            "unified_memory": True,
            "total_mib": total_kib // 1024,
            "available_mib": available_kib // 1024,
            "source": "/proc/meminfo",
        }
    return {
        "unified_memory": False,
        "total_mib": sum(gpu["memory_total_mib"] or 0 for gpu in gpus),
        "available_mib": sum(gpu["memory_free_mib"] or 0 for gpu in gpus),
        "source": "nvidia-smi",
    }


DRIVER_HINT = ("check that the NVIDIA driver is installed and loaded (nvidia-smi works as this user), "
               "or set fail_on_missing=false for nodes without a GPU")


def empty_result(reason):
    return {"present": False, "gpus": [], "gpu_count": 0, "unified_memory": False, "total_mib": None,
            "available_mib": None, "source": None, "driver_version": None, "error": reason}


def read_meminfo(module, path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError as exc:
        module.fail_json(msg="GPU memory is unified but %s could not be read: %s" % (path, exc))


def gather(module, nvidia_smi="nvidia-smi", meminfo_path="/proc/meminfo", timeout=30):
    """The node's GPUs and memory: (facts, failure) where failure is (msg, rc, stdout, stderr) or None."""
    binary = module.get_bin_path(nvidia_smi)
    if not binary:
        return None, ("nvidia-smi not found (looked for %r on PATH): %s" % (nvidia_smi, DRIVER_HINT), None, "", "")
    argv = [binary, "--query-gpu=" + ",".join(GPU_QUERY_FIELDS), "--format=csv,noheader,nounits"]
    runner = CommandRunner(module)
    rc, stdout, stderr = runner.run(argv, timeout=timeout, environ_update={"LC_ALL": "C"})
    if rc == TIMED_OUT_RC:
        return None, ("nvidia-smi did not answer within %s s: the driver may be hung; %s"
                      % (timeout, DRIVER_HINT), rc, stdout, stderr)
    if rc != 0:
        detail = tail(stdout + "\n" + stderr, 5).strip()
        return None, ("nvidia-smi exited with rc=%s: %s. %s" % (rc, detail or "no output", DRIVER_HINT), rc, stdout, stderr)
    try:
        gpus = [gpu_record(row) for row in parse_query_csv(stdout, GPU_QUERY_FIELDS)]
        if not gpus:
            return None, ("nvidia-smi listed no GPU: %s" % DRIVER_HINT, rc, stdout, stderr)
        meminfo = read_meminfo(module, meminfo_path) if any(g["unified_memory"] for g in gpus) else None
        summary = node_summary(gpus, meminfo)
    except NvidiaSmiParseError as exc:
        return None, ("nvidia-smi output is not the CSV that was queried (%s); run `%s` by hand to see what "
                      "the driver prints" % (exc, " ".join(argv)), rc, stdout, stderr)
    facts = dict(summary, present=True, gpus=gpus, gpu_count=len(gpus),
                 driver_version=gpus[0]["driver_version"], error=None)
    return facts, None
