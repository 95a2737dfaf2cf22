"""Shared test helpers: recorded tool outputs and a harness that runs a module's main()."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Outside ansible-test, import the collection through the link `make setup` creates.
_LINKED = ROOT / ".collections"
if _LINKED.is_dir() and str(_LINKED) not in sys.path:
    sys.path.insert(0, str(_LINKED))

from ansible_collections.dgx_spark.cluster.tests.unit.recorded import fixture_body, fixture_files  # noqa: E402


@pytest.fixture(name="fixture_body")
def fixture_body_fixture():
    """fixture_body(relpath) -> the recorded output of tests/fixtures/<relpath>."""
    return fixture_body


@pytest.fixture(name="fixture_files")
def fixture_files_fixture():
    """fixture_files(subdir) -> the fixture paths under tests/fixtures/<subdir>."""
    return fixture_files


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super().__init__(result.get("msg", ""))
        self.result = result
        self.failed = failed


def run_module(main, args, monkeypatch):
    """Run a module's main() with args; returns (result dict, failed)."""
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    warned = []  # module.warn()'s, in the result as ansible returns them

    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        if warned:
            kwargs["warnings"] = list(warned)
        raise ModuleExit(kwargs, False)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        if warned:
            kwargs["warnings"] = list(warned)
        raise ModuleExit(kwargs, True)

    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning: warned.append(warning))
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    with patch_module_args(args):
        try:
            main()
        except ModuleExit as exc:
            json.dumps(exc.result)  # what a module returns must serialise
            return exc.result, exc.failed
    raise AssertionError("module returned without exit_json/fail_json")


@pytest.fixture
def module_runner(monkeypatch):
    return lambda main, args: run_module(main, args, monkeypatch)


@pytest.fixture
def fake_tool(tmp_path, monkeypatch):
    """Put an executable `name` on PATH that prints a fixture's output (or text) and exits with rc.

    It records its argv, one line per call, in <name>.argv beside it.
    """
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", "%s%s%s" % (bindir, os.pathsep, os.environ.get("PATH", "")))

    def make(name, output="", rc=0, stderr=""):
        out_file = bindir / (name + ".out")
        err_file = bindir / (name + ".err")
        out_file.write_text(output)
        err_file.write_text(stderr)
        script = bindir / name
        script.write_text(
            "#!/bin/sh\n"
            'printf "%%s\\n" "$*" >> "%s.argv"\n'
            'cat "%s"\ncat "%s" >&2\nexit %d\n' % (script, out_file, err_file, rc))
        script.chmod(script.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
        return script

    return make


def recorded_json(fixture_body, relpath):
    return next(line for line in fixture_body(relpath).splitlines() if line.startswith("{"))


@pytest.fixture
def api(fixture_body):
    """An engine's API on 127.0.0.1 answering with the recorded vLLM bodies: its url (/health), the answers it gives
    and the requests it saw are in the returned dict (its "while_completing", when set, is called before a completion
    is answered)."""
    state = {"completion_status": 200, "requests": [], "while_completing": None,
             "models": recorded_json(fixture_body, "vllm/curl_v1_models_served_name_root_path_k8s.txt"),
             "completion": recorded_json(fixture_body, "vllm/curl_v1_completions_json_dougbtv.txt")}

    class Handler(BaseHTTPRequestHandler):
        def answer(self, status, body):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            state["requests"].append(("GET", self.path, None))
            self.answer(200, state["models"] if self.path == "/v1/models" else "")

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state["requests"].append(("POST", self.path, body))
            if state["while_completing"]:
                state["while_completing"]()
            if state["completion_status"] == 200:
                self.answer(200, state["completion"])
            else:
                self.answer(state["completion_status"], json.dumps({"error": {"message": "engine dead"}}))

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = "http://127.0.0.1:%d/health" % server.server_address[1]
    yield state
    server.shutdown()
