"""trt_build on the lab head with the TensorRT-LLM tools' double (lab/trtllm): build, no rebuild, check mode,
a failing build that keeps the previous engine, an image without the tools."""

from __future__ import annotations

import json

import pytest
from labkit import lab, module, ssh

HEAD = "spark-2959"
IMAGE = "dgx-spark-lab/trtllm:double"
ENGINES = "/var/lib/dgx-spark/engines"
ENGINE = ENGINES + "/tiny-llama-tp2"
BROKEN_MODEL = "/home/spark/models/tiny-llama-no-weights"


def build(check=False, **overrides):
    args = {"model_dir": "/home/spark/models/tiny-llama", "engine_dir": ENGINE, "image": IMAGE, "tp": 2,
            "dtype": "float32", "max_batch_size": 4, "max_seq_len": 512, "gpus": ""}
    args.update(overrides)
    return module(HEAD, "trt_build", args, "--become", *(["--check"] if check else []))


@pytest.fixture(scope="module", autouse=True)
def trtllm_image():
    lab("up")
    lab("model")
    lab("trtllm")
    ssh(HEAD, "sudo rm -rf %s %s && cp -r /home/spark/models/tiny-llama %s && rm %s/*.safetensors"
        % (ENGINES, BROKEN_MODEL, BROKEN_MODEL, BROKEN_MODEL))
    yield
    ssh(HEAD, "sudo rm -rf %s %s" % (ENGINES, BROKEN_MODEL))


def manifest():
    return json.loads(ssh(HEAD, "sudo cat %s/dgx-spark-build.json" % ENGINE).stdout)


def test_first_build_writes_every_rank_and_the_manifest():
    rc, result = build()
    assert rc == 0 and result["changed"] and result["built"], result.get("msg")
    assert result["reasons"] == ["no engine yet"]
    assert sorted(result["rank_files"]) == ["config.json", "rank0.engine", "rank1.engine"]
    assert result["tools"]["converter"] == "/app/tensorrt_llm/examples/models/core/llama/convert_checkpoint.py"
    assert result["tool_versions"] == {"tensorrt_llm": "1.1.0rc3", "printed": "1.1.0rc3"}
    assert manifest()["build_args"]["max_seq_len"] == 512
    assert "Total time of building all engines" in ssh(HEAD, "sudo cat %s/build.log" % ENGINE).stdout


def test_unchanged_inputs_build_nothing():
    rc, result = build()
    assert rc == 0 and not result["changed"] and not result["built"]
    assert result["msg"].startswith("engine up to date")


def test_check_mode_says_it_would_rebuild_and_why_without_touching_the_engine_or_running_the_image():
    before = manifest()
    since = ssh(HEAD, "date +%s.%N").stdout.strip()  # the previous test's probe ran within this second
    rc, result = build(max_seq_len=1024, check=True)
    assert rc == 0 and result["changed"] and result["would_build"]
    assert result["reasons"] == ["max_seq_len 512 -> 1024"]
    assert manifest() == before
    # nothing ran (nor was pulled): docker's own event log since the check began holds no container start
    events = ssh(HEAD, "docker events --since %s --until $(date +%%s.%%N) --filter type=container --filter event=start "
                       "--format '{{.Actor.Attributes.image}}'" % since).stdout
    assert events.strip() == ""
    rc, result = build(check=True, image="127.0.0.1:5999/absent/trtllm:1")
    assert rc == 0 and not result["changed"], result.get("msg")
    assert "not in check mode" in result["msg"]


def test_a_failing_build_keeps_the_previous_engine_and_leaves_no_half_engine():
    before = manifest()
    rc, result = build(model_dir=BROKEN_MODEL, max_seq_len=1024)
    assert rc != 0 and not result.get("built")
    assert "TensorRT-LLM convert step failed (rc=1): No safetensors weights found" in result["msg"]
    assert any("[TRT-LLM] [E]" in line for line in result["log_tail"])
    assert manifest() == before
    assert ssh(HEAD, "sudo ls -A %s" % ENGINES).stdout.split() == ["tiny-llama-tp2"]  # no .building-* left


def test_an_image_without_the_tools_fails_naming_what_is_missing():
    rc, result = build(image="dgx-spark-lab/trtllm-base")  # the double's base: OpenMPI and python, not the tools
    assert rc != 0
    assert "trtllm-build is not on the image's PATH" in result["msg"]
    assert "/app/tensorrt_llm/examples/models/core/llama/convert_checkpoint.py" in result["msg"]


def test_an_unknown_architecture_fails_before_anything_runs():
    ssh(HEAD, "sudo sed -i 's/LlamaForCausalLM/GptOssForCausalLM/' %s/config.json" % BROKEN_MODEL)
    rc, result = build(model_dir=BROKEN_MODEL)
    assert rc != 0 and "architecture GptOssForCausalLM has no checkpoint converter" in result["msg"]
