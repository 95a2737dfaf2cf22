"""The lab's serving engine: the real vLLM CPU build serving the tiny random Llama, built and cached locally."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "lab" / "engine" / "build_engine_image.sh"
NAME = "dgxspark-lab-engine-smoke"


def podman(*args, check=True):
    env = dict(os.environ, CONTAINERS_CONF=subprocess.run([str(ROOT / "lab" / "host_prep.sh")], capture_output=True,
                                                          text=True, check=True).stdout.strip())
    return subprocess.run(["podman"] + list(args), capture_output=True, text=True, check=check, env=env)


def api(path, body=None):
    argv = ["exec", NAME, "curl", "-sf", "--max-time", "60", "http://127.0.0.1:8000" + path]
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    return json.loads(podman(*argv).stdout)


@pytest.fixture(scope="module")
def engine():
    archive, model = subprocess.run([str(BUILD)], capture_output=True, text=True, check=True,
                                    timeout=3600).stdout.split()
    tag = "localhost/vllm-lab:" + Path(archive).stem.rsplit("-", 1)[1]  # the build script loaded it
    podman("rm", "-f", NAME, check=False)
    podman("run", "-d", "--name", NAME, "--shm-size", "1g", "--network", "none", "-v", "%s:/model:ro" % model, tag,
           "vllm", "serve", "/model", "--served-model-name", "tiny-llama", "--enforce-eager", "--dtype", "float32",
           "--kv-cache-memory-bytes", "64M", "--host", "127.0.0.1", "--port", "8000")
    deadline = time.monotonic() + 300
    while podman("exec", NAME, "curl", "-sf", "http://127.0.0.1:8000/health", check=False).returncode != 0:
        state = podman("inspect", "-f", "{{.State.Running}}", NAME).stdout.strip()
        if state != "true" or time.monotonic() > deadline:
            logs = podman("logs", "--tail", "30", NAME, check=False)
            podman("rm", "-f", NAME, check=False)
            raise AssertionError("vLLM did not become healthy:\n" + logs.stdout + logs.stderr)
        time.sleep(0.5)
    yield
    podman("rm", "-f", "-t", "5", NAME, check=False)


def test_models_lists_the_served_name(engine):
    assert [m["id"] for m in api("/v1/models")["data"]] == ["tiny-llama"]


def test_greedy_completion_is_real_and_deterministic(engine):
    body = {"model": "tiny-llama", "prompt": "The DGX Spark", "max_tokens": 8, "temperature": 0}
    first, second = api("/v1/completions", body), api("/v1/completions", body)
    assert first["usage"]["completion_tokens"] == 8 and first["choices"][0]["text"]
    assert first["choices"][0]["text"] == second["choices"][0]["text"]
