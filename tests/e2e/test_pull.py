"""The launch pulls an absent image on the head, logging in to the NGC registry with the key on stdin in a throwaway
docker config: real docker login and docker pull against lab/registry_double.py (nvcr.io is not reachable), which
wants the key as NGC does. The key never shows and is not kept on the node."""

from __future__ import annotations

import json

import pytest
from labkit import ROOT, lab, playbook, ssh

HEAD, WORKER = "spark-2959", "spark-ba63"
PORT = 5055
REGISTRY = "127.0.0.1:%d" % PORT
IMAGE = REGISTRY + "/nvidia/lab-busybox:1.0"
KEY = "nvapi-labSecretKey0123456789"
ENTRY = {"local_path": "/home/spark/models/tiny-llama", "engine": "vllm", "image": IMAGE, "params_b": 0.01,
         "dtype": "float32", "tp": 1, "max_model_len": 512}


@pytest.fixture(scope="module", autouse=True)
def registry():
    lab("up")
    lab("model")  # the tiny model the entry points at
    assert playbook("stop_model.yml").returncode == 0  # nothing serves before: the failed launch says so
    script = (ROOT / "lab" / "registry_double.py").read_text()
    ssh(HEAD, "cat > /tmp/registry_double.py <<'EOF'\n%sEOF\necho %s > /tmp/registry.key" % (script, KEY))
    # an image the head does not hold (its own config blob), so the pull must fetch from the registry
    ssh(HEAD, "docker rmi -f %s >/dev/null 2>&1; printf 'FROM lab/busybox:latest\\nLABEL dgx-spark.test=pull\\n' | "
              "docker build -q -t lab/pull-source - && docker save lab/pull-source -o /tmp/lab-busybox.tar && "
              "docker rmi lab/pull-source >/dev/null && "
              "rm -f /tmp/registry.log && (nohup python3 /tmp/registry_double.py --archive /tmp/lab-busybox.tar "
              "--name nvidia/lab-busybox --tag 1.0 --key-file /tmp/registry.key --log /tmp/registry.log --port %d "
              ">/tmp/registry.out 2>&1 &) && sleep 1 && cat /tmp/registry.out" % (IMAGE, PORT))
    yield
    ssh(HEAD, "pkill -f registry_double.py; rm -f /tmp/registry_double.py /tmp/registry.key /tmp/lab-busybox.tar; "
              "docker rmi -f %s >/dev/null 2>&1" % IMAGE, check=False)


def launch(key):
    env = {"NGC_API_KEY": key} if key else {}
    return playbook("launch_model.yml", "-e", "model=ngc-image", "-e",
                    json.dumps({"model_serving_catalog": {"ngc-image": ENTRY}, "model_serving_ngc_registry": REGISTRY}),
                    "-v", env=env)


def present(node):
    return ssh(node, "docker image inspect %s" % IMAGE, check=False).returncode == 0


def test_without_a_key_the_pull_fails_saying_what_to_set():
    out = launch("")
    assert out.returncode != 0
    assert "pulling %s on spark-2959 failed" % IMAGE in out.stdout
    assert "may need an NGC API key: set model_serving_ngc_api_key" in out.stdout
    assert not present(HEAD)


def test_a_wrong_key_fails_the_login_and_never_shows():
    out = launch("nvapi-notTheRightOne")
    assert out.returncode != 0
    assert "docker login to %s failed on spark-2959" % REGISTRY in out.stdout
    assert "nvapi-notTheRightOne" not in out.stdout + out.stderr
    assert not present(HEAD)


def test_the_right_key_pulls_and_the_key_is_not_kept():
    out = launch(KEY)
    # the image is the lab's busybox, not an engine: the launch gets as far as starting the rank, which exits
    assert out.returncode != 0 and "ngc-image did not become ready on spark-2959 (rank 0)" in out.stdout
    assert "Nothing served before; every container of the launch was removed" in out.stdout
    assert KEY not in out.stdout + out.stderr
    assert present(HEAD)
    requests = [json.loads(line) for line in ssh(HEAD, "cat /tmp/registry.log").stdout.splitlines()]
    assert any(r["authorized"] and "/blobs/" in r["path"] for r in requests)
    # no credentials left behind: the throwaway config is gone and the user's docker config never had them
    assert ssh(HEAD, "ls -d /tmp/*.docker ~/.ansible/tmp/*.docker 2>/dev/null", check=False).stdout == ""
    assert REGISTRY not in ssh(HEAD, "cat ~/.docker/config.json 2>/dev/null", check=False).stdout
    assert ssh(HEAD, "docker ps -aq --filter label=dgx-spark.role=serving").stdout == ""
