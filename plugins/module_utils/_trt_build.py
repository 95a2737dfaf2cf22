# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TensorRT-LLM engine builds: the tools, their argv, the build manifest and what the tools print.

Tools are resolved inside the TensorRT-LLM image, never by searching its filesystem:
  trtllm-build   the CLI on PATH (every release ships it);
  converter      `convert_checkpoint.py` of the model's family, or `quantize.py` for fp8/nvfp4, at the pinned paths
                 NVIDIA's release containers use (examples under /app/tensorrt_llm/examples: `models/core/<family>/`
                 since 0.17, `<family>/` before); an explicit `converter` overrides.
A tool that is not found fails the build naming the tool and the paths tried.
"""

from __future__ import annotations

import hashlib
import json

EXAMPLES = "/app/tensorrt_llm/examples"
CONVERTER_PATHS = ("%s/models/core/{family}/convert_checkpoint.py" % EXAMPLES, "%s/{family}/convert_checkpoint.py" % EXAMPLES)
QUANTIZER_PATHS = ("%s/quantization/quantize.py" % EXAMPLES,)
FAMILIES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama", "MixtralForCausalLM": "llama",
            "Qwen2ForCausalLM": "qwen", "Qwen3ForCausalLM": "qwen", "Gemma2ForCausalLM": "gemma",
            "Gemma3ForCausalLM": "gemma", "Phi3ForCausalLM": "phi", "NemotronForCausalLM": "nemotron"}
# quantization -> (tool, flags): weight-only through the family converter, fp8/nvfp4 through ModelOpt's quantize.py
QUANTIZATION = {"none": ("converter", []),
                "int8_wo": ("converter", ["--use_weight_only", "--weight_only_precision", "int8"]),
                "int4_wo": ("converter", ["--use_weight_only", "--weight_only_precision", "int4"]),
                "fp8": ("quantizer", ["--qformat", "fp8"]),
                "nvfp4": ("quantizer", ["--qformat", "nvfp4"])}
MANIFEST = "dgx-spark-build.json"
MODEL_MOUNT, WORK_MOUNT = "/model", "/work"

# What runs inside the image to find the tools: prints JSON. Constant text; the candidates come as argv.
PROBE = r"""
import json, os, shutil, sys
from importlib import metadata
try:
    version = metadata.version("tensorrt_llm")
except metadata.PackageNotFoundError:
    version = None
print(json.dumps({"version": version, "trtllm_build": shutil.which("trtllm-build"),
                  "python": sys.executable, "present": [p for p in sys.argv[1:] if os.path.isfile(p)]}))
"""


class BuildError(ValueError):
    """The build cannot run as asked; the message says what is missing or wrong."""


def family(model_config):
    """The converter family of a Hugging Face config.json (dict), or BuildError naming the architecture."""
    architectures = model_config.get("architectures") or []
    for name in architectures:
        if name in FAMILIES:
            return FAMILIES[name]
    raise BuildError("architecture %s has no checkpoint converter known to trt_build (known: %s); pass converter= "
                     "with the script's path in the image, or serve it with the PyTorch backend (no engine)"
                     % (", ".join(architectures) or "(none in config.json)", ", ".join(sorted(FAMILIES))))


def candidates(model_config, quantization):
    """Paths in the image where the converter for this model and quantization may be, in order."""
    tool = QUANTIZATION[quantization][0]
    if tool == "quantizer":
        return list(QUANTIZER_PATHS)
    return [path.format(family=family(model_config)) for path in CONVERTER_PATHS]


def resolve(probe, tried, converter=None):
    """{trtllm_build, converter, version} from the image probe; BuildError naming what is missing."""
    missing = []
    if not probe.get("trtllm_build"):
        missing.append("trtllm-build is not on the image's PATH")
    chosen = converter if converter else next((p for p in tried if p in probe.get("present", [])), None)
    if not chosen:
        missing.append("no checkpoint converter at %s" % " or ".join(tried))
    if missing:
        raise BuildError("the image is not a usable TensorRT-LLM image: %s (TensorRT-LLM %s)"
                         % ("; ".join(missing), probe.get("version") or "not installed"))
    return {"trtllm_build": probe["trtllm_build"], "converter": chosen, "version": probe.get("version"),
            "python": probe.get("python") or "python3"}


def build_args(params):
    """The arguments that shape an engine (what the manifest records)."""
    keys = ("tp", "pp", "dtype", "quantization", "max_batch_size", "max_seq_len", "max_num_tokens", "gemm_plugin",
            "extra_build_args")
    return dict((key, params.get(key)) for key in keys)


def convert_argv(tools, args):
    """The converter's argv inside the container (model at MODEL_MOUNT, checkpoint into WORK_MOUNT/checkpoint)."""
    argv = [tools["python"], tools["converter"], "--model_dir", MODEL_MOUNT, "--output_dir",
            WORK_MOUNT + "/checkpoint", "--dtype", args["dtype"], "--tp_size", str(args["tp"]),
            "--pp_size", str(args["pp"])]
    return argv + QUANTIZATION[args["quantization"]][1]


def trtllm_build_argv(tools, args):
    """trtllm-build's argv inside the container."""
    argv = [tools["trtllm_build"], "--checkpoint_dir", WORK_MOUNT + "/checkpoint", "--output_dir",
            WORK_MOUNT + "/engine", "--workers", str(args["tp"]), "--max_batch_size", str(args["max_batch_size"]),
            "--max_seq_len", str(args["max_seq_len"]), "--gemm_plugin", args["gemm_plugin"]]
    if args.get("max_num_tokens"):
        argv += ["--max_num_tokens", str(args["max_num_tokens"])]
    return argv + list(args.get("extra_build_args") or [])


def rank_files(args):
    """The files a complete engine directory holds: config.json and one engine per rank."""
    return ["config.json"] + ["rank%d.engine" % rank for rank in range(args["tp"] * args["pp"])]


def manifest(config_text, args, version):
    return {"schema": 1, "source_config_sha256": hashlib.sha256(config_text.encode("utf-8")).hexdigest(),
            "build_args": args, "tensorrt_llm_version": version}


def reasons_to_build(previous, wanted, present_files):
    """Why the engine must be (re)built; empty when the engine on disk matches `wanted` and is complete.

    previous: the manifest on disk (None when absent); present_files: names in the engine dir (None: no dir)."""
    if present_files is None:
        return ["no engine yet"]
    if previous is None:
        return ["no build manifest beside the engine (built elsewhere, or a build that did not finish)"]
    found = []
    if previous.get("tensorrt_llm_version") != wanted["tensorrt_llm_version"]:
        found.append("TensorRT-LLM %s -> %s" % (previous.get("tensorrt_llm_version"), wanted["tensorrt_llm_version"]))
    if previous.get("source_config_sha256") != wanted["source_config_sha256"]:
        found.append("the source model's config.json changed")
    old, new = previous.get("build_args") or {}, wanted["build_args"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            found.append("%s %s -> %s" % (key, json.dumps(old.get(key)), json.dumps(new.get(key))))
    if not found:
        missing = [name for name in rank_files(new) if name not in present_files]
        if missing:
            found.append("engine files missing: %s" % ", ".join(missing))
    return found
