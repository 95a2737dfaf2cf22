# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers for `nvidia-smi --query-gpu=... --format=csv` output and /proc/meminfo.

Pure functions: no I/O, so unit tests feed them recorded outputs.
"""

from __future__ import annotations

import csv
import re

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
