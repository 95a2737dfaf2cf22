"""launch_model.yml with engine trtllm on the lab: NVIDIA's two-Spark TensorRT-LLM recipe with the real OpenMPI mpirun
and a real sshd between the two nodes' containers, the tools doubled (lab/trtllm, TensorRT-LLM cannot run on this
CPU): argv, environment reaching the remote rank, SSH wiring, readiness from the recorded trtllm-serve lines, the
engine path (trt_build, engine synced), relaunch, and a failing executor."""

from __future__ import annotations

import json
import time

import pytest
from labkit import MGMT, fabric, lab, lab_inventory, playbook, recap, ssh

HEAD, WORKER = "spark-2959", "spark-ba63"
MODEL = "/home/spark/models/tiny-llama"


def serving(node):
    out = ssh(node, "docker ps -a --filter label=dgx-spark.role=serving --format '{{.Names}} {{.State}}'")
    return sorted(out.stdout.splitlines())


def head_logs(key):
    out = ssh(HEAD, "docker logs dgx-spark-serve-%s-r0 2>&1" % key)
    return out.stdout


def container_args(node, name):
    return json.loads(ssh(node, "docker inspect %s" % name).stdout)[0]["Args"]


@pytest.fixture(scope="module", autouse=True)
def lab_with_trtllm():
    lab("up")
    addressed = playbook("fabric.yml")
    assert addressed.returncode == 0, addressed.stdout[-3000:]
    lab("model")  # the tiny model on the head
    lab("trtllm")
    playbook("stop_model.yml")
    yield
    playbook("stop_model.yml")
    ssh(HEAD, "sudo rm -rf %s-unknown-arch /var/lib/dgx-spark/trt-engines" % MODEL)
    ssh(WORKER, "sudo rm -rf %s-unknown-arch /var/lib/dgx-spark/trt-engines" % MODEL)


def test_tp2_launch_runs_mpirun_over_ssh_to_the_worker_and_answers():
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama-trtllm")
    assert out.returncode == 0, out.stdout[-4000:]
    assert serving(HEAD) == ["dgx-spark-serve-lab-tiny-llama-trtllm-r0 running"]
    assert serving(WORKER) == ["dgx-spark-serve-lab-tiny-llama-trtllm-r1 running"]
    head = container_args(HEAD, "dgx-spark-serve-lab-tiny-llama-trtllm-r0")
    assert head[:6] == ["--allow-run-as-root", "-np", "2", "-H", fabric("10.10.10.1:1,10.10.10.2:1"), "--mca"]
    assert head[6:8] == ["plm_rsh_args", "-p 2233"] and "trtllm-llmapi-launch" in head
    logs = head_logs("lab-tiny-llama-trtllm")
    # the worker's rank ran on the worker, started by mpirun through its container's sshd, with the fabric env
    assert "rank 1 of 2 on spark-ba63: loaded 1 file(s) of %s" % MODEL in logs
    assert "rank 1 on spark-ba63 loaded 1 file(s) with GLOO_SOCKET_IFNAME=enp1s0f1np1 NCCL_IB_HCA=rocep1s0f1,roceP2p1s0f1 " \
        "NCCL_SOCKET_IFNAME=enp1s0f1np1 OMPI_MCA_btl_tcp_if_include=enp1s0f1np1 UCX_NET_DEVICES=enp1s0f1np1" in logs
    assert '"free_gpu_memory_fraction": 0.5' in logs  # the extra options YAML reached trtllm-serve
    assert "Uvicorn running on http://0.0.0.0:8355" in logs
    # the worker's sshd listens on its fabric address only and takes the head's key from the head's address only
    assert fabric("10.10.10.2:2233") in ssh(WORKER, "ss -ltn").stdout
    authorized = ssh(WORKER, "sudo cat /var/lib/dgx-spark/serving/ssh/authorized_keys").stdout
    assert authorized.startswith(fabric('from="10.10.10.1" '))
    answer = json.loads(ssh(HEAD, "curl -sf http://127.0.0.1:8355/v1/completions -H 'Content-Type: application/json' "
                                  "-d '{\"model\": \"%s\", \"prompt\": \"hello spark\", \"max_tokens\": 3}'" % MODEL).stdout)
    assert answer["usage"]["completion_tokens"] == 3


def test_relaunch_changes_nothing_and_status_reports_both_ranks():
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama-trtllm")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "already serving (nothing restarted)" in out.stdout
    assert all(c["changed"] == 0 for c in recap(out.stdout).values())
    status = playbook("model_status.yml")
    assert status.returncode == 0, status.stdout[-3000:]
    assert "rank 0 on spark-2959: dgx-spark-serve-lab-tiny-llama-trtllm-r0 running" in status.stdout
    assert "rank 1 on spark-ba63: dgx-spark-serve-lab-tiny-llama-trtllm-r1 running" in status.stdout


def test_killed_worker_ends_the_mpi_job_and_the_next_launch_restarts_it():
    ssh(WORKER, "docker kill dgx-spark-serve-lab-tiny-llama-trtllm-r1")
    deadline = time.monotonic() + 60
    while "running" in " ".join(serving(HEAD)) and time.monotonic() < deadline:
        time.sleep(2)
    assert serving(HEAD) == ["dgx-spark-serve-lab-tiny-llama-trtllm-r0 exited"]  # mpirun noticed the lost rank
    status = playbook("model_status.yml")
    assert status.returncode != 0 and "rank 1 on spark-ba63 is down" in status.stdout
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama-trtllm")
    assert out.returncode == 0, out.stdout[-3000:]
    assert serving(WORKER) == ["dgx-spark-serve-lab-tiny-llama-trtllm-r1 running"]


def test_engine_path_builds_once_syncs_the_engine_and_serves_it():
    out = playbook("launch_model.yml", "-e", "model=lab-tiny-llama-trt-engine")
    assert out.returncode == 0, out.stdout[-4000:]
    engine = "/var/lib/dgx-spark/trt-engines/lab-tiny-llama-trt-engine"
    assert ssh(WORKER, "ls %s" % engine).stdout.split() == sorted(["build.log", "config.json", "dgx-spark-build.json",
                                                                   "rank0.engine", "rank1.engine"])
    logs = head_logs("lab-tiny-llama-trt-engine")
    assert "Using LLM with TensorRT backend" in logs and "rank 1 on spark-ba63 loaded 1 file(s)" in logs
    models = json.loads(ssh(HEAD, "curl -sf http://127.0.0.1:8355/v1/models").stdout)
    assert [m["id"] for m in models["data"]] == [engine]
    # a launch of another model swapped the previous one out
    assert "lab-tiny-llama-trtllm" not in " ".join(serving(HEAD) + serving(WORKER))


def test_executor_failure_names_the_recorded_error_and_brings_the_previous_model_back():
    ssh(HEAD, "rm -rf {m}-unknown-arch && cp -r {m} {m}-unknown-arch && "
              "sed -i 's/LlamaForCausalLM/GptOssForCausalLM/' {m}-unknown-arch/config.json".format(m=MODEL))
    entry = {"local_path": MODEL + "-unknown-arch", "engine": "trtllm", "image": "dgx-spark-lab/trtllm:double",
             "params_b": 0.01, "dtype": "float32", "tp": 2, "max_model_len": 512}
    start = time.monotonic()
    out = playbook("launch_model.yml", "-e", "model=unknown-arch", "-e",
                   json.dumps({"model_serving_catalog": {"unknown-arch": entry}, "model_serving_ready_timeout": 120}))
    assert out.returncode != 0 and time.monotonic() - start < 300
    assert "TensorRT-LLM errors: Failed to initialize executor on rank 0: Cannot determine model architecture from config" \
        in out.stdout
    assert "The previous model lab-tiny-llama-trt-engine is back and answers a real completion." in out.stdout
    assert serving(HEAD) == ["dgx-spark-serve-lab-tiny-llama-trt-engine-r0 running"]
    assert serving(WORKER) == ["dgx-spark-serve-lab-tiny-llama-trt-engine-r1 running"]


def test_solo_runs_trtllm_serve_alone_without_mpirun_or_ssh():
    entry = {"local_path": MODEL, "engine": "trtllm", "image": "dgx-spark-lab/trtllm:double", "params_b": 0.01,
             "dtype": "float32", "tp": 1, "max_model_len": 512}
    out = playbook("launch_model.yml", "-e", "model=trtllm-solo", "-e",
                   json.dumps({"model_serving_catalog": {"trtllm-solo": entry}}))
    assert out.returncode == 0, out.stdout[-3000:]
    assert serving(HEAD) == ["dgx-spark-serve-trtllm-solo-r0 running"] and serving(WORKER) == []
    args = container_args(HEAD, "dgx-spark-serve-trtllm-solo-r0")
    assert args[:2] == [MODEL, "--backend"] and "--tp_size" in args and args[args.index("--tp_size") + 1] == "1"
    assert "rank 0 on spark-2959 loaded 1 file(s)" in head_logs("trtllm-solo")


def test_status_names_an_unreachable_node_instead_of_calling_its_rank_missing(tmp_path):
    # the worker at an address nobody answers (the lab's own inventory first, this override after it)
    override = tmp_path / "unreachable.yml"
    override.write_text("all:\n  hosts:\n    spark-ba63:\n      ansible_host: %s.99\n" % MGMT)
    status = playbook("model_status.yml", "-i", str(lab_inventory()), "-i", str(override), timeout=300)
    assert status.returncode != 0
    assert "spark-ba63 is unreachable: its containers could not be checked" in status.stdout
    assert "no container on any node" not in status.stdout
