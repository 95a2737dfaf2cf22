# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What serves on the Sparks, from the engine containers' labels and state on every node, and whether it is healthy.

Every rank's container is labelled by the role (dgx-spark.role=serving, .model, .config, .rank, .ranks, .port,
.served-name). "The head's container runs and /health answers 200" is not health: measured in the lab, vLLM's API
keeps answering /health after its peer rank died. Healthy means every rank's container runs and a real completion
answers.
"""

from __future__ import annotations

import hashlib
import json

from ansible_collections.dgx_spark.cluster.plugins.module_utils._catalog import SECRET_ENV

# The label every serving container carries (docker ps --filter label=...); the others are dgx-spark.<field>.
SERVING_LABEL = "dgx-spark.role=serving"
# A container a launch set aside (stopped, renamed) until the new model answers, to bring back if it does not.
PARKED = "-previous"


def config_hash(entry, plan_result, settings):
    """A short hash of everything that shapes the running engine (entry, plan, the run settings of the rank argv,
    addresses included); it labels the containers (dgx-spark.config), so any change means a relaunch."""
    # a placement without pipeline stages hashes as before pp was planned (entry pp 1, no pp elsewhere): the same
    # engine, so an upgrade of the collection does not relaunch what serves
    staged = plan_result.get("pp", 1) != 1
    shape = {"entry": entry if staged else dict(entry, pp=1), "tp": plan_result["tp"], "hosts": plan_result["hosts"],
             "settings": dict((k, v) for k, v in settings.items() if k != "config" and (staged or k != "pp"))}
    if staged:
        shape["pp"] = plan_result["pp"]
    blob = json.dumps(shape, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def without_secrets(record):
    """A docker inspect record with the values of secret-named environment variables (the API key) hidden."""
    config = record.get("Config") or {}
    config["Env"] = [entry if not SECRET_ENV.search(entry.partition("=")[0]) else entry.partition("=")[0] + "=********"
                     for entry in config.get("Env") or []]
    return record


def inspected(runner, docker="docker"):
    """docker's inspect records of every serving container on this node (running, stopped or parked), secrets hidden."""
    docker = runner.which(docker, "install docker (DGX OS ships it)")
    ids = runner.check([docker, "ps", "-aq", "--filter", "label=" + SERVING_LABEL], "listing the serving containers").split()
    records = json.loads(runner.check([docker, "inspect"] + ids, "docker inspect")) if ids else []
    return [without_secrets(record) for record in records]


def containers(inspect_json):
    """`docker inspect <containers>` records (its JSON text, empty when there are none, or the parsed list) ->
    [{name, state, exit_code, labels}]."""
    records = inspect_json if isinstance(inspect_json, list) else (
        json.loads(inspect_json) if (inspect_json or "").strip() else [])
    found = []
    for data in records:
        state = data.get("State") or {}
        name = (data.get("Name") or "").lstrip("/")
        found.append({"name": name, "state": state.get("Status"), "exit_code": state.get("ExitCode"),
                      "labels": (data.get("Config") or {}).get("Labels") or {}, "parked": name.endswith(PARKED)})
    return found


def reusable(per_host, plan, config):
    """True when exactly the planned ranks run, each with this configuration's label (nothing else serving).

    per_host: {host: [containers]} from containers()."""
    expected = dict((host, rank) for rank, host in enumerate(plan.get("hosts") or []))
    for host, found in per_host.items():
        running = [c for c in found if c["state"] == "running" and not c["parked"]]
        if host not in expected:
            if running:
                return False
            continue
        matching = [c for c in running if c["labels"].get("dgx-spark.config") == config
                    and c["labels"].get("dgx-spark.rank") == str(expected[host])]
        if len(matching) != 1 or len(running) != 1:
            return False
    return bool(expected) and all(host in per_host for host in expected)


def _int_label(labels, name, default):
    try:
        return int(labels.get(name, default))
    except (TypeError, ValueError):
        return default


def status(per_host, probe=None, unreachable=None):
    """The cluster's serving state.

    per_host: {host: [containers]}; probe: serving_wait's result on the node that holds rank 0 (status of /health,
    None when it did not answer; completion_tokens of the real completion; msg when it failed); unreachable: hosts
    whose containers could not be listed. Returns {state: healthy|broken|stopped|unknown, model, config, served_name,
    port, ranks: [{rank, host, name, state, exit_code}], problems: [str], report: [lines]}.
    """
    probe = probe or {}
    unreachable = sorted(unreachable or [])
    placed = [dict(c, host=host) for host in sorted(per_host) if host not in unreachable for c in per_host[host]
              if not c["parked"]]
    parked = ["%s on %s" % (c["name"], host) for host in sorted(per_host) if host not in unreachable
              for c in per_host[host] if c["parked"]]
    blind = ["%s is unreachable: its containers could not be checked" % host for host in unreachable]
    if not placed:
        return {"state": "unknown" if blind else "stopped", "model": None, "config": None, "served_name": None,
                "port": None, "ranks": [], "problems": blind,
                "report": blind or ["nothing serves: no serving container on any node"]}
    problems = list(blind)
    configs = sorted(set(c["labels"].get("dgx-spark.config", "?") for c in placed))
    if len(configs) > 1:
        problems.append("containers of %d configurations are present (%s): a launch was interrupted"
                        % (len(configs), ", ".join("%s on %s" % (c["name"], c["host"]) for c in placed)))
    first = dict(placed[0]["labels"])
    expected = max(_int_label(c["labels"], "dgx-spark.ranks", 1) for c in placed)
    ranks = []
    for rank in range(expected):
        holders = [c for c in placed if _int_label(c["labels"], "dgx-spark.rank", -1) == rank]
        if not holders:
            ranks.append({"rank": rank, "host": None, "name": None, "state": "absent", "exit_code": None})
            problems.append("rank %d: no container on any %snode" % (rank, "reachable " if unreachable else ""))
            continue
        for holder in holders:
            ranks.append({"rank": rank, "host": holder["host"], "name": holder["name"], "state": holder["state"],
                          "exit_code": holder["exit_code"]})
            if holder["state"] != "running":
                problems.append("rank %d on %s is down: container %s %s (exit code %s)"
                                % (rank, holder["host"], holder["name"], holder["state"], holder["exit_code"]))
    if not problems:
        head = ranks[0]["host"]
        if probe.get("status") != 200:
            problems.append("rank 0 on %s: /health answered %s" % (head, probe.get("status") or "nothing"))
        elif (probe.get("completion_tokens") or 0) < 1:
            problems.append("every rank's container runs and /health answers on %s, but a real completion failed "
                            "(%s): a rank's engine is stuck or the fabric between the ranks is down"
                            % (head, probe.get("msg") or "no tokens"))
    result = {"state": "broken" if problems else "healthy", "model": first.get("dgx-spark.model"),
              "config": configs[0] if len(configs) == 1 else None, "served_name": first.get("dgx-spark.served-name"),
              "port": _int_label(first, "dgx-spark.port", None), "ranks": ranks, "problems": problems}
    result["report"] = (["%(model)s (config %(config)s, served as %(served_name)s on port %(port)s): %(state)s" % result]
                        + ["rank %(rank)d on %(host)s: %(name)s %(state)s" % rank for rank in ranks] + problems
                        + (["set aside by a launch that has not ended (kept to bring back): %s" % ", ".join(parked)]
                           if parked else []))
    return result


def first_hosts(per_host):
    """The hosts whose serving container starts before the others' (label dgx-spark.first=1): where a switch that
    fails brings the previous model back first. per_host: {host: [containers]} from containers()."""
    return sorted(host for host, found in per_host.items()
                  if any(c["labels"].get("dgx-spark.first") == "1" for c in found))
