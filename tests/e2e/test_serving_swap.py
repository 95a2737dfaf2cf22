"""Serving that can be left running, on the lab with the real vLLM (CPU): a swap that fails before or after the
switch leaves the previous model answering, the swap lock holds for a whole live launch (and for a scheduler across
runs), the watchdog restarts a rank group whose worker died, and the model comes back when both nodes restart."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
from labkit import CURL_AUTH, ROOT, VENV_BIN, ansible_env, lab, playbook, recap, ssh

LOCK = "/var/lib/dgx-spark/serving.lock"
SOLO = "lab-tiny-llama"
TP2 = "lab-tiny-llama-tp2"
ENTRY = {"local_path": "/home/spark/models/tiny-llama", "image": "dgx-spark-lab/vllm:cpu", "params_b": 0.01,
         "dtype": "float32", "tp": 1, "max_model_len": 512, "served_name": "tiny-llama", "port": 8000,
         "env": {"TORCHDYNAMO_DISABLE": "1"}, "extra_args": ["--enforce-eager", "--kv-cache-memory-bytes", "64M"]}
COMPLETION = ("curl -s --max-time 30 http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' "
              + CURL_AUTH + " "
              "-d '{\"model\": \"tiny-llama\", \"prompt\": \"The DGX Spark\", \"max_tokens\": 8, \"temperature\": 0}'")
TEXTS = {}


def answer():
    """The greedy completion's text from the head's API, or None when it does not answer."""
    out = ssh("spark-2959", COMPLETION, check=False).stdout
    try:
        return json.loads(out)["choices"][0]["text"]
    except (ValueError, KeyError, IndexError):
        return None


def containers():
    """Every serving container on both nodes with its id and start time: unchanged means untouched."""
    fmt = "{{.Name}} {{.Id}} {{.State.StartedAt}} {{.State.Status}}"
    return [ssh(node, "docker ps -aq --filter label=dgx-spark.role=serving | xargs -r docker inspect -f '%s'" % fmt)
            .stdout.split("\n") for node in ("spark-2959", "spark-ba63")]


def names():
    """The serving containers' names on the head and on the worker."""
    return [ssh(node, "docker ps -a --filter label=dgx-spark.role=serving --format '{{.Names}}'").stdout.split()
            for node in ("spark-2959", "spark-ba63")]


def launch(model, *args, catalog=None, env=None):
    extra = ["-e", json.dumps({"model_serving_catalog": catalog})] if catalog else []
    return playbook("launch_model.yml", "-e", "model=" + model, *(extra + list(args)), env=env)


def until_answer(bound):
    """Seconds until the head answers a real completion again, at most bound (else None)."""
    start = time.monotonic()
    while time.monotonic() - start < bound:
        if answer() == TEXTS["solo"]:
            return time.monotonic() - start
        time.sleep(1)
    return None


@pytest.fixture(scope="module", autouse=True)
def solo_serving():
    lab("up")
    fabric = playbook("fabric.yml")
    assert fabric.returncode == 0, fabric.stdout[-3000:]
    lab("engine")
    out = launch(SOLO)
    assert out.returncode == 0, out.stdout[-3000:]
    TEXTS["solo"] = answer()
    assert TEXTS["solo"]
    yield
    playbook("stop_model.yml")


def assert_untouched(out, before, *messages):
    assert out.returncode != 0
    for message in messages:
        assert message in out.stdout, (message, out.stdout[-4000:])
    assert "Nothing was stopped: %s still serves." % SOLO in out.stdout, out.stdout[-3000:]
    assert containers() == before and answer() == TEXTS["solo"]
    assert ssh("spark-2959", "sudo test -e %s" % LOCK, check=False).returncode != 0


@pytest.mark.parametrize("broken, messages", [
    ({"local_path": "/home/spark/models/no-such-model"},
     ["local_path /home/spark/models/no-such-model of broken is not a directory on spark-2959 (it does not exist)"]),
    ({"image": "registry.invalid/nvidia/vllm:25.11-py3"},
     ["in step 'The pull worked': pulling registry.invalid/nvidia/vllm:25.11-py3 on spark-2959 failed"]),
])
def test_a_swap_whose_artifacts_cannot_be_had_stops_nothing(broken, messages):
    before = containers()
    out = launch("broken", catalog={"broken": dict(ENTRY, **broken)})
    assert_untouched(out, before, *messages)
    assert ssh("spark-2959", "test -e /home/spark/models/no-such-model", check=False).returncode != 0  # not created


def test_an_unknown_repository_on_the_hub_stops_nothing(hub):
    endpoint, _log = hub()
    before = containers()
    entry = dict(ENTRY, hf_repo="lab-org/no-such-model")
    del entry["local_path"]
    out = launch("broken", "-e", "model_serving_hf_endpoint=" + endpoint, catalog={"broken": entry})
    assert_untouched(out, before, "answered 404 for lab-org/no-such-model@main: no such repository or revision")


HF_TOKEN = "hf_labSecretToken0123456789"


def test_a_token_the_hub_refuses_stops_nothing_and_never_shows(hub):
    endpoint, _log = hub(token=HF_TOKEN)
    before = containers()
    out = launch("lab-hf-tiny-llama", "-e", "model_serving_hf_endpoint=" + endpoint, env={"HF_TOKEN": "hf_notTheRightOne"})
    assert_untouched(out, before, "answered 401 for lab-org/tiny-llama@main: no access")
    assert "hf_notTheRightOne" not in out.stdout + out.stderr


def test_an_interrupted_download_stops_nothing_then_the_head_fetches_only_what_is_missing_with_a_token_that_never_shows(
        hub):
    token = {"HF_TOKEN": HF_TOKEN}
    endpoint, log = hub(token=HF_TOKEN, cut_after=100000, cuts=100)  # every transfer of the weights file breaks off
    before = containers()
    cut = launch("lab-hf-tiny-llama", "-e", "model_serving_hf_endpoint=" + endpoint, env=token)
    assert_untouched(cut, before, "downloading lab-org/tiny-llama on spark-2959 failed",
                     "peer closed connection without sending complete message body")
    assert any(json.loads(line).get("cut") for line in log.read_text().splitlines())
    # a token file a killed run left on the head: the next run removes it
    ssh("spark-2959", "umask 077; echo hf_killedRunToken > /tmp/ansible.killedrun.hf-token")
    endpoint, log = hub(token=HF_TOKEN)
    args = ("-e", "model_serving_hf_endpoint=" + endpoint)
    out = launch("lab-hf-tiny-llama", *args, "-v", env=token)
    assert out.returncode == 0, out.stdout[-4000:]
    assert HF_TOKEN not in out.stdout + out.stderr
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r["authorized"] and r["path"].endswith("/model.safetensors") for r in requests)
    fetched = [r["path"].rsplit("/", 1)[-1] for r in requests if r["method"] == "GET" and "/resolve/" in r["path"]]
    assert fetched == ["model.safetensors"], fetched  # the files the first launch got whole are not fetched again
    assert ssh("spark-2959", "ls /tmp/*.hf-token 2>/dev/null; ls ~/.ansible/tmp/*.hf-token 2>/dev/null",
               check=False).stdout == ""
    assert answer() == TEXTS["solo"]  # the same weights, downloaded and swapped in
    # a chat webhook carries its secret in the path: an undelivered one is named by scheme and host only
    hook = "http://127.0.0.1:9/services/T0/B0/hookPathSecret"
    again = launch("lab-hf-tiny-llama", *args, "-e", "model_serving_webhook_url=" + hook, env=token)
    assert again.returncode == 0 and "already serving (nothing restarted)" in again.stdout
    assert "webhook launch_complete not delivered to http://127.0.0.1" in again.stdout
    assert "hookPathSecret" not in again.stdout + again.stderr
    assert len(log.read_text().splitlines()) == len(requests)  # not downloaded again


def test_a_model_that_never_answers_is_rolled_back_and_the_webhook_says_so(webhook):
    before = containers()
    key_file_before = ssh("spark-2959", "sudo cat /var/lib/dgx-spark/serving/api-key.env").stdout
    # vLLM refuses a context longer than the model's 512 positions when it starts
    # with a new key too: rank 0 writes it before it starts, the previous model comes back with its own
    out = launch("doomed", "-e", "model_serving_webhook_url=" + webhook.url,
                 "-e", "model_serving_api_key=" + "another-key-for-the-doomed-model",
                 catalog={"doomed": dict(ENTRY, max_model_len=4096)})
    assert out.returncode != 0
    assert "doomed did not become ready on spark-2959 (rank 0)" in out.stdout, out.stdout[-4000:]
    assert "User-specified max_model_len (4096) is greater than the derived max_model_len" in out.stdout
    assert "The previous model lab-hf-tiny-llama is back and answers a real completion." in out.stdout, \
        out.stdout[out.stdout.find("Fail saying"):][:3000]
    assert "another-key-for-the-doomed-model" not in out.stdout
    assert answer() == TEXTS["solo"]
    assert ssh("spark-2959", "sudo cat /var/lib/dgx-spark/serving/api-key.env").stdout == key_file_before
    assert names() == [["dgx-spark-serve-lab-hf-tiny-llama-r0"], []]
    assert containers() != before  # stopped and started again, not untouched
    assert ssh("spark-2959", "systemctl list-units --all --no-legend 'dgx-spark-serving@*doomed*'").stdout == ""
    [(body, _signature)] = webhook.received
    event = json.loads(body)
    assert event["event"] == "rolled_back" and "is back" in event["message"]


def test_a_live_launch_keeps_the_lock_past_its_ttl_and_other_launches_and_stops_fail_fast():
    # a swap to TP=2 that outlives a 9 s lock TTL several times: the controller renews the lock while it runs
    argv = [str(VENV_BIN / "ansible-playbook"), str(ROOT / "playbooks" / "launch_model.yml"), "-e", "model=" + TP2,
            "-e", "model_serving_lock_ttl=9", "-e", "model_serving_watchdog=true"]
    first = subprocess.Popen(argv, cwd=str(ROOT), env=ansible_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while ssh("spark-2959", "sudo test -e %s" % LOCK, check=False).returncode != 0:
            assert time.monotonic() < deadline and first.poll() is None, "the launch never took the lock"
            time.sleep(1)
        time.sleep(11)  # past the TTL: only renewal keeps it
        held = json.loads(ssh("spark-2959", "sudo cat %s" % LOCK).stdout)
        assert held["model"] == "launch " + TP2 and held["expires"] > time.time()
        for rival in (launch(SOLO), playbook("stop_model.yml")):
            assert rival.returncode != 0 and "the swap lock is held by" in rival.stdout
            assert "(launch %s)" % TP2 in rival.stdout, rival.stdout[-3000:]
        out, _err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out[-4000:]
    assert names() == [["dgx-spark-serve-%s-r0" % TP2], ["dgx-spark-serve-%s-r1" % TP2]]
    assert answer() == TEXTS["solo"]
    assert ssh("spark-2959", "sudo test -e %s" % LOCK, check=False).returncode != 0


def test_a_scheduler_holds_the_lock_across_runs_with_its_token():
    acquired = playbook("serving_lock.yml", "-e", "action=acquire")
    assert acquired.returncode == 0, acquired.stdout[-3000:]
    token = re.search(r"-e model_serving_lock_token=([0-9A-Za-z]+) ", acquired.stdout).group(1)
    try:
        without = launch(TP2)
        assert without.returncode != 0 and "(scheduler) (held across runs)" in without.stdout, without.stdout[-3000:]
        with_token = launch(TP2, "-e", "model_serving_lock_token=" + token, "-e", "model_serving_watchdog=true")
        assert with_token.returncode == 0, with_token.stdout[-4000:]
        assert "already serving (nothing restarted)" in with_token.stdout
        assert json.loads(ssh("spark-2959", "sudo cat %s" % LOCK).stdout)["holder"].endswith("(scheduler)")
        renewed = playbook("serving_lock.yml", "-e", "action=renew", "-e", "model_serving_lock_token=" + token)
        assert renewed.returncode == 0
        wrong = playbook("serving_lock.yml", "-e", "action=release", "-e", "model_serving_lock_token=" + "x" * 32)
        assert ssh("spark-2959", "sudo test -e %s" % LOCK, check=False).returncode == 0, wrong.stdout[-2000:]
    finally:
        released = playbook("serving_lock.yml", "-e", "action=release", "-e", "model_serving_lock_token=" + token)
    assert released.returncode == 0
    assert ssh("spark-2959", "sudo test -e %s" % LOCK, check=False).returncode != 0


def test_a_relaunch_answers_from_one_look_unless_the_watchdog_is_not_as_asked():
    watched = ("-e", "model_serving_watchdog=true")
    before = containers()
    out = launch(TP2, *watched)
    assert out.returncode == 0 and "already serving (nothing restarted)" in out.stdout, out.stdout[-3000:]
    assert "Take the swap lock" not in out.stdout and all(c["changed"] == 0 for c in recap(out.stdout).values())
    # a watchdog someone stopped, then one asked to look at other intervals: the launch takes the lock and mends it,
    # the model untouched
    ssh("spark-2959", "sudo systemctl stop dgx-spark-serving-watchdog")
    out = launch(TP2, *watched)
    assert out.returncode == 0 and "Take the swap lock" in out.stdout, out.stdout[-3000:]
    assert ssh("spark-2959", "systemctl is-active dgx-spark-serving-watchdog", check=False).stdout.strip() == "active"
    for interval in (7, 10):
        out = launch(TP2, *watched, "-e", json.dumps({"model_serving_watchdog_interval": interval}))
        assert out.returncode == 0 and "Take the swap lock" in out.stdout, out.stdout[-3000:]
        assert json.loads(ssh("spark-2959", "cat /etc/dgx-spark/serving/watchdog.json").stdout)["interval"] == interval
    assert containers() == before and "already serving (nothing restarted)" in out.stdout


def test_the_watchdog_restarts_the_group_when_the_worker_rank_dies():
    ssh("spark-ba63", "docker kill dgx-spark-serve-%s-r1 >/dev/null" % TP2)
    took = until_answer(180)
    assert took is not None, ssh("spark-2959", "cat /var/lib/dgx-spark/watchdog/status.json", check=False).stdout
    status = json.loads(ssh("spark-2959", "cat /var/lib/dgx-spark/watchdog/status.json").stdout)
    assert len(status["restarts"]) == 1 and "rank 1 (dgx-spark-serve-%s-r1) is not running" % TP2 \
        in status["last_problem"], status
    report = playbook("model_status.yml")
    assert report.returncode == 0 and "): healthy" in report.stdout, report.stdout[-3000:]


def test_the_model_comes_back_when_both_nodes_restart():
    start = time.monotonic()
    lab("reboot")
    took = until_answer(240 - (time.monotonic() - start))
    assert took is not None, ssh("spark-2959", "systemctl list-units --all --no-legend 'dgx-spark*'").stdout
    report = playbook("model_status.yml")
    assert report.returncode == 0 and "%s (config " % TP2 in report.stdout and "): healthy" in report.stdout


def test_stop_disables_the_start_at_boot_and_the_watchdog():
    out = playbook("stop_model.yml")
    assert out.returncode == 0, out.stdout[-3000:]
    assert names() == [[], []]
    for node, rank in (("spark-2959", 0), ("spark-ba63", 1)):
        unit = "dgx-spark-serving@dgx-spark-serve-%s-r%d.service" % (TP2, rank)
        assert ssh(node, "systemctl is-enabled %s" % unit, check=False).stdout.strip() != "enabled"
    assert ssh("spark-2959", "systemctl is-enabled dgx-spark-serving-watchdog", check=False).stdout.strip() == \
        "disabled"
    assert ssh("spark-2959", "systemctl is-active dgx-spark-serving-watchdog", check=False).stdout.strip() == \
        "inactive"
