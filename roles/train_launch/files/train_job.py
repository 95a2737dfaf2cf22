"""A training run's helper on the nodes (the train_launch role installs it as /usr/local/lib/dgx-spark/train_job.py).

  result FILE               ExecStopPost of a rank's unit: what the rank ended with (systemd's SERVICE_RESULT,
                            EXIT_CODE, EXIT_STATUS) into FILE, as JSON.
  probe ID UNIT FILE N PORT (root) one rank on this node as JSON: its unit's state, how many of the run's worker
                            processes run (torchrun gives them TORCHELASTIC_RUN_ID=ID), its result, N journal lines
                            and, PORT not 0, the addresses connected to the rendezvous on that local port.
  window RECORD SECONDS     (head, the admin user) waits until every rank of the run has started its workers, one
                            has ended, or SECONDS passed; prints each rank's probe.
  watch RECORD              (head, the admin user; a unit of its own) the run's watcher: when a rank ends with a
                            failure it stops every other rank and marks the run failed, naming the rank; when every
                            rank succeeded it marks the run succeeded.
  mark RECORD STATE [WHY]   sets the run's state (stopped, failed, running) unless it already ended.
  status RECORD N           (head, the admin user) the record, every rank's probe with N journal lines, and whether
                            the watcher runs.
  runs DIR                  the runs whose record is under DIR: id, job, state, started, ranks, and whether it is
                            live (starting or running with its watcher active).
  stop UNIT...              (root) stops the units that are active; prints those it stopped.

RECORD is the run's JSON record on the head (the role writes it): {id, state, ranks: [{rank, host, address, unit,
result_file, local}], ...}. Other nodes are reached over SSH on the fabric as the admin user, whose sudo runs probe
and systemctl without a password, as for the serving watchdog.
"""

import fcntl
import json
import os
import shlex
import subprocess
import sys
import time

HELPER = os.path.abspath(__file__)
TAIL_LINES = 200
ENDED = ("succeeded", "failed", "stopped")


def result(path):
    found = {"result": os.environ.get("SERVICE_RESULT", ""), "exit_code": os.environ.get("EXIT_CODE", ""),
             "exit_status": os.environ.get("EXIT_STATUS", ""), "ended": time.time()}
    with open(path + ".tmp", "w") as handle:
        json.dump(found, handle)
    os.replace(path + ".tmp", path)


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _workers(run_id):
    wanted = ("TORCHELASTIC_RUN_ID=%s" % run_id).encode()
    count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as handle:
                if wanted in handle.read().split(b"\0"):
                    count += 1
        except OSError:
            continue
    return count


def _rendezvous_peers(port, tables=("/proc/net/tcp", "/proc/net/tcp6")):
    """The IPv4 addresses with an established TCP connection to this node's local port (the rendezvous store)."""
    peers = set()
    for table in tables:
        try:
            with open(table) as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if state != "01" or int(local.rsplit(":", 1)[1], 16) != port:
                continue
            address = remote.rsplit(":", 1)[0][-8:]  # the IPv4 part (an IPv4-mapped address ends with it in tcp6)
            peers.add(".".join(str(int(address[index:index + 2], 16)) for index in (6, 4, 2, 0)))
    return sorted(peers)


def probe(run_id, unit, path, lines=0, port=0):
    state = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True, check=False)
    found = {"active": state.stdout.strip() or "unknown", "workers": _workers(run_id), "result": _read_json(path)}
    if port:
        found["rendezvous_peers"] = _rendezvous_peers(port)
    if lines:
        # the rank's own output, without systemd's lines about its unit
        journal = subprocess.run(["journalctl", "_SYSTEMD_UNIT=" + unit, "-n", str(lines), "-o", "cat", "--no-pager"],
                                 capture_output=True, text=True, check=False)
        found["tail"] = [line for line in journal.stdout.splitlines() if not line.startswith("-- ")]
    return found


def _on_node(rank, command):
    if rank["local"]:
        return command
    return ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", rank["address"], shlex.join(command)]


def _run_all(commands, timeout):
    """Runs the commands at once; their (rc, stdout) in order."""
    started = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
               for command in commands]
    out = []
    for process in started:
        try:
            stdout, _stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, _stderr = process.communicate()
        out.append((process.returncode, stdout))
    return out


def probe_all(record, lines=0, ranks=None):
    """Every rank's probe (or those of `ranks`), at once, with their last `lines` journal lines."""
    ranks = record["ranks"] if ranks is None else ranks
    commands = [_on_node(rank, ["sudo", "-n", "/usr/bin/python3", HELPER, "probe", record["id"], rank["unit"],
                                rank["result_file"], str(lines), str(record["master_port"] if rank["rank"] == 0 else 0)])
                for rank in ranks]
    states = []
    for rank, (code, stdout) in zip(ranks, _run_all(commands, 30)):
        try:
            found = json.loads(stdout)
        except ValueError:
            found = {"active": "unreachable", "workers": 0, "result": None, "probe_rc": code}
        states.append(dict(found, rank=rank["rank"], host=rank["host"], address=rank["address"]))
    return states


def _locked_update(path, change):
    """Applies change(record) -> record or None under the record's lock; returns the record as it ends up."""
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = _read_json(path)
        changed = change(record)
        if changed is not None:
            with open(path + ".tmp", "w") as handle:
                json.dump(changed, handle, indent=1, sort_keys=True)
            os.replace(path + ".tmp", path)
            record = changed
        return record


def mark(path, state, why="", **fields):
    def change(record):
        if record is None or record.get("state") in ENDED:
            return None
        return dict(record, state=state, reason=why or record.get("reason"), updated=time.time(), **fields)
    return _locked_update(path, change)


def _started(state):
    return state["workers"] > 0 or (state["result"] or {}).get("result") == "success"


def _failed(state):
    return state["result"] is not None and state["result"].get("result") != "success"


def window(path, seconds):
    record = _read_json(path)
    deadline = time.monotonic() + seconds
    while True:
        states = probe_all(record)
        if all(_started(state) for state in states) or any(_failed(state) for state in states) \
                or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    late = [state["rank"] for state in states if not _started(state)]
    if late:
        states = probe_all(record, 15)
    print(json.dumps({"started": not late, "late": late, "ranks": states, "master_addr": record["master_addr"],
                      "master_port": record["master_port"]}))


def stop_ranks(record, ranks):
    commands = [_on_node(rank, ["sudo", "-n", "systemctl", "stop", rank["unit"]]) for rank in ranks]
    _run_all(commands, 60)


def watch(path, interval=1.0):
    gone = {}
    while True:
        record = _read_json(path)
        if record is None or record.get("state") in ENDED:
            return
        states = probe_all(record)
        failed = sorted((state for state in states if _failed(state)), key=lambda state: state["result"]["ended"])
        for state in states:  # a unit that is gone without a result (the node rebooted, the unit was reset)
            missing = state["active"] not in ("active", "activating", "deactivating", "reloading") \
                and state["result"] is None and state["active"] != "unreachable"
            gone[state["rank"]] = gone.get(state["rank"], 0) + 1 if missing else 0
        if not failed:
            lost = [rank for rank, count in sorted(gone.items()) if count >= 3]
            if lost:
                failed = [dict(state, result={"result": "gone", "exit_code": "", "exit_status": "", "ended": time.time()})
                          for state in states if state["rank"] == lost[0]]
        if failed:
            first = failed[0]
            detected = time.time()
            failure = {"rank": first["rank"], "host": first["host"], "result": first["result"]["result"],
                       "exit_code": first["result"]["exit_code"], "exit_status": first["result"]["exit_status"],
                       "ended": first["result"]["ended"], "detected": detected}
            if mark(path, "failed", "rank %d (%s) ended: %s %s" % (first["rank"], first["host"], failure["exit_code"],
                                                                   failure["exit_status"]),
                    failure=failure).get("failure") != failure:
                return  # the run had ended another way meanwhile (stopped)
            others = [rank for rank, state in zip(record["ranks"], states) if not _failed(state)]
            stop_ranks(record, others)
            stopped_after = round(time.time() - detected, 2)
            # the failed rank's last lines (torchrun's report) kept with the run, for status after the journal rotates
            tail = probe_all(record, TAIL_LINES, [rank for rank in record["ranks"] if rank["rank"] == first["rank"]])
            _locked_update(path, lambda current: dict(current, ended=time.time(), others_stopped_after=stopped_after,
                                                      failure=dict(current["failure"], tail=tail[0].get("tail", []))))
            return
        if all(state["result"] is not None for state in states):
            mark(path, "succeeded", "every rank ended with exit code 0", ended=time.time())
            return
        time.sleep(interval)


def _is_active(unit):
    state = subprocess.run(["systemctl", "is-active", unit or "none"], capture_output=True, text=True, check=False)
    return state.stdout.strip() == "active"


def runs(state_dir):
    found = []
    for name in sorted(os.listdir(state_dir)) if os.path.isdir(state_dir) else []:
        record = _read_json(os.path.join(state_dir, name, "job.json"))
        if not isinstance(record, dict) or "id" not in record:
            continue
        ranks = record.get("ranks") or [{}]
        found.append({"id": record["id"], "job": record.get("job"), "state": record.get("state"),
                      "started": record.get("started"), "ranks": ranks, "host": ranks[0].get("host"),
                      "live": record.get("state") in ("starting", "running") and _is_active(record.get("watcher"))})
    return found


def stop(units):
    stopped = []
    for unit in units:
        state = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True, check=False)
        if state.stdout.strip() in ("active", "activating", "deactivating", "reloading"):
            subprocess.run(["systemctl", "stop", unit], check=False)
            stopped.append(unit)
    return stopped


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command == "result" and len(argv) == 3:
        result(argv[2])
    elif command == "probe" and len(argv) == 7:
        print(json.dumps(probe(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]))))
    elif command == "window" and len(argv) == 4:
        window(argv[2], float(argv[3]))
    elif command == "watch" and len(argv) == 3:
        watch(argv[2])
    elif command == "status" and len(argv) == 4:
        record = _read_json(argv[2])
        print(json.dumps({"record": record, "ranks": probe_all(record, int(argv[3])) if record else [],
                          "watcher": _is_active(record["watcher"]) if record else None}))
    elif command == "runs" and len(argv) == 3:
        print(json.dumps(runs(argv[2])))
    elif command == "stop" and len(argv) >= 3:
        print(json.dumps(stop(argv[2:])))
    elif command == "mark" and len(argv) in (4, 5):
        print(json.dumps(mark(argv[2], argv[3], argv[4] if len(argv) == 5 else "")))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
