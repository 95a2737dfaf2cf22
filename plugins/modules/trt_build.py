#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: trt_build
short_description: Build a TensorRT-LLM engine with the standard CLI inside the TensorRT-LLM container, once
version_added: 0.1.0
description:
  - Converts a Hugging Face checkpoint with the model family's C(convert_checkpoint.py) (or C(quantize.py) for
    fp8/nvfp4), then runs C(trtllm-build --checkpoint_dir ... --output_dir ... --workers <tp> --max_batch_size ...
    --max_seq_len ...), each in a C(docker run --rm) of O(image) with the model mounted read-only.
  - Tools are resolved in the image, in this order - C(trtllm-build) on PATH; the converter at O(converter), else
    at the pinned paths of NVIDIA's release containers (C(/app/tensorrt_llm/examples/models/core/<family>/) since
    0.17, C(/app/tensorrt_llm/examples/<family>/) before, C(quantization/quantize.py)); else the task fails naming
    what is missing. It never searches the filesystem and never downloads code.
  - Idempotent through a build manifest (C(dgx-spark-build.json)) beside the engine - the SHA-256 of the source
    C(config.json), the build arguments and the TensorRT-LLM version. When they match and every rank's engine file
    is there, nothing is built and the result says why. Check mode reports whether it would build and why.
  - The build runs in a temporary directory beside O(engine_dir) and replaces it only when complete, so a failed
    or interrupted build never leaves a half engine that a later run would take as valid; the previous engine
    stays. The containers are named C(dgx-spark-trt-build-<engine dir name>-convert|build); follow a long build
    with C(docker logs -f) on that name. The tools' output is kept as C(build.log) in the engine directory.
  - Needs root (become) - the build containers write as root into the directory beside O(engine_dir).
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  model_dir:
    description: The Hugging Face checkpoint directory on this node (with C(config.json)).
    type: path
    required: true
  engine_dir:
    description: Where the engine goes on this node.
    type: path
    required: true
  image:
    description: The TensorRT-LLM container image (present on this node).
    type: str
    required: true
  tp:
    description: Tensor parallel size (also trtllm-build's C(--workers)).
    type: int
    default: 1
  pp:
    description: Pipeline parallel size.
    type: int
    default: 1
  dtype:
    description: Weights and activation dtype for the converter.
    type: str
    choices: [float16, bfloat16, float32]
    default: bfloat16
  quantization:
    description: V(none); V(int8_wo)/V(int4_wo) weight-only through the family converter; V(fp8)/V(nvfp4) through C(quantize.py).
    type: str
    choices: [none, int8_wo, int4_wo, fp8, nvfp4]
    default: none
  max_batch_size:
    description: trtllm-build C(--max_batch_size).
    type: int
    default: 8
  max_seq_len:
    description: trtllm-build C(--max_seq_len).
    type: int
    default: 8192
  max_num_tokens:
    description: trtllm-build C(--max_num_tokens) (unset leaves the tool's default).
    type: int
  gemm_plugin:
    description: trtllm-build C(--gemm_plugin).
    type: str
    default: auto
  extra_build_args:
    description: More trtllm-build options (C(--option), C(--option=value) or a value); the options above are refused here.
    type: list
    elements: str
    default: []
  converter:
    description: The converter script's path inside the image, when the pinned paths do not fit.
    type: str
  gpus:
    description: docker C(--gpus) for the build containers (empty for none).
    type: str
    default: all
  docker:
    description: The docker command.
    type: str
    default: docker
  timeout:
    description: Seconds for the whole build (conversion and engine build).
    type: int
    default: 14400
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the manifest and the source model only; never runs nor pulls the image (the TensorRT-LLM version
      is taken as unchanged); reports O(ignore:would_build) and the reasons, builds nothing.
  diff_mode:
    support: full
    details: The manifest before and after.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Build the engine for both Sparks (tp=2), once
  dgx_spark.cluster.trt_build:
    model_dir: /var/lib/dgx-spark/models/llama-3.1-8b-instruct
    engine_dir: /var/lib/dgx-spark/engines/llama-3.1-8b-tp2
    image: nvcr.io/nvidia/tensorrt-llm/release:1.1.0rc3
    tp: 2
    dtype: bfloat16
    max_batch_size: 16
    max_seq_len: 8192
  become: true
"""

RETURN = r"""
built:
  description: Whether an engine was built in this run.
  returned: always
  type: bool
reasons:
  description: Why it was (or would be) built; empty when the engine was up to date.
  returned: always
  type: list
  elements: str
engine_dir:
  description: The engine directory.
  returned: always
  type: str
rank_files:
  description: The engine's files and their sizes in bytes.
  returned: when the engine exists
  type: dict
build_args:
  description: The arguments that shape the engine (recorded in the manifest).
  returned: always
  type: dict
duration:
  description: Seconds the build took.
  returned: when built
  type: float
tool_versions:
  description: TensorRT-LLM version from the image's package metadata, and as the tools printed it.
  returned: always
  type: dict
tools:
  description: The trtllm-build and converter paths used inside the image.
  returned: always
  type: dict
log_tail:
  description: The last lines the failing tool printed.
  returned: on a failed build
  type: list
  elements: str
"""

import json
import os
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _tool_output, _trt_build, _validate
from ansible_collections.dgx_spark.cluster.plugins.module_utils._runner import CommandRunner, tail

RESERVED = ("--checkpoint_dir", "--output_dir", "--workers", "--max_batch_size", "--max_seq_len", "--max_num_tokens",
            "--gemm_plugin")


class Build:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.runner = CommandRunner(module)
        self.docker = None

    def validate(self):
        params = self.params
        checks = [("model_dir", params["model_dir"], "model_dir"), ("engine_dir", params["engine_dir"], "model_dir"),
                  ("image", params["image"], "image"), ("docker", params["docker"], "command"),
                  ("gemm_plugin", params["gemm_plugin"], "word")]
        if params["converter"]:
            checks.append(("converter", params["converter"], "path"))
        found = _validate.first_problem(checks) or _validate.extra_args_problem(
            "extra_build_args", params["extra_build_args"], RESERVED, "is set with the module's own option")
        if not found and not (1 <= params["tp"] <= 8 and 1 <= params["pp"] <= 8 and params["max_batch_size"] >= 1
                              and params["max_seq_len"] >= 16 and params["timeout"] >= 60):
            found = "tp and pp must be 1..8, max_batch_size >= 1, max_seq_len >= 16, timeout >= 60"
        if found:
            self.module.fail_json(msg=found)

    def model_config(self):
        path = os.path.join(self.params["model_dir"], "config.json")
        try:
            with open(path) as handle:
                text = handle.read()
            return text, json.loads(text)
        except (IOError, OSError, ValueError) as exc:
            self.module.fail_json(msg="cannot read the source model's %s (%s): is the model downloaded to "
                                      "model_dir on this node?" % (path, exc))

    def probe(self, tried):
        argv = [self.docker, "run", "--rm", "--pull", "never", self.params["image"], "python3", "-c", _trt_build.PROBE] + tried
        out = self.runner.check(argv, "probing %s for the TensorRT-LLM tools" % self.params["image"],
                                "is the image present on this node?", timeout=300)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            self.runner.fail("the image probe printed no result", argv, 0, out, "")
        return json.loads(lines[-1])

    def run_step(self, step, inside, workdir, deadline):
        name = "dgx-spark-trt-build-%s-%s" % (os.path.basename(self.params["engine_dir"].rstrip("/")), step)
        argv = [self.docker, "run", "--rm", "--pull", "never", "--name", name, "-v", "%s:%s:ro" % (self.params["model_dir"],
                _trt_build.MODEL_MOUNT), "-v", "%s:%s" % (workdir, _trt_build.WORK_MOUNT)]
        if self.params["gpus"]:
            argv += ["--gpus", self.params["gpus"]]
        argv += [self.params["image"]] + inside
        self.runner.run([self.docker, "rm", "-f", name])  # a container left by an interrupted run
        rc, out, err = self.runner.run(argv, timeout=max(60, int(deadline - time.monotonic())))
        if rc != 0:
            self.runner.run([self.docker, "rm", "-f", name])
        return argv, rc, out, err

    def main(self):
        self.validate()
        params = self.params
        self.docker = self.runner.which(params["docker"], "install Docker (the build runs in the TensorRT-LLM image)")
        config_text, config = self.model_config()
        args = _trt_build.build_args(params)
        engine_dir = params["engine_dir"].rstrip("/")
        previous, present = self.on_disk(engine_dir)
        if self.module.check_mode:
            # The TensorRT-LLM version is only known by running the image, which check mode never does (nor pull
            # it): the engine on disk is judged by everything else, its version taken as unchanged.
            tools = {"version": (previous or {}).get("tensorrt_llm_version"), "trtllm_build": None, "converter": None}
        else:
            try:
                tried = [params["converter"]] if params["converter"] else _trt_build.candidates(config, args["quantization"])
                tools = _trt_build.resolve(self.probe(tried), tried, params["converter"])
            except _trt_build.BuildError as exc:
                self.module.fail_json(msg=str(exc), build_args=args)
        wanted = _trt_build.manifest(config_text, args, tools["version"])
        reasons = _trt_build.reasons_to_build(previous, wanted, present)
        result = {"engine_dir": engine_dir, "build_args": args, "reasons": reasons, "built": False,
                  "tools": {"trtllm_build": tools["trtllm_build"], "converter": tools["converter"]},
                  "tool_versions": {"tensorrt_llm": tools["version"]},
                  "diff": {"before": json.dumps(previous, indent=2, sort_keys=True) + "\n" if previous else "",
                           "after": json.dumps(wanted, indent=2, sort_keys=True) + "\n",
                           "before_header": engine_dir + "/" + _trt_build.MANIFEST,
                           "after_header": engine_dir + "/" + _trt_build.MANIFEST}}
        if not reasons:
            result.update(changed=False, rank_files=self.sizes(engine_dir, present), diff={},
                          msg="engine up to date: the manifest matches and every rank's file is there" +
                          (" (the image's TensorRT-LLM version is read in a real run, not in check mode)"
                           if self.module.check_mode else ""))
            self.module.exit_json(**result)
        if self.module.check_mode:
            result.update(changed=True, would_build=True, msg="would build: " + "; ".join(reasons))
            self.module.exit_json(**result)
        self.build(engine_dir, tools, args, wanted, result)

    def on_disk(self, engine_dir):
        if not os.path.isdir(engine_dir):
            return None, None
        present = sorted(os.listdir(engine_dir))
        try:
            with open(os.path.join(engine_dir, _trt_build.MANIFEST)) as handle:
                return json.load(handle), present
        except (IOError, OSError, ValueError):
            return None, present

    @staticmethod
    def sizes(engine_dir, names):
        return dict((name, os.path.getsize(os.path.join(engine_dir, name))) for name in names
                    if name.endswith(".engine") or name == "config.json")

    def build(self, engine_dir, tools, args, wanted, result):
        parent = os.path.dirname(engine_dir)
        os.makedirs(parent, exist_ok=True)
        workdir = tempfile.mkdtemp(prefix=".%s.building-" % os.path.basename(engine_dir), dir=parent)
        start = time.monotonic()
        deadline = start + self.params["timeout"]
        log = []
        try:
            for step, inside in (("convert", _trt_build.convert_argv(tools, args)),
                                 ("build", _trt_build.trtllm_build_argv(tools, args))):
                argv, rc, out, err = self.run_step(step, inside, workdir, deadline)
                log.append("$ %s\n%s%s" % (" ".join(inside), out, err))
                if rc != 0:
                    errors = _tool_output.trtllm_errors(out + err)
                    what = "timed out" if rc == 124 else "failed (rc=%s)" % rc
                    result.update(log_tail=tail(out + err, 30).splitlines(), cmd=argv, rc=rc, stdout=out, stderr=err)
                    self.module.fail_json(msg="TensorRT-LLM %s step %s: %s. The previous engine (if any) is kept in %s."
                                          % (step, what, "; ".join(errors[-3:]) or tail(out + err, 5), engine_dir),
                                          **result)
                result["tool_versions"]["printed"] = result["tool_versions"].get("printed") or \
                    _tool_output.trtllm_version(out + err)
            built = os.path.join(workdir, "engine")
            present = sorted(os.listdir(built)) if os.path.isdir(built) else []
            missing = [name for name in _trt_build.rank_files(args) if name not in present]
            if missing:
                self.module.fail_json(msg="trtllm-build finished but the engine lacks %s; nothing was replaced in %s"
                                      % (", ".join(missing), engine_dir), **result)
            with open(os.path.join(built, _trt_build.MANIFEST), "w") as handle:
                json.dump(wanted, handle, indent=2, sort_keys=True)
            with open(os.path.join(built, "build.log"), "w") as handle:
                handle.write("\n".join(log))
            if os.path.isdir(engine_dir):
                os.rename(engine_dir, os.path.join(workdir, "previous"))
            os.rename(built, engine_dir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        result.update(changed=True, built=True, duration=round(time.monotonic() - start, 1),
                      rank_files=self.sizes(engine_dir, present), msg="built: " + "; ".join(result["reasons"]))
        self.module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            model_dir=dict(type="path", required=True),
            engine_dir=dict(type="path", required=True),
            image=dict(type="str", required=True),
            tp=dict(type="int", default=1),
            pp=dict(type="int", default=1),
            dtype=dict(type="str", choices=["float16", "bfloat16", "float32"], default="bfloat16"),
            quantization=dict(type="str", choices=list(_trt_build.QUANTIZATION), default="none"),
            max_batch_size=dict(type="int", default=8),
            max_seq_len=dict(type="int", default=8192),
            max_num_tokens=dict(type="int", no_log=False),  # a token count, not a secret
            gemm_plugin=dict(type="str", default="auto"),
            extra_build_args=dict(type="list", elements="str", default=[]),
            converter=dict(type="str"),
            gpus=dict(type="str", default="all"),
            docker=dict(type="str", default="docker"),
            timeout=dict(type="int", default=14400),
        ),
        supports_check_mode=True,
    )
    Build(module).main()


if __name__ == "__main__":
    main()
