"""launch_model.yml on the lab with the real vLLM (CPU): TP=2 over both nodes with a hung, a never-starting and a
dead worker rank, stop; two pipeline stages (the lab's engine fails their first request: caught, nothing left); then
solo: relaunch, its API key, webhooks, the swap lock, hostile input. The solo model stays serving for
test_serving_swap.py, which starts from it. (The Hugging Face download with its token: test_serving_swap.py.)"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
import urllib.request

import pytest
from labkit import API_KEY, CURL_AUTH, lab, playbook, recap, rejected_before_connecting, runner, ssh

COMPLETION = ("curl -sf --max-time 120 http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' "
              + CURL_AUTH + " "
              "-d '{\"model\": \"tiny-llama\", \"prompt\": \"The DGX Spark\", \"max_tokens\": 8, \"temperature\": 0}'")
TEXTS = {}
# a second TP=2 model on the same ranks (its rank-1 containers are killed on purpose)
DOOMED = {"local_path": "/home/spark/models/tiny-llama", "image": "dgx-spark-lab/vllm:cpu", "params_b": 0.01,
          "dtype": "float32", "tp": 2, "max_model_len": 512, "served_name": "tiny-llama", "port": 8000,
          "env": {"TORCHDYNAMO_DISABLE": "1"}, "extra_args": ["--enforce-eager", "--kv-cache-memory-bytes", "64M"]}


def serving(node):
    out = ssh(node, "docker ps --filter label=dgx-spark.role=serving --format '{{.Names}} {{.Label \"dgx-spark.config\"}}'")
    return sorted(out.stdout.splitlines())


def completion_text():
    return json.loads(ssh("spark-2959", COMPLETION).stdout)["choices"][0]["text"]


@pytest.fixture(scope="module", autouse=True)
def lab_with_engine():
    lab("up")
    fabric = playbook("fabric.yml")
    assert fabric.returncode == 0, fabric.stdout[-3000:]
    lab("engine")
    playbook("stop_model.yml")
    yield  # the solo model stays: test_serving_swap.py starts from it (its launch of it then changes nothing)


def test_check_mode_prints_the_plan_and_starts_nothing():
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama", "--check")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "lab-tiny-llama: solo on spark-2959, tp=1" in out.stdout
    assert serving("spark-2959") == [] and serving("spark-ba63") == []


def test_tensor_parallel_over_both_nodes_answers_a_real_completion():
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama-tp2")
    assert out.returncode == 0, out.stdout[-4000:]
    assert [n.split()[0] for n in serving("spark-2959")] == ["dgx-spark-serve-lab-tiny-llama-tp2-r0"]
    assert [n.split()[0] for n in serving("spark-ba63")] == ["dgx-spark-serve-lab-tiny-llama-tp2-r1"]
    TEXTS["greedy"] = completion_text()
    assert TEXTS["greedy"]


# every TCP listener of a process in a docker container on the node: "<address>:<port>"
CONTAINER_LISTENERS = r"""sudo ss -Hltnp | while read -r _s _r _q local _peer users; do
  for pid in $(echo "$users" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
    grep -q docker /proc/$pid/cgroup 2>/dev/null && echo "$local"
  done
done | sort -u"""


def reaches(address, port):
    """Whether a TCP connection from this machine (on the lab's LAN) to address:port opens within 3 s."""
    try:
        socket.create_connection((address, port), timeout=3).close()
        return True
    except OSError:
        return False


def test_the_engines_internal_ports_answer_the_fabric_only():
    # with TP=2 serving: the API listens on every address (clients are on the LAN); every other port of the engine
    # is on the node's fabric address, except torch's rendezvous (29501), which torch binds to every address ...
    for node, fabric in (("spark-2959", "10.10.10.1"), ("spark-ba63", "10.10.10.2")):
        listeners = ssh(node, CONTAINER_LISTENERS).stdout.split()
        assert listeners, node
        elsewhere = [a for a in listeners if not a.startswith(fabric + ":") and not a.startswith("127.0.0.1:")]
        assert set(elsewhere) <= {"0.0.0.0:8000", "*:29501"}, (node, elsewhere)
    # ... so the role's firewall keeps it off the LAN: from here (the LAN) no connection, over the fabric one
    assert "*:29501" in ssh("spark-2959", CONTAINER_LISTENERS).stdout.split()
    assert not reaches("10.59.63.11", 29501)
    assert ssh("spark-ba63", "timeout 3 bash -c '</dev/tcp/10.10.10.1/29501'", check=False).returncode == 0
    assert "-j DGX-SPARK-SERVING" in ssh("spark-2959", "sudo iptables -S INPUT").stdout
    # the API itself answers the LAN, with the key
    request = urllib.request.Request("http://10.59.63.11:8000/v1/models", headers={"Authorization": "Bearer " + API_KEY})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert [m["id"] for m in json.loads(answer.read())["data"]] == ["tiny-llama"]


def test_status_of_a_healthy_cluster_names_every_rank():
    out = playbook("model_status.yml")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "lab-tiny-llama-tp2 (config " in out.stdout and "served as tiny-llama on port 8000): healthy" in out.stdout
    assert "rank 0 on spark-2959: dgx-spark-serve-lab-tiny-llama-tp2-r0 running" in out.stdout
    assert "rank 1 on spark-ba63: dgx-spark-serve-lab-tiny-llama-tp2-r1 running" in out.stdout


def test_status_and_a_relaunch_reach_python_through_ansible_runner(tmp_path):
    run = runner(tmp_path / "status", "model_status.yml")
    assert (run.status, run.rc) == ("successful", 0), run.stdout[-3000:]
    status = run.stats["model_serving_status"]
    assert (status["state"], status["model"]) == ("healthy", "lab-tiny-llama-tp2")
    assert [(rank["rank"], rank["host"], rank["state"]) for rank in status["ranks"]] == [
        (0, "spark-2959", "running"), (1, "spark-ba63", "running")]
    run = runner(tmp_path / "launch", "launch_model.yml", model="lab-tiny-llama-tp2")
    assert (run.status, run.rc) == ("successful", 0), run.stdout[-3000:]
    launch = run.stats["launch_model"]
    assert (launch["model"], launch["served_name"], launch["mode"], launch["tp"], launch["reused"]) == (
        "lab-tiny-llama-tp2", "tiny-llama", "tp", 2, True)
    assert launch["endpoint"] == "http://10.10.10.1:8000/v1" and launch["config"] == status["config"]
    assert 0 < launch["seconds"] < 120


def test_a_hung_worker_whose_container_still_runs_is_broken_for_status_and_relaunched():
    # every process of the worker's engine but the container's main one is frozen: the container runs, the rank
    # does not answer; only a real completion tells
    ssh("spark-ba63", "docker exec dgx-spark-serve-lab-tiny-llama-tp2-r1 sh -c 'kill -STOP -1'")
    # a completion of the tiny model takes well under a second: 10 s without an answer is a hung rank
    status = playbook("model_status.yml", "-e", "model_serving_status_timeout=10")
    assert status.returncode != 0
    assert "rank 1 on spark-ba63: dgx-spark-serve-lab-tiny-llama-tp2-r1 running" in status.stdout, status.stdout[-3000:]
    assert "): broken" in status.stdout and "but a real completion failed" in status.stdout
    assert "rank 0 on spark-2959: dgx-spark-serve-lab-tiny-llama-tp2-r0 running" in status.stdout
    # the frozen rank would take docker's whole grace to stop, and the look its whole wait: short ones here
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama-tp2", "-e", "model_serving_look_timeout=10",
                   "-e", "model_serving_stop_timeout=3")
    assert out.returncode == 0, out.stdout[-4000:]
    assert "already serving" not in out.stdout and completion_text() == TEXTS["greedy"]


def test_a_model_whose_worker_never_starts_is_rolled_back_in_bounded_time(webhook):
    # another model on the same ranks; each of its rank-1 containers is killed as soon as it appears
    tp2 = serving("spark-2959") + serving("spark-ba63")
    ssh("spark-ba63", "touch /tmp/kill-rank1; nohup sh -c 'while [ -e /tmp/kill-rank1 ]; do docker ps -q --filter "
                      "name=lab-doomed-r1 | xargs -r docker kill >/dev/null 2>&1; sleep 0.3; done' >/dev/null 2>&1 &")
    try:
        start = time.monotonic()
        out = playbook("launch_model.yml", "-e", "model=lab-doomed", "-e", "model_serving_webhook_url=" + webhook.url,
                       "-e", json.dumps({"model_serving_catalog": {"lab-doomed": DOOMED}}))
        took = time.monotonic() - start
    finally:
        ssh("spark-ba63", "rm -f /tmp/kill-rank1")
    # the head's readiness wait sees the worker's container gone and ends at once, not after vLLM's 300 s
    # --distributed-timeout-seconds: the doomed start, the rollback and the previous model's cold start
    assert out.returncode != 0 and took < 240, (took, out.stdout[-3000:])
    assert "lab-doomed did not become ready on spark-2959 (rank 0)" in out.stdout, out.stdout[-4000:]
    assert "rank 1's container dgx-spark-serve-lab-doomed-r1 on 10.10.10.2 is exited (exit code 137)" in out.stdout
    assert "rank 1 on spark-ba63 is down: container dgx-spark-serve-lab-doomed-r1 exited (exit code 137)" \
        in out.stdout
    assert "The previous model lab-tiny-llama-tp2 is back and answers a real completion." in out.stdout
    assert serving("spark-2959") + serving("spark-ba63") == tp2 and completion_text() == TEXTS["greedy"]
    assert ssh("spark-2959", "docker ps -aq --filter name=lab-doomed").stdout == ""
    assert ssh("spark-ba63", "systemctl list-units --all --no-legend 'dgx-spark-serving@*doomed*'").stdout == ""
    assert ssh("spark-2959", "sudo test -e /var/lib/dgx-spark/serving.lock", check=False).returncode != 0
    [(body, _signature)] = webhook.received
    assert json.loads(body)["event"] == "rolled_back"


def test_a_killed_worker_is_seen_by_status():
    # (the next launch relaunches a group that is not healthy: the hung worker's test proves it, over a container
    # that must be stopped first)
    ssh("spark-ba63", "docker kill dgx-spark-serve-lab-tiny-llama-tp2-r1 >/dev/null")
    # measured: the head's API keeps answering /health after its peer died, so /health alone is not health
    assert ssh("spark-2959", "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout == "200"
    status = playbook("model_status.yml")
    assert status.returncode != 0
    assert "rank 1 on spark-ba63 is down: container dgx-spark-serve-lab-tiny-llama-tp2-r1 exited (exit code 137)" \
        in status.stdout


def test_stop_is_idempotent(tmp_path):
    first = runner(tmp_path / "stop", "stop_model.yml")
    assert first.rc == 0 and serving("spark-2959") == [] and serving("spark-ba63") == []
    assert first.stats["stop_model"]["nodes"] == {"spark-2959": ["dgx-spark-serve-lab-tiny-llama-tp2-r0"],
                                                  "spark-ba63": ["dgx-spark-serve-lab-tiny-llama-tp2-r1"]}
    again = playbook("stop_model.yml")
    assert all(c["changed"] == 0 for c in recap(again.stdout).values())
    status = playbook("model_status.yml")
    assert status.returncode == 0 and "nothing serves: no serving container on any node" in status.stdout


def test_pipeline_stages_start_one_per_node_and_the_real_completion_check_catches_the_lab_engines_failure():
    """PP=2: one stage per node, each rank `vllm serve --pipeline-parallel-size 2 --nnodes 2 --node-rank R`. The
    lab's engine (vLLM 0.32, CPU) loads both stages across the nodes - its API answers /health and lists the model,
    which it does only once every rank joined - then fails its first request (EngineCore: KeyError in the scheduler's
    update_from_output with stages on two nodes, the upstream bug of vLLM issues #32701 and #46263). The launch's
    real-completion check catches it and, nothing serving before, leaves nothing behind. With an engine that serves
    pipeline stages this test fails on its first assertion: then assert the answer instead."""
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama-pp2")
    assert out.returncode != 0, out.stdout[-4000:]
    assert "lab-tiny-llama-pp2: pp on spark-2959 + spark-ba63, tp=1 x pp=2" in out.stdout
    assert '"models": ["tiny-llama"]' in out.stdout and '"status": 200' in out.stdout
    assert "no completion from tiny-llama: HTTP 500" in out.stdout and "EngineCore encountered an issue" in out.stdout
    assert "Nothing served before; every container of the launch was removed." in out.stdout
    assert serving("spark-2959") == [] and serving("spark-ba63") == []


def test_solo_launch_answers_a_real_completion():
    # with no facts cached by earlier runs, as in a fresh AWX job container: the launch gathers what it needs itself
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama", env={"ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory"})
    assert out.returncode == 0, out.stdout[-4000:]
    assert [name.split()[0] for name in serving("spark-2959")] == ["dgx-spark-serve-lab-tiny-llama-r0"]
    # the same greedy text as the model split over both nodes
    assert completion_text() == TEXTS["greedy"]


def test_relaunch_of_the_same_configuration_changes_nothing():
    before = serving("spark-2959")
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "already serving (nothing restarted)" in out.stdout
    assert all(c["changed"] == 0 for c in recap(out.stdout).values())
    assert serving("spark-2959") == before
    # answered from one look at the nodes: no swap lock taken, nothing launched
    assert "Take the swap lock" not in out.stdout and "Otherwise launch under the swap lock" in out.stdout


def test_the_endpoint_refuses_a_request_without_the_key_and_the_key_never_shows():
    without = ssh("spark-2959", "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/v1/models").stdout
    wrong = ssh("spark-2959", "curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "
                              "http://127.0.0.1:8000/v1/models").stdout
    assert (without, wrong) == ("401", "401")
    assert completion_text()  # with the key (COMPLETION sends it)
    # the key reached rank 0 through a 0600 file, not its argv; the probes and the status playbook use it
    assert API_KEY not in ssh("spark-2959", "docker inspect --format '{{json .Args}} {{json .Path}}' "
                                            "dgx-spark-serve-lab-tiny-llama-r0").stdout
    assert ssh("spark-2959", "sudo stat -c '%a' /var/lib/dgx-spark/serving/api-key.env").stdout.strip() == "600"
    status = playbook("model_status.yml", "-v")
    assert status.returncode == 0 and API_KEY not in status.stdout + status.stderr, status.stdout[-2000:]


def test_without_a_key_an_endpoint_on_an_untrusted_lan_is_refused_before_any_connection():
    """As an unreadable key file and a variable of the role's own given from outside."""
    untrusted = json.dumps({"model_serving_api_key": "", "model_serving_lan_trusted": False})
    rejected_before_connecting("launch_model.yml", ["model=lab-tiny-llama", untrusted],
                               "An API key is required: the endpoint listens on every address of the head")
    unreadable = json.dumps({"model_serving_api_key": "", "model_serving_api_key_file": "/nonexistent/key"})
    rejected_before_connecting("launch_model.yml", ["model=lab-tiny-llama", unreadable],
                               "Not readable on the controller (where the secrets are read): "
                               "model_serving_api_key_file /nonexistent/key.")
    internal = json.dumps({"_model_serving_request": {"entry": {"image": "evil", "local_path": "/"}}})
    rejected_before_connecting("launch_model.yml", ["model=lab-tiny-llama", internal],
                               "_model_serving_request: variables starting with _model_serving_ belong to the role")


def test_completion_webhook_is_signed_and_the_secret_stays_out_of_the_output(webhook):
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama", "-e", "model_serving_webhook_url=" + webhook.url,
                   "-e", "model_serving_webhook_secret=s3cret-hook-key")
    assert out.returncode == 0, out.stdout[-3000:]
    [(body, signature)] = webhook.received
    assert signature == "sha256=" + hmac.new(b"s3cret-hook-key", body, hashlib.sha256).hexdigest()
    event = json.loads(body)
    assert (event["event"], event["model"], event["mode"], event["tp"]) == ("launch_complete", "lab-tiny-llama",
                                                                            "solo", 1)
    assert "s3cret-hook-key" not in out.stdout and "s3cret-hook-key" not in out.stderr


def test_failure_webhook_carries_the_reason(webhook):
    entry = {"local_path": "/home/spark/models/tiny-llama", "image": "dgx-spark-lab/vllm:cpu", "params_b": 1000,
             "dtype": "float32"}
    out = playbook("launch_model.yml", "-e", "model=too-big", "-e", "model_serving_webhook_url=" + webhook.url,
                   "-e", json.dumps({"model_serving_catalog": {"too-big": entry}}))
    assert out.returncode != 0 and "does not fit" in out.stdout
    [(body, signature)] = webhook.received
    event = json.loads(body)
    assert event["event"] == "launch_failed" and "does not fit" in event["message"] and signature is None


def test_a_held_swap_lock_fails_fast_naming_the_holder():
    held = {"holder": "carol@awx-job-42", "model": "gpt-oss-120b", "token": "theirs", "since": time.time(),
            "expires": time.time() + 600, "ttl": 600}
    ssh("spark-2959", "echo '%s' | sudo tee /var/lib/dgx-spark/serving.lock >/dev/null" % json.dumps(held))
    try:
        before = serving("spark-2959")
        start = time.monotonic()
        out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama-tp2")
        assert out.returncode != 0 and time.monotonic() - start < 60
        assert "held by carol@awx-job-42 (gpt-oss-120b)" in out.stdout
        # what serves is not answered for around a held lock either: the run waits for it, or fails as here
        same = playbook("launch_model.yml", "-e", "model=lab-tiny-llama")
        assert same.returncode != 0 and "held by carol@awx-job-42 (gpt-oss-120b)" in same.stdout, same.stdout[-3000:]
        assert serving("spark-2959") == before and serving("spark-ba63") == []
        assert "theirs" in ssh("spark-2959", "sudo cat /var/lib/dgx-spark/serving.lock").stdout  # not released
    finally:
        ssh("spark-2959", "sudo rm -f /var/lib/dgx-spark/serving.lock")


def test_hostile_model_id_fails_on_validation_before_any_connection():
    rejected_before_connecting("launch_model.yml", ["model=x;reboot"], "model x;reboot", "is not allowed")


def test_hostile_extra_arg_from_the_inventory_fails_on_validation():
    entry = {"local_path": "/home/spark/models/tiny-llama", "image": "dgx-spark-lab/vllm:cpu", "params_b": 0.01,
             "dtype": "float32", "extra_args": ["--enforce-eager", "$(reboot)"]}
    override = json.dumps({"model_serving_catalog": {"evil": entry}})
    out = rejected_before_connecting("launch_model.yml", ["model=evil", override],
                                     "model evil: extra_args[1] '$(reboot)'", "is not allowed")
    # named by the play's first node; the other fails without repeating it
    [worker] = [line for line in out.stdout.splitlines() if line.startswith("fatal: [spark-ba63]")]
    assert "The catalog entry of evil is refused (the play's first node says why)." in worker
    assert "extra_args" not in worker
