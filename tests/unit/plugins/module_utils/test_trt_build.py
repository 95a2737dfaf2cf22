"""trt_build's logic: tool resolution, argv, the build manifest, and the lines the real tools print."""

from __future__ import annotations

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _tool_output, _trt_build

from ansible_collections.dgx_spark.cluster.tests.unit.recorded import fixture_body

LLAMA = {"architectures": ["LlamaForCausalLM"], "max_position_embeddings": 8192}
ARGS = {"tp": 2, "pp": 1, "dtype": "bfloat16", "quantization": "none", "max_batch_size": 16, "max_seq_len": 8192,
        "max_num_tokens": None, "gemm_plugin": "auto", "extra_build_args": []}
TOOLS = {"trtllm_build": "/usr/local/bin/trtllm-build", "python": "/usr/bin/python3",
         "converter": "/app/tensorrt_llm/examples/models/core/llama/convert_checkpoint.py", "version": "1.1.0rc3"}


def test_converter_paths_are_pinned_per_family_and_quantization():
    assert _trt_build.candidates(LLAMA, "int8_wo") == [
        "/app/tensorrt_llm/examples/models/core/llama/convert_checkpoint.py",
        "/app/tensorrt_llm/examples/llama/convert_checkpoint.py"]
    assert _trt_build.candidates({"architectures": ["Qwen2ForCausalLM"]}, "fp8") == [
        "/app/tensorrt_llm/examples/quantization/quantize.py"]
    with pytest.raises(_trt_build.BuildError, match="architecture GptOssForCausalLM has no checkpoint converter"):
        _trt_build.candidates({"architectures": ["GptOssForCausalLM"]}, "none")


def test_resolution_takes_the_cli_on_path_and_the_first_pinned_converter_present():
    tried = _trt_build.candidates(LLAMA, "none")
    probe = {"version": "0.16.0", "trtllm_build": "/usr/local/bin/trtllm-build", "python": "/usr/bin/python3",
             "present": [tried[1]]}  # the pre-0.17 examples layout
    tools = _trt_build.resolve(probe, tried)
    assert (tools["converter"], tools["version"]) == (tried[1], "0.16.0")


def test_a_missing_tool_fails_naming_it_and_the_paths_tried():
    tried = _trt_build.candidates(LLAMA, "none")
    with pytest.raises(_trt_build.BuildError) as raised:
        _trt_build.resolve({"version": None, "trtllm_build": None, "present": []}, tried)
    message = str(raised.value)
    assert "trtllm-build is not on the image's PATH" in message and tried[0] in message and tried[1] in message
    assert "TensorRT-LLM not installed" in message


def test_argv_is_the_standard_cli():
    convert = _trt_build.convert_argv(TOOLS, dict(ARGS, quantization="int4_wo"))
    assert convert == ["/usr/bin/python3", TOOLS["converter"], "--model_dir", "/model", "--output_dir",
                       "/work/checkpoint", "--dtype", "bfloat16", "--tp_size", "2", "--pp_size", "1",
                       "--use_weight_only", "--weight_only_precision", "int4"]
    build = _trt_build.trtllm_build_argv(TOOLS, dict(ARGS, max_num_tokens=4096, extra_build_args=["--use_paged_context_fmha", "enable"]))
    assert build == ["/usr/local/bin/trtllm-build", "--checkpoint_dir", "/work/checkpoint", "--output_dir",
                     "/work/engine", "--workers", "2", "--max_batch_size", "16", "--max_seq_len", "8192",
                     "--gemm_plugin", "auto", "--max_num_tokens", "4096", "--use_paged_context_fmha", "enable"]
    assert _trt_build.rank_files(ARGS) == ["config.json", "rank0.engine", "rank1.engine"]


def test_unchanged_inputs_and_a_complete_engine_mean_no_build():
    wanted = _trt_build.manifest('{"a": 1}', ARGS, "1.1.0rc3")
    assert _trt_build.reasons_to_build(wanted, wanted, ["config.json", "dgx-spark-build.json", "rank0.engine",
                                                        "rank1.engine"]) == []


@pytest.mark.parametrize("previous, present, reason", [
    (None, None, "no engine yet"),
    (None, ["rank0.engine"], "no build manifest beside the engine"),
    (_trt_build.manifest('{"a": 1}', ARGS, "1.0.0"), ["config.json", "rank0.engine", "rank1.engine"],
     "TensorRT-LLM 1.0.0 -> 1.1.0rc3"),
    (_trt_build.manifest('{"a": 2}', ARGS, "1.1.0rc3"), ["config.json", "rank0.engine", "rank1.engine"],
     "the source model's config.json changed"),
    (_trt_build.manifest('{"a": 1}', dict(ARGS, max_seq_len=4096), "1.1.0rc3"),
     ["config.json", "rank0.engine", "rank1.engine"], "max_seq_len 4096 -> 8192"),
    (_trt_build.manifest('{"a": 1}', ARGS, "1.1.0rc3"), ["config.json", "rank0.engine"],
     "engine files missing: rank1.engine"),
])
def test_every_reason_to_rebuild_is_named(previous, present, reason):
    wanted = _trt_build.manifest('{"a": 1}', ARGS, "1.1.0rc3")
    reasons = _trt_build.reasons_to_build(previous, wanted, present)
    assert any(r.startswith(reason) for r in reasons), reasons


def test_the_version_the_real_tools_print():
    assert _tool_output.trtllm_version(fixture_body("trtllm/trtllm_build_start_lines_trtllm3654.txt")) == "0.18.0"
    assert _tool_output.trtllm_version(
        fixture_body("trtllm/trtllm_serve_tensorrt_backend_startup_head_spark_trtllm15941.txt")) == "1.3.0rc20"
    assert _tool_output.trtllm_version(fixture_body("trtllm/trtllm_serve_gptoss120b_startup_to_ready_spark.txt")) == "1.1.0rc3"
    assert _tool_output.trtllm_version("no version here") is None


def test_trtllm_serve_readiness_and_failure_from_the_real_logs():
    ready = _tool_output.trtllm_serve_log(fixture_body("trtllm/trtllm_serve_gptoss120b_startup_to_ready_spark.txt"))
    assert ready == {"version": "1.1.0rc3", "backend": "pytorch", "ready": True, "url": "http://0.0.0.0:8355",
                     "errors": []}
    starting = _tool_output.trtllm_serve_log(
        fixture_body("trtllm/trtllm_serve_tensorrt_backend_startup_head_spark_trtllm15941.txt"))
    assert (starting["version"], starting["backend"], starting["ready"]) == ("1.3.0rc20", "tensorrt", False)
    failed = _tool_output.trtllm_serve_log(
        fixture_body("trtllm/trtllm_serve_error_failed_to_initialize_executor_trtllm6193.txt"))
    assert not failed["ready"] and failed["errors"][0].startswith("Failed to initialize executor on rank 0")


def test_error_lines_of_a_real_failure():
    errors = _tool_output.trtllm_errors(fixture_body("trtllm/trtllm_serve_error_failed_to_initialize_executor_trtllm6193.txt"))
    assert errors[0] == "Failed to initialize executor on rank 0: Cannot determine model architecture from config"
    assert _tool_output.trtllm_errors(fixture_body("trtllm/trtllm_build_start_lines_trtllm3654.txt")) == []
