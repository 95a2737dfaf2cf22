# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Distributed training with torchrun: what torchrun's error report says, what a rank's log says of its progress,
and the merged, rank-prefixed view of every rank's log.

The parsers take the text as printed and never raise on unexpected text: what they cannot find comes back None or
empty.
"""

from __future__ import annotations

import json
import re

# ------------------------------------------------------------------ torchrun's ChildFailedError report
_FAILURE_HEADER = re.compile(r"^\s*\[(\d+)\]:\s*$")
_FAILURE_FIELD = re.compile(r"^\s*(time|host|rank|exitcode|error_file|traceback)\s*:\s?(.*)$")
_RANK = re.compile(r"^(\d+)(?:\s*\(local_rank:\s*(\d+)\))?")
_EXITCODE = re.compile(r"^(-?\d+)(?:\s*\(pid:\s*(\d+)\))?")
_NO_TRACEBACK = "To enable traceback see"
_ERROR_LINE = re.compile(r"^\s*(?:[A-Za-z_][\w.]*(?:Error|Exception|Interrupt)|RuntimeError|AssertionError)\b[^:]*:")


def _failure_blocks(lines, start):
    """The [i]: blocks of a 'Failures:' or 'Root Cause' section from lines[start], until a rule line."""
    blocks, current = [], None
    for line in lines[start:]:
        if re.match(r"^\s*(=+|-+)\s*$", line):
            if current is not None:
                blocks.append(current)
            return blocks
        header = _FAILURE_HEADER.match(line)
        if header:
            if current is not None:
                blocks.append(current)
            current = {"index": int(header.group(1))}
            continue
        field = _FAILURE_FIELD.match(line)
        if field and current is not None:
            current[field.group(1)] = field.group(2).strip()
    if current is not None:
        blocks.append(current)
    return blocks


def _record(block):
    rank = _RANK.match(block.get("rank", ""))
    code = _EXITCODE.match(block.get("exitcode", ""))
    error_file = block.get("error_file")
    return {"rank": int(rank.group(1)) if rank else None,
            "local_rank": int(rank.group(2)) if rank and rank.group(2) else None,
            "host": block.get("host") or None,
            "exitcode": int(code.group(1)) if code else None,
            "pid": int(code.group(2)) if code and code.group(2) else None,
            "error_file": None if error_file in (None, "", "<N/A>") else error_file,
            "time": block.get("time") or None,
            "traceback": None if not block.get("traceback") or _NO_TRACEBACK in block["traceback"]
            else block["traceback"]}


def _traceback_tail(lines, before, count):
    """The last `count` lines of the last Python traceback (or error line) printed before index `before`."""
    starts = [index for index, line in enumerate(lines[:before]) if line.strip().startswith("Traceback (most recent")]
    if starts:
        block = [line.rstrip() for line in lines[starts[-1]:before] if line.strip()]
        ends = [index for index, line in enumerate(block) if _ERROR_LINE.match(line)]
        block = block[:ends[-1] + 1] if ends else block
        return block[-count:]
    errors = [line.rstrip() for line in lines[:before] if _ERROR_LINE.match(line)]
    return errors[-count:]


def torchrun_failure(text, tail=6):
    """torchrun's ChildFailedError report -> {rank, local_rank, host, exitcode, pid, error_file, time, script,
    traceback_tail, failures}: the root cause (the first observed failure), else the first failure listed; the
    traceback's last lines (the report's own traceback field when it holds one, else the last Python traceback
    printed before the report); failures lists every rank the report names. None when the text holds no report."""
    lines = (text or "").splitlines()
    roots = [index for index, line in enumerate(lines) if line.strip().startswith("Root Cause")]
    listed = [index for index, line in enumerate(lines) if line.strip() == "Failures:"]
    root = _failure_blocks(lines, roots[-1] + 1) if roots else []
    failures = _failure_blocks(lines, listed[-1] + 1) if listed else []
    chosen = (root or failures or [None])[0]
    if chosen is None:
        return None
    report = [index for index, line in enumerate(lines) if "ChildFailedError" in line]
    before = report[-1] if report else (listed or roots)[0]
    script = next((match.group(1) for match in (re.match(r"^\s*(\S+) FAILED\s*$", line) for line in lines) if match),
                  None)
    found = _record(chosen)
    found["script"] = script
    own = found.pop("traceback")
    found["traceback_tail"] = own.splitlines()[-tail:] if own else _traceback_tail(lines, before, tail)
    found["failures"] = [_record(block) for block in failures if block is not chosen] if failures else []
    for failure in found["failures"]:
        failure.pop("traceback", None)
    return found


# ------------------------------------------------------------------ a rank's progress
_KEY_VALUE = re.compile(r"(?<![\w.])(step|loss)\s*[=:]\s*(-?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)")


def progress_line(line):
    """One log line -> {step, loss} when it reports progress: a JSON object with "step" (and "loss"), or
    `step=N loss=X` (also `step: N`, in any order, among other words); else None."""
    text = (line or "").strip()
    start = text.find("{")
    if start >= 0:
        try:
            record = json.loads(text[start:])
        except ValueError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("step"), int) and not isinstance(record["step"], bool):
            loss = record.get("loss")
            return {"step": record["step"], "loss": float(loss) if isinstance(loss, (int, float)) else None}
    found = dict((key, value) for key, value in _KEY_VALUE.findall(text))
    if "step" not in found or not re.match(r"^\d+$", found["step"]):
        return None
    return {"step": int(found["step"]), "loss": float(found["loss"]) if "loss" in found else None}


def progress(text):
    """A rank's log -> {step, loss, reports}: its last progress line's step and loss (None before the first) and
    how many progress lines it printed."""
    last, reports = None, 0
    for line in (text or "").splitlines():
        found = progress_line(line)
        if found is not None:
            last, reports = found, reports + 1
    return {"step": last["step"] if last else None, "loss": last["loss"] if last else None, "reports": reports}


def stragglers(steps, bound):
    """{rank: last step (None before the first)} and the bound -> the ranks whose step lags the furthest rank's
    by more than `bound` steps, in rank order (a rank that reported nothing while others did counts from step 0)."""
    known = [step for step in steps.values() if step is not None]
    if not known:
        return []
    lead = max(known)
    return sorted(rank for rank, step in steps.items() if lead - (step if step is not None else 0) > int(bound))


# ------------------------------------------------------------------ every rank's log, merged
_JOURNAL_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:?\d{2}|Z)?)\s+\S+\s+[^:]+:\s?(.*)$")
_MARKED = re.compile(r"Traceback \(most recent call last\)|Error|Exception|FAILED|ChildFailedError|\[E\d*[ \]]")


def merge_logs(logs):
    """{rank: journal text as `journalctl -o short-iso-precise` prints it} -> the lines of every rank in time order,
    each `<time> [rank N] <line>`, error lines marked with `!!` after the rank. Lines without a time stamp keep the
    time of the line before them (a traceback's continuation); a line never seen with a time sorts first."""
    merged = []
    for rank in sorted(logs, key=int):
        stamp, order = "", 0
        for line in (logs[rank] or "").splitlines():
            found = _JOURNAL_LINE.match(line)
            if found:
                stamp, message = found.group(1), found.group(2)
            elif line.startswith("-- "):  # journalctl's own notes (-- No entries --, -- Boot ... --)
                continue
            else:
                message = line
            order += 1
            mark = " !!" if _MARKED.search(message) else ""
            merged.append((stamp, int(rank), order, "%s [rank %s]%s %s" % (stamp or "-", rank, mark, message)))
    return [line for _stamp, _rank, _order, line in sorted(merged)]
