"""The serving watchdog's program (roles/model_serving/files/serving_watchdog.py): what it calls a failure, the
order it restarts a rank group in, and that it gives up after its bounded restarts."""

from __future__ import annotations

import http.server
import importlib.util
import json
import threading
from pathlib import Path

import pytest

PROGRAM = Path(__file__).resolve().parents[3] / "roles" / "model_serving" / "files" / "serving_watchdog.py"
SPEC = importlib.util.spec_from_file_location("serving_watchdog", PROGRAM)
watchdog = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(watchdog)

RANKS = [{"rank": 0, "address": "10.10.10.1", "container": "dgx-spark-serve-m-r0", "local": True, "first": False},
         {"rank": 1, "address": "10.10.10.2", "container": "dgx-spark-serve-m-r1", "local": False, "first": True}]


@pytest.fixture
def api():
    """An engine API on 127.0.0.1: answers[0] is the next /v1/completions reply (status, body)."""
    answers = [(200, {"choices": [{"text": " x"}]})]

    class Engine(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers["Content-Length"]))
            status, body = answers[0]
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            return

    server = http.server.HTTPServer(("127.0.0.1", 0), Engine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, answers
    server.shutdown()


def config(tmp_path, port, **extra):
    return dict({"model": "m", "served_name": "m", "port": port, "interval": 0, "failures": 2, "probe_timeout": 5,
                 "start_timeout": 0, "max_restarts": 1, "window": 3600, "backoff": 0, "ranks": RANKS,
                 "status_file": str(tmp_path / "status.json")}, **extra)


def test_only_a_real_completion_counts(api, tmp_path):
    port, answers = api
    assert watchdog.probe(config(tmp_path, port)) is None
    answers[0] = (200, {"choices": []})
    assert watchdog.probe(config(tmp_path, port)) == "the completion had no choices"
    answers[0] = (500, {"error": "EngineCore encountered an issue"})
    assert watchdog.probe(config(tmp_path, port)).startswith("no completion: HTTP Error 500")


def test_a_rank_on_another_node_is_asked_over_ssh_with_one_quoted_command(fake_tool, tmp_path):
    fake_tool("docker", "true\n")
    ssh = fake_tool("ssh", "false\n")
    assert watchdog.ranks_down(config(tmp_path, 1)) == ["rank 1 (dgx-spark-serve-m-r1) is not running"]
    [call] = Path(str(ssh) + ".argv").read_text().splitlines()
    assert call == "-o BatchMode=yes -o ConnectTimeout=5 10.10.10.2 docker inspect -f '{{.State.Running}}' " \
                   "dgx-spark-serve-m-r1"


def test_a_group_that_stays_down_is_restarted_in_order_then_stopped_and_reported(api, fake_tool, tmp_path):
    port, answers = api
    answers[0] = (503, {"error": "down"})
    fake_tool("docker", "false\n")
    sudo = fake_tool("sudo")
    ssh = fake_tool("ssh", "false\n")
    cfg = config(tmp_path, port)
    (tmp_path / "watchdog.json").write_text(json.dumps(cfg))
    watchdog.sys.argv = ["serving_watchdog.py", str(tmp_path / "watchdog.json")]
    watchdog.main()  # returns once it gives up
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "gave up" and len(status["restarts"]) == 1
    assert "1 restarts within 3600 s did not help, every rank stopped" in status["last_problem"]
    local = Path(str(sudo) + ".argv").read_text().splitlines()
    remote = [line.split(" ", 5)[5] for line in Path(str(ssh) + ".argv").read_text().splitlines()
              if "systemctl" in line]
    # the restart: others (the head) stopped first, then the worker; the worker started first, then the head;
    # giving up stops both
    assert local == ["-n systemctl stop dgx-spark-serving@dgx-spark-serve-m-r0.service",
                     "-n systemctl --no-block start dgx-spark-serving@dgx-spark-serve-m-r0.service",
                     "-n systemctl stop dgx-spark-serving@dgx-spark-serve-m-r0.service"]
    assert remote == ["sudo -n systemctl stop dgx-spark-serving@dgx-spark-serve-m-r1.service",
                      "sudo -n systemctl --no-block start dgx-spark-serving@dgx-spark-serve-m-r1.service",
                      "sudo -n systemctl stop dgx-spark-serving@dgx-spark-serve-m-r1.service"]
