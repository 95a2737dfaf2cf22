"""The training helper on the nodes (roles/train_launch/files/train_job.py): what a rank's end is recorded as, who
reached the rendezvous, and the watcher's decisions (a failed rank stops the others, a stopped run is left alone)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

PROGRAM = Path(__file__).resolve().parents[3] / "roles" / "train_launch" / "files" / "train_job.py"
SPEC = importlib.util.spec_from_file_location("train_job", PROGRAM)
helper = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(helper)

RANKS = [{"rank": 0, "host": "spark-2959", "address": "10.10.10.1", "unit": "u0", "result_file": "/r0", "local": True},
         {"rank": 1, "host": "spark-ba63", "address": "10.10.10.2", "unit": "u1", "result_file": "/r1", "local": False}]


def write_record(tmp_path, **fields):
    path = tmp_path / "job.json"
    path.write_text(json.dumps(dict({"id": "r", "state": "running", "ranks": RANKS, "master_port": 29500}, **fields)))
    return str(path)


def refuse(what):
    def call(*args, **kwargs):
        raise AssertionError("%s: %r %r" % (what, args, kwargs))
    return call


def states(*results):
    return [{"rank": index, "host": RANKS[index]["host"], "active": "inactive" if result else "active",
             "workers": 0 if result else 1, "result": result} for index, result in enumerate(results)]


def test_a_ranks_end_is_what_systemd_passes_to_execstoppost(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVICE_RESULT", "exit-code")
    monkeypatch.setenv("EXIT_CODE", "killed")
    monkeypatch.setenv("EXIT_STATUS", "KILL")
    helper.result(str(tmp_path / "rank-1.json"))
    found = json.loads((tmp_path / "rank-1.json").read_text())
    assert (found["result"], found["exit_code"], found["exit_status"]) == ("exit-code", "killed", "KILL")


def test_the_rendezvous_peers_are_the_established_connections_to_the_master_port(tmp_path):
    table = tmp_path / "tcp"
    table.write_text(  # /proc/net/tcp: local and remote address:port in hex (little-endian IPv4), state 01 ESTABLISHED
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 00000000:733C 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1\n"
        "   1: 010A0A0A:733C 020A0A0A:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 2 1\n"
        "   2: 010A0A0A:733C 010A0A0A:A1B4 01 00000000:00000000 00:00000000 00000000  1000        0 3 1\n"
        "   3: 010A0A0A:0016 030A0A0A:D000 01 00000000:00000000 00:00000000 00000000     0        0 4 1\n")
    assert helper._rendezvous_peers(29500, [str(table)]) == ["10.10.10.1", "10.10.10.2"]
    assert helper._rendezvous_peers(29501, [str(table)]) == []


def test_a_failed_rank_stops_the_others_and_the_run_is_failed_naming_it(tmp_path, monkeypatch):
    path = write_record(tmp_path)
    failed = {"result": "exit-code", "exit_code": "exited", "exit_status": "1", "ended": 10.0}
    looks = []

    def probe_all(record, lines=0, ranks=None):
        looks.append((lines, [rank["rank"] for rank in ranks or record["ranks"]]))
        found = states(None, failed)
        return [dict(found[1], tail=["ChildFailedError"])] if ranks else found
    monkeypatch.setattr(helper, "probe_all", probe_all)
    stopped = []
    monkeypatch.setattr(helper, "stop_ranks", lambda record, ranks: stopped.extend(rank["rank"] for rank in ranks))
    helper.watch(path, interval=0)
    record = json.loads(Path(path).read_text())
    assert record["state"] == "failed" and record["failure"]["rank"] == 1 and record["failure"]["host"] == "spark-ba63"
    assert record["reason"] == "rank 1 (spark-ba63) ended: exited 1" and stopped == [0]
    assert record["others_stopped_after"] >= 0
    assert looks[-1] == (200, [1]) and record["failure"]["tail"] == ["ChildFailedError"]  # kept for later


def test_every_rank_succeeded_marks_the_run_succeeded(tmp_path, monkeypatch):
    path = write_record(tmp_path)
    done = {"result": "success", "exit_code": "exited", "exit_status": "0", "ended": 10.0}
    looks = iter([states(None, done), states(done, done)])
    monkeypatch.setattr(helper, "probe_all", lambda record, lines=0, ranks=None: next(looks))
    monkeypatch.setattr(helper, "stop_ranks", refuse("stopped"))
    helper.watch(path, interval=0)
    assert json.loads(Path(path).read_text())["state"] == "succeeded"


def test_a_rank_gone_without_a_result_fails_the_run_after_three_looks(tmp_path, monkeypatch):
    path = write_record(tmp_path)
    gone = states(None, None)
    gone[1]["active"] = "inactive"
    monkeypatch.setattr(helper, "probe_all", lambda record, lines=0, ranks=None: gone)
    monkeypatch.setattr(helper, "stop_ranks", lambda record, ranks: None)
    helper.watch(path, interval=0)
    record = json.loads(Path(path).read_text())
    assert record["state"] == "failed" and record["failure"]["rank"] == 1 and record["failure"]["result"] == "gone"


def test_a_stopped_run_is_left_alone_and_an_ended_run_is_not_marked_again(tmp_path, monkeypatch):
    path = write_record(tmp_path, state="stopped")
    monkeypatch.setattr(helper, "probe_all", refuse("probed"))
    helper.watch(path, interval=0)
    assert helper.mark(path, "failed", "late")["state"] == "stopped"
    assert json.loads(Path(path).read_text())["state"] == "stopped"
