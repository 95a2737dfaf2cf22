"""serving_wait against a real local HTTP server answering with the recorded vLLM bodies (docker is a double
printing the container's state)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.dgx_spark.cluster.plugins.modules import serving_wait

SERVED = "DeepSeek-R1-Distill-Qwen-1.5B"  # the id in the recorded /v1/models answer


def recorded_json(fixture_body, relpath):
    return next(line for line in fixture_body(relpath).splitlines() if line.startswith("{"))


@pytest.fixture
def api(fixture_body):
    """An engine's API on 127.0.0.1: answers and requests seen are in the returned dict."""
    state = {"completion_status": 200, "requests": [],
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


def docker_double(fake_tool, status="running", exit_code=0):
    fake_tool("docker", json.dumps([{"State": {"Status": status, "ExitCode": exit_code}}]))


def wait(module_runner, api, **extra):
    return module_runner(serving_wait.main, dict({"container": "dgx-spark-serve-m-r0", "url": api["url"],
                                                  "timeout": 5, "interval": 0.1}, **extra))


def test_ready_means_the_served_name_is_listed_and_a_real_completion_answers(module_runner, api, fake_tool):
    docker_double(fake_tool)
    result, failed = wait(module_runner, api, served_name=SERVED)
    assert not failed and result["models"] == [SERVED] and result["completion_tokens"] == 150
    assert result["completion"].startswith("\n\nVermont")
    post = [r for r in api["requests"] if r[0] == "POST"]
    assert post == [("POST", "/v1/completions", {"model": SERVED, "prompt": "The DGX Spark", "max_tokens": 8,
                                                 "temperature": 0})]


def test_another_served_name_fails_at_once_naming_what_is_listed(module_runner, api, fake_tool):
    docker_double(fake_tool)
    result, failed = wait(module_runner, api, served_name="openai/gpt-oss-120b")
    assert failed and "/v1/models lists ['%s'] (HTTP 200), not openai/gpt-oss-120b" % SERVED in result["msg"]
    assert result["elapsed"] < 5 and not [r for r in api["requests"] if r[0] == "POST"]


def test_a_failed_completion_fails_with_the_status_and_the_engine_s_answer(module_runner, api, fake_tool):
    docker_double(fake_tool)
    api["completion_status"] = 500
    result, failed = wait(module_runner, api, served_name=SERVED)
    assert failed and result["msg"].startswith("no completion from %s: HTTP 500" % SERVED)
    assert "engine dead" in result["msg"]


def test_without_a_served_name_the_health_answer_is_enough(module_runner, api, fake_tool):
    docker_double(fake_tool)
    result, failed = wait(module_runner, api)
    assert not failed and result["status"] == 200 and "models" not in result
    assert [r[1] for r in api["requests"]] == ["/health"]


def test_an_exited_container_fails_at_once_with_its_exit_code(module_runner, api, fake_tool):
    docker_double(fake_tool, status="exited", exit_code=137)
    result, failed = wait(module_runner, api, served_name=SERVED)
    assert failed and "is exited (exit code 137)" in result["msg"] and result["exit_code"] == 137
    assert api["requests"] == []
