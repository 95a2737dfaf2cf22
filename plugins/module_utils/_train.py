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

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _catalog, _engine_argv, _validate

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


# ------------------------------------------------------------------ a job: catalog entry, ranks, units
JOB_FIELDS = ("description", "script", "args", "workdir", "venv", "pixi", "image", "nproc_per_node", "nodes",
              "master_port", "env")
ENVIRONMENTS = ("venv", "pixi", "image")
# What the role sets for every rank (the fabric, torchrun's rendezvous): not a job's to set.
ROLE_ENV = _catalog.ROLE_ENV + ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                                "GROUP_RANK", "NODE_RANK", "TORCHELASTIC_RUN_ID", "LOGLEVEL")
UNIT_PREFIX = "dgx-spark-train-"


def _job_rule(key, field, value, kind):
    found = _validate.problem(field, value, kind)
    if found:
        raise _catalog.CatalogError("job %s: %s" % (key, found))


def validate_job(key, entry):
    """A training job of the catalog, checked field by field -> the entry with its defaults: {key, description,
    script, args, workdir (None: the run's own directory), environment {kind: venv|pixi|image, ...},
    nproc_per_node, nodes (None: every node of the play), master_port, env}. CatalogError names the job, the field
    and the rule."""
    found = _validate.problem("job", key, "key", _catalog.PATTERNS)
    if found:
        raise _catalog.CatalogError(found)
    if not isinstance(entry, dict):
        raise _catalog.CatalogError("job %s: the entry must be a mapping, got %r" % (key, entry))
    unknown = sorted(set(entry) - set(JOB_FIELDS))
    if unknown:
        raise _catalog.CatalogError("job %s: unknown field(s) %s (known: %s)"
                                    % (key, ", ".join(unknown), ", ".join(JOB_FIELDS)))
    _job_rule(key, "script", entry.get("script"), "path")
    args = entry.get("args", [])
    if not isinstance(args, list) or len(args) > 64:
        raise _catalog.CatalogError("job %s: args must be a list of at most 64 arguments, got %r" % (key, args))
    out_args = []
    for index, arg in enumerate(args):
        if isinstance(arg, bool) or not isinstance(arg, (str, int, float)):
            raise _catalog.CatalogError("job %s: args[%d] %r is not allowed: must be a string or a number"
                                        % (key, index, arg))
        _job_rule(key, "args[%d]" % index, str(arg), "arg_value")
        out_args.append(str(arg))
    if entry.get("workdir") is not None:
        _job_rule(key, "workdir", entry["workdir"], "path")
    kinds = [kind for kind in ENVIRONMENTS if entry.get(kind) is not None]
    if len(kinds) != 1:
        raise _catalog.CatalogError("job %s: give exactly one Python environment of venv (a virtualenv path), pixi "
                                    "({manifest, environment}) or image (a container image); got %s"
                                    % (key, ", ".join(kinds) or "none"))
    kind = kinds[0]
    if kind == "venv":
        _job_rule(key, "venv", entry["venv"], "path")
        environment = {"kind": "venv", "venv": entry["venv"]}
    elif kind == "pixi":
        pixi = entry["pixi"]
        if not isinstance(pixi, dict) or set(pixi) - {"manifest", "environment"}:
            raise _catalog.CatalogError("job %s: pixi must be {manifest: <pixi.toml path>, environment: <name>}, "
                                        "got %r" % (key, pixi))
        _job_rule(key, "pixi.manifest", pixi.get("manifest"), "path")
        _job_rule(key, "pixi.environment", pixi.get("environment", "default"), "pixi_env")
        environment = {"kind": "pixi", "manifest": pixi["manifest"], "environment": pixi.get("environment", "default")}
    else:
        _job_rule(key, "image", entry["image"], "image")
        environment = {"kind": "image", "image": entry["image"]}
    nproc = entry.get("nproc_per_node", 1)
    if isinstance(nproc, bool) or not isinstance(nproc, int) or not 1 <= nproc <= 8:
        raise _catalog.CatalogError("job %s: nproc_per_node %r is not allowed: must be an integer 1..8" % (key, nproc))
    nodes = entry.get("nodes")
    if nodes is not None:
        if not isinstance(nodes, list) or not nodes:
            raise _catalog.CatalogError("job %s: nodes must be a non-empty list of inventory hosts, got %r"
                                        % (key, nodes))
        for index, node in enumerate(nodes):
            _job_rule(key, "nodes[%d]" % index, node, "host")
    port = entry.get("master_port", 29500)
    found = _validate.problem("master_port", port, "unprivileged_port")
    if found:
        raise _catalog.CatalogError("job %s: %s" % (key, found))
    return {"key": key, "description": str(entry.get("description", "")), "script": entry["script"],
            "args": out_args, "workdir": entry.get("workdir"), "environment": environment, "nproc_per_node": nproc,
            "nodes": list(nodes) if nodes else None, "master_port": port,
            "env": _catalog.validated_env("job %s" % key, entry.get("env", {}), ROLE_ENV)}


def job_entry(catalog, key, overrides=None):
    """The validated job `key` of the shipped catalog merged with the inventory's (same keys, field by field)."""
    merged = dict(catalog or {})
    for name, entry in (overrides or {}).items():
        merged[name] = dict(merged.get(name, {}), **entry) if isinstance(entry, dict) else entry
    if not isinstance(key, str) or key not in merged:
        if isinstance(key, str):
            found = _validate.problem("job", key, "key", _catalog.PATTERNS)
            if found:
                raise _catalog.CatalogError(found)
        raise _catalog.CatalogError("job %r is not in the training catalog (known: %s)"
                                    % (key, ", ".join(sorted(merged))))
    return validate_job(key, merged[key])


def unit_name(job_id, rank=None):
    """The transient systemd unit of one node's torchrun (rank is the node rank) or, rank None, the job's watcher."""
    return "%s%s-%s.service" % (UNIT_PREFIX, job_id, "watch" if rank is None else "r%d" % int(rank))


def torchrun_argv(job, job_id, rank, nnodes, master_addr, settings):
    """The command of one node rank: torchrun from the job's environment (venv, pixi or a container run with host
    networking, the fabric's devices and the work directory), then the script and its arguments."""
    torchrun = ["torchrun", "--nnodes", str(nnodes), "--node_rank", str(rank),
                "--nproc_per_node", str(job["nproc_per_node"]), "--master_addr", master_addr,
                "--master_port", str(job["master_port"]), "--rdzv-id", job_id, job["script"]] + job["args"]
    environment = job["environment"]
    if environment["kind"] == "venv":
        return [environment["venv"].rstrip("/") + "/bin/torchrun"] + torchrun[1:]
    if environment["kind"] == "pixi":
        return ["pixi", "run", "--manifest-path", environment["manifest"], "-e", environment["environment"]] + torchrun
    argv = ["docker", "run", "--rm", "--name", unit_name(job_id, rank)[:-len(".service")], "--network", "host",
            "--ipc", "host", "--label", "dgx-spark.train=%s" % job_id]
    if settings.get("gpus"):
        argv += ["--gpus", settings["gpus"]]
    for device in settings.get("devices", []):
        argv += ["--device", device]
    for name, value in sorted(rank_env(job, rank, settings).items()):
        argv += ["-e", "%s=%s" % (name, value)]
    workdir = settings["workdir"]
    return argv + ["-v", "%s:%s" % (workdir, workdir), "-w", workdir, environment["image"]] + torchrun


def rank_env(job, rank, settings):
    """The environment of one node rank: the job's, then the fabric's (NCCL, Gloo, UCX and OpenMPI on the fabric
    interface, both RDMA twins), which the job cannot override."""
    return dict(job["env"], **_engine_argv.fabric_env(settings))


def systemd_run_argv(job, job_id, rank, nnodes, master_addr, settings):
    """`systemd-run` starting one node rank as a transient unit: detached from the controller's connection, its
    output in the journal, run as settings.user (a container rank as root, for docker), collected when it ends;
    what it ended with goes to its result file (train_job.py result). settings: {user, workdir, result_file,
    helper, fabric_interface, rdma_devices, gpus, devices}; systemd sets HOME and USER from the user."""
    unit = unit_name(job_id, rank)
    argv = ["systemd-run", "--unit", unit, "--description",
            "dgx_spark.cluster training %s rank %d" % (job_id, rank), "--collect",
            "--property", "KillMode=mixed", "--property", "TimeoutStopSec=20",
            "--property", "ExecStopPost=/usr/bin/python3 %s result %s" % (settings["helper"], settings["result_file"]),
            "--working-directory", settings["workdir"]]
    if job["environment"]["kind"] == "image":
        argv += ["--property", "ExecStopPost=-/usr/bin/docker rm -f %s" % unit[:-len(".service")]]
    else:
        argv += ["--uid", settings["user"]]
        for name, value in sorted(rank_env(job, rank, settings).items()):
            argv += ["--setenv", "%s=%s" % (name, value)]
    return argv + ["--"] + torchrun_argv(job, job_id, rank, nnodes, master_addr, settings)


def job_ranks(job, job_id, hosts, addresses, settings):
    """Every node rank of a run, head first (rank 0, the rendezvous at its fabric address): [{rank, host, address,
    unit, result_file, local (on the head, where the watcher runs), command (what systemd-run starts)}]. settings as systemd_run_argv's, with users (the run's
    user on each host, in host order) for user, run_dir for result_file."""
    ranks = []
    for rank, (host, address) in enumerate(zip(hosts, addresses)):
        own = dict(settings, user=settings["users"][rank],
                   result_file="%s/rank-%d.json" % (settings["run_dir"], rank))
        ranks.append({"rank": rank, "host": host, "address": address, "unit": unit_name(job_id, rank),
                      "result_file": own["result_file"], "local": rank == 0,
                      "command": systemd_run_argv(job, job_id, rank, len(hosts), addresses[0], own)})
    return ranks


# ------------------------------------------------------------------ a run as status shows it
RUN_ENDED = ("succeeded", "failed", "stopped")


def _rank_state(probe, record):
    """A rank's state; one that ended after the run failed because of another rank was stopped by the watcher."""
    result, failure = probe.get("result"), record.get("failure") or {}
    if result is not None:
        if result.get("result") == "success":
            return "succeeded"
        stopped_by_watcher = failure and probe.get("rank") != failure.get("rank") \
            and result.get("ended", 0) >= failure.get("detected", float("inf"))
        return "stopped" if record.get("state") == "stopped" or stopped_by_watcher else "failed"
    if probe.get("active") in ("active", "activating", "deactivating", "reloading"):
        return "running" if probe.get("workers", 0) > 0 else "starting"
    if probe.get("active") == "unreachable":
        return "unreachable"
    return "not running"


def run_view(status, straggler_steps):
    """The helper's `status` answer ({record, ranks: [probe + rank, host], watcher}) -> {id, job, state (the record's;
    lost when it says starting or running but its watcher is gone), reason, started,
    ended, gate, failure, ranks: [{rank, host, state, step, loss, result, exit_code, exit_status}], stragglers,
    root_cause}: each rank's last step and loss from its log, the stragglers among running ranks, and for a failed
    run the cause from torchrun's report in the failed rank's log (torchrun_failure), when it printed one (the log's
    last lines the watcher kept in the record when the journal no longer has them)."""
    record = status.get("record") or {}
    state, reason = record.get("state", "unknown"), record.get("reason")
    if state in ("starting", "running") and status.get("watcher") is False:
        state, reason = "lost", ("its watcher is not running (a node rebooted, or it was stopped by hand): the ranks "
                                 "are not watched; train_stop.yml ends what is left")
    ranks = []
    for probe in status.get("ranks", []):
        found = progress("\n".join(probe.get("tail") or []))
        result = probe.get("result") or {}
        ranks.append({"rank": probe.get("rank"), "host": probe.get("host"), "state": _rank_state(probe, record),
                      "step": found["step"], "loss": found["loss"], "result": result.get("result"),
                      "exit_code": result.get("exit_code"), "exit_status": result.get("exit_status")})
    running = dict((rank["rank"], rank["step"]) for rank in ranks if rank["state"] == "running")
    failure = record.get("failure")
    root_cause = None
    if failure:
        failed = next((probe for probe in status.get("ranks", []) if probe.get("rank") == failure.get("rank")), {})
        root_cause = torchrun_failure("\n".join(failed.get("tail") or failure.get("tail") or []))
    return {"id": record.get("id"), "job": record.get("job"), "state": state, "reason": reason,
            "started": record.get("started"), "ended": record.get("ended"), "gate": record.get("gate"),
            "failure": failure, "others_stopped_after": record.get("others_stopped_after"), "ranks": ranks,
            "stragglers": stragglers(running, straggler_steps) if len(running) > 1 else [],
            "root_cause": root_cause}


def view_lines(view):
    """One line per rank, as train.yml's follow and train_status.yml print them."""
    lines = []
    for rank in view["ranks"]:
        where = "rank %s (%s): %s" % (rank["rank"], rank["host"], rank["state"])
        if rank["step"] is not None:
            where += ", step %d" % rank["step"] + (", loss %g" % rank["loss"] if rank["loss"] is not None else "")
        if rank["state"] in ("failed", "stopped") and rank["exit_code"]:
            where += " (%s %s)" % (rank["exit_code"], rank["exit_status"])
        if rank["rank"] in view["stragglers"]:
            where += " - straggler"
        lines.append(where)
    return lines


def _last_line(text):
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else "no output"


def start_problem(hosts, starts, watch, window, seconds):
    """What kept a run from starting, in one sentence ('' when every rank started within the window): the nodes
    whose systemd-run failed, a watcher that did not start, or each rank late for the start window with its state
    and last log lines. starts: each host's systemd-run result; watch, window: the head's results (None or skipped
    when they did not run)."""
    failed = ["%s (%s)" % (host, _last_line(start.get("stderr"))) for host, start in zip(hosts, starts)
              if start.get("rc") != 0]
    if failed:
        return "the rank unit did not start on " + ", ".join(failed)
    if (watch or {}).get("rc") != 0:
        return "the watcher did not start on the head (%s)" % _last_line((watch or {}).get("stderr"))
    found = json.loads((window or {}).get("stdout") or "{}")
    ranks = [rank for rank in found.get("ranks", []) if rank["rank"] in found.get("late", [])]
    joined = (found.get("ranks") or [{}])[0].get("rendezvous_peers")
    absent = [rank["rank"] for rank in ranks if rank["rank"] > 0 and not rank.get("result") and joined is not None
              and rank.get("address") not in joined]
    late = []
    for rank in sorted(ranks, key=lambda rank: (rank["rank"] not in absent, rank["rank"])):
        result = rank.get("result")
        if result:
            state = "ended (%s %s) before its training processes started" % (
                result.get("exit_code"), result.get("exit_status"))
        elif rank["rank"] in absent:
            state = "never reached the rendezvous on rank 0 (%s:%s) within %s s" % (
                found.get("master_addr"), found.get("master_port"), seconds)
        elif rank["rank"] == 0 and absent and rank.get("active") == "active":
            state = "waited at the rendezvous for rank %s" % ", ".join(str(number) for number in absent)
        elif rank.get("active") == "active":
            state = "did not start its training processes within %s s" % seconds
        else:
            state = "is %s" % rank.get("active")
        tail = [line for line in rank.get("tail") or [] if line.strip()][-5:]
        late.append("rank %s (%s) %s; last lines: %s" % (rank["rank"], rank["host"], state,
                                                         " / ".join(tail) if tail else "(no output)"))
    return "; ".join(late)
