"""launch_model.yml on the lab with the real vLLM (CPU): solo, relaunch, swap to TP=2 over both nodes, a dead
worker rank, hostile input, stop."""

from __future__ import annotations

import json

import pytest
from labkit import lab, playbook, recap, rejected_before_connecting, ssh

COMPLETION = ("curl -sf --max-time 120 http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' "
              "-d '{\"model\": \"tiny-llama\", \"prompt\": \"The DGX Spark\", \"max_tokens\": 8, \"temperature\": 0}'")
TEXTS = {}


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
    yield
    playbook("stop_model.yml")


def test_check_mode_prints_the_plan_and_starts_nothing():
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama", "--check")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "lab-tiny-llama: solo on spark-2959, tp=1" in out.stdout
    assert serving("spark-2959") == [] and serving("spark-ba63") == []


def test_solo_launch_answers_a_real_completion():
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama")
    assert out.returncode == 0, out.stdout[-4000:]
    assert [name.split()[0] for name in serving("spark-2959")] == ["dgx-spark-serve-lab-tiny-llama-r0"]
    TEXTS["solo"] = completion_text()
    assert TEXTS["solo"]


def test_relaunch_of_the_same_configuration_changes_nothing():
    before = serving("spark-2959")
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "already serving (nothing restarted)" in out.stdout
    assert all(c["changed"] == 0 for c in recap(out.stdout).values())
    assert serving("spark-2959") == before


def test_swap_to_tensor_parallel_over_both_nodes_gives_the_same_greedy_text():
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama-tp2")
    assert out.returncode == 0, out.stdout[-4000:]
    assert [n.split()[0] for n in serving("spark-2959")] == ["dgx-spark-serve-lab-tiny-llama-tp2-r0"]
    assert [n.split()[0] for n in serving("spark-ba63")] == ["dgx-spark-serve-lab-tiny-llama-tp2-r1"]
    assert completion_text() == TEXTS["solo"]


def test_a_dead_worker_rank_is_seen_and_the_cluster_relaunched():
    ssh("spark-ba63", "docker rm -f dgx-spark-serve-lab-tiny-llama-tp2-r1 >/dev/null")
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama-tp2")
    assert out.returncode == 0, out.stdout[-4000:]
    assert "already serving" not in out.stdout
    assert len(serving("spark-ba63")) == 1 and completion_text() == TEXTS["solo"]


def test_hostile_model_id_fails_on_validation_before_any_connection():
    rejected_before_connecting("launch_model.yml", ["model=x;reboot"], "model x;reboot", "is not allowed")


def test_hostile_extra_arg_from_the_inventory_fails_on_validation():
    entry = {"local_path": "/home/spark/models/tiny-llama", "image": "dgx-spark-lab/vllm:cpu", "params_b": 0.01,
             "dtype": "float32", "extra_args": ["--enforce-eager", "$(reboot)"]}
    override = json.dumps({"model_serving_catalog": {"evil": entry}})
    rejected_before_connecting("launch_model.yml", ["model=evil", override], "model evil: extra_args[1] '$(reboot)'",
                               "is not allowed")


def test_stop_is_idempotent():
    first = playbook("stop_model.yml")
    assert first.returncode == 0 and serving("spark-2959") == [] and serving("spark-ba63") == []
    again = playbook("stop_model.yml")
    assert all(c["changed"] == 0 for c in recap(again.stdout).values())
