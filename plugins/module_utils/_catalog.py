# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The model catalog's rules: an entry, merged from the shipped catalog and the inventory, checked field by field.

Every string that can reach a command line is checked against an explicit pattern here, on the controller, before
any host is contacted; a rejection names the model, the field and the rule.
"""

from __future__ import annotations

import re

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _validate

BYTES_PER_PARAM = {
    "float32": 4.0, "fp32": 4.0,
    "bfloat16": 2.0, "bf16": 2.0, "float16": 2.0, "fp16": 2.0, "half": 2.0, "auto": 2.0,
    "fp8": 1.0, "int8": 1.0,
    # 4-bit formats carry per-group scales: ~0.53 bytes per parameter
    "nvfp4": 0.53, "mxfp4": 0.53, "fp4": 0.53, "int4": 0.53, "awq": 0.53, "gptq": 0.53,
}
ENGINES = ("vllm", "trtllm")
MAX_RANKS = 8  # ranks of one model: one per GB10, up to eight Sparks
# trtllm-serve's backends: pytorch loads the checkpoint (NVIDIA's Spark recipe); tensorrt serves a trt_build engine.
TRTLLM_BACKENDS = ("pytorch", "tensorrt")
TRT_ENGINE_ROOT = "/var/lib/dgx-spark/trt-engines"

PATTERNS = {
    "key": (r"^[a-z0-9][a-z0-9._-]{0,63}$", "lowercase letters, digits, '._-', at most 64 characters"),
    "hf_repo": _validate.PATTERNS["hf_repo"],
    "image": _validate.PATTERNS["image"],
    "served_name": (r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$", "letters, digits and '._/-', at most 128 characters"),
    "env_name": (r"^[A-Z_][A-Z0-9_]{0,63}$", "uppercase letters, digits and '_'"),
    "env_value": ("^%s{0,256}$" % _validate.SAFE_VALUE, _validate.SAFE_RULE + " (no spaces or quotes)"),
    "option_key": (r"^[a-z][a-z0-9_]{0,63}$", "lowercase letters, digits and '_'"),
    "option_value": ("^%s{0,256}$" % _validate.SAFE_VALUE, _validate.SAFE_RULE),
    "gemm_plugin": (r"^(auto|disable|float16|bfloat16|float32|fp8|nvfp4)$",
                    "auto, disable, float16, bfloat16, float32, fp8 or nvfp4"),
}
# Options the role sets itself from the plan and the inventory; an entry may not override them through extra_args.
RESERVED_ARGS = {
    "vllm": ("--host", "--port", "--tensor-parallel-size", "-tp", "--pipeline-parallel-size", "-pp",
             "--nnodes", "--node-rank", "--master-addr", "--master-port", "--headless",
             "--distributed-executor-backend", "--served-model-name", "--model", "--max-model-len",
             "--dtype", "--quantization", "--api-key", "--download-dir"),
    "trtllm": ("--host", "--port", "--tp_size", "--pp_size", "--backend", "--extra_llm_api_options", "--tokenizer",
               "--max_seq_len", "--served_model_name"),
}
# trt_build settings an entry may give (trtllm_build), with their bounds; the rest comes from the entry itself.
TRTLLM_BUILD_INTS = {"max_batch_size": (1, 4096), "max_num_tokens": (16, 1048576)}
# A secret's name: one of these words between underscores (HF_TOKEN, NGC_API_KEY, AWS_SECRET_ACCESS_KEY), not a
# word that merely starts with one (TOKENIZERS_PARALLELISM).
SECRET_ENV = re.compile(r"(^|_)(TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIALS?|AUTH)(_|$)", re.I)
# The environment the role gives every rank (the fabric, the rank's address, offline weights): not an entry's to set.
ROLE_ENV = ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "TP_SOCKET_IFNAME", "UCX_NET_DEVICES",
            "OMPI_MCA_btl_tcp_if_include", "OMPI_MCA_oob_tcp_if_include", "NCCL_IB_HCA", "VLLM_HOST_IP",
            "HF_HUB_OFFLINE", "VLLM_API_KEY")

ENTRY_FIELDS = ("hf_repo", "local_path", "engine", "image", "params_b", "dtype", "quantization", "tp", "pp",
                "max_model_len", "served_name", "port", "extra_args", "env", "kv_cache_gib", "overhead_gib",
                "description", "trtllm_backend", "trtllm_options", "trtllm_build")


class CatalogError(ValueError):
    """A catalog entry breaks a rule; the message names the model, the field and the rule."""


def _rule(model, field, value, pattern_name):
    found = _validate.problem(field, value, pattern_name, PATTERNS)
    if found:
        raise CatalogError("model %s: %s" % (model, found))


def _int_in(model, field, value, low, high, also=None):
    """value when it is an integer low..high (or the word `also`); else CatalogError naming field and range."""
    if also is not None and value == also:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CatalogError("model %s: %s %r is not allowed: must be an integer %d..%d%s"
                           % (model, field, value, low, high, " or %r" % also if also is not None else ""))
    return value


def validated_env(owner, env, role_env):
    """An entry's extra environment as {NAME: "value"}: names and values of safe characters, no secret (they are
    never written where `systemctl show` or `docker inspect` prints them) and none of role_env (the role sets those).
    owner names the entry in a rejection ("model x", "job y")."""
    if not isinstance(env, dict):
        raise CatalogError("%s: env must be a mapping of NAME: value, got %r" % (owner, env))
    for name, value in env.items():
        found = _validate.problem("env name", name, "env_name", PATTERNS)
        if found:
            raise CatalogError("%s: %s" % (owner, found))
        if SECRET_ENV.search(name):
            raise CatalogError("%s: env %s is not allowed: secrets (tokens, keys) never go in the catalog; "
                               "the role passes them from a file or the controller's environment" % (owner, name))
        if name in role_env:
            raise CatalogError("%s: env %s is not allowed: the role sets it for every rank (from the plan "
                               "and the inventory)" % (owner, name))
        found = _validate.problem("env %s" % name, str(value), "env_value", PATTERNS)
        if found:
            raise CatalogError("%s: %s" % (owner, found))
    return dict((name, str(value)) for name, value in env.items())


def validate_extra_args(model, args, engine="vllm"):
    found = _validate.extra_args_problem("extra_args", args, RESERVED_ARGS[engine],
                                         "is set by the role from the catalog entry and the plan")
    if found:
        raise CatalogError("model %s: %s" % (model, found))
    return list(args)


def validate_options(model, options, field="trtllm_options", depth=0):
    """trtllm-serve's extra LLM API options (the YAML it reads): nested mappings of lowercase keys with scalar or
    list values. Returns a plain copy."""
    if not isinstance(options, dict):
        raise CatalogError("model %s: %s must be a mapping, got %r" % (model, field, options))
    out = {}
    for name, value in options.items():
        _rule(model, "%s key" % field, name, "option_key")
        where = "%s.%s" % (field, name)
        if isinstance(value, dict):
            if depth >= 3:
                raise CatalogError("model %s: %s is nested too deep (at most 4 levels)" % (model, where))
            out[name] = validate_options(model, value, where, depth + 1)
        elif isinstance(value, list):
            out[name] = [_option_scalar(model, "%s[%d]" % (where, index), item) for index, item in enumerate(value)]
        else:
            out[name] = _option_scalar(model, where, value)
    return out


def _option_scalar(model, field, value):
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    _rule(model, field, value, "option_value")
    return value


def _validate_trtllm(key, entry, out, engine_root):
    """The trtllm fields of an entry; sets served_name to what trtllm-serve names the model (its argument)."""
    out["trtllm_backend"] = entry.get("trtllm_backend", "pytorch")
    if out["trtllm_backend"] not in TRTLLM_BACKENDS:
        raise CatalogError("model %s: trtllm_backend %r is not allowed: must be one of %s"
                           % (key, out["trtllm_backend"], ", ".join(TRTLLM_BACKENDS)))
    out["trtllm_options"] = validate_options(key, entry.get("trtllm_options", {}))
    build = entry.get("trtllm_build", {})
    if not isinstance(build, dict) or sorted(set(build) - set(TRTLLM_BUILD_INTS) - {"gemm_plugin"}):
        raise CatalogError("model %s: trtllm_build must be a mapping of %s, got %r"
                           % (key, ", ".join(sorted(TRTLLM_BUILD_INTS) + ["gemm_plugin"]), build))
    for name, (low, high) in TRTLLM_BUILD_INTS.items():
        if name in build:
            _int_in(key, "trtllm_build.%s" % name, build[name], low, high)
    if "gemm_plugin" in build:
        _rule(key, "trtllm_build.gemm_plugin", build["gemm_plugin"], "gemm_plugin")
    out["trtllm_build"] = dict(build)
    if out["trtllm_backend"] == "tensorrt":
        _rule(key, "engine root", engine_root, "data_dir")
        out["engine_dir"] = "%s/%s" % (engine_root.rstrip("/"), key)
    # trtllm-serve names the model after its argument (it has no served-name option): the repository id, the
    # weights' path or the engine's path, each mounted at the same path in the containers.
    served = out.get("engine_dir") or entry.get("local_path") or entry["hf_repo"]
    if entry.get("served_name") not in (None, served):
        raise CatalogError("model %s: served_name %r is not allowed for engine trtllm: trtllm-serve serves the model "
                           "under its argument, here %r; leave served_name out" % (key, entry["served_name"], served))
    out["served_name"] = served


def validate_entry(key, entry, engine_root=TRT_ENGINE_ROOT):
    """The entry with defaults filled in, or CatalogError naming the field and the rule."""
    _rule(key, "key", key, "key")
    if not isinstance(entry, dict):
        raise CatalogError("model %s: the catalog entry must be a mapping, got %r" % (key, entry))
    unknown = sorted(set(entry) - set(ENTRY_FIELDS))
    if unknown:
        raise CatalogError("model %s: unknown field(s) %s (known: %s)"
                           % (key, ", ".join(unknown), ", ".join(ENTRY_FIELDS)))
    sources = [field for field in ("hf_repo", "local_path") if entry.get(field)]
    if len(sources) != 1:
        raise CatalogError("model %s: exactly one of hf_repo and local_path is required (got %s)"
                           % (key, ", ".join(sources) or "neither"))
    out = dict(entry)
    if "hf_repo" in sources:
        _rule(key, "hf_repo", entry["hf_repo"], "hf_repo")
    else:
        _rule(key, "local_path", entry["local_path"], "model_dir")
    out["engine"] = entry.get("engine", "vllm")
    if out["engine"] not in ENGINES:
        raise CatalogError("model %s: engine %r is not allowed: must be one of %s"
                           % (key, out["engine"], ", ".join(ENGINES)))
    _rule(key, "image", entry.get("image"), "image")
    params = entry.get("params_b")
    if params is None:
        raise CatalogError("model %s: params_b is required: the parameter count in billions (the memory plan needs "
                           "it)" % key)
    if isinstance(params, bool) or not isinstance(params, (int, float)) or not 0 < params <= 2000:
        raise CatalogError("model %s: params_b %r is not allowed: must be the parameter count in billions, "
                           "0 < params_b <= 2000" % (key, params))
    out["dtype"] = entry.get("dtype", "bfloat16")
    precision = entry.get("quantization") or out["dtype"]
    if precision not in BYTES_PER_PARAM or (entry.get("quantization") and out["dtype"] not in BYTES_PER_PARAM):
        raise CatalogError("model %s: dtype/quantization %r is not allowed: must be one of %s"
                           % (key, precision, ", ".join(sorted(BYTES_PER_PARAM))))
    out["tp"] = _int_in(key, "tp", entry.get("tp", "auto"), 1, MAX_RANKS, also="auto")
    out["pp"] = _int_in(key, "pp", entry.get("pp", "auto"), 1, MAX_RANKS, also="auto")
    if "auto" not in (out["tp"], out["pp"]) and out["tp"] * out["pp"] > MAX_RANKS:
        raise CatalogError("model %s: tp %d x pp %d is not allowed: at most %d ranks (one per GB10)"
                           % (key, out["tp"], out["pp"], MAX_RANKS))
    out["max_model_len"] = _int_in(key, "max_model_len", entry.get("max_model_len", 8192), 16, 1048576)
    if out["engine"] == "trtllm":
        _validate_trtllm(key, entry, out, engine_root)
    else:
        out["served_name"] = entry.get("served_name", key)
        _rule(key, "served_name", out["served_name"], "served_name")
        for field in ("trtllm_backend", "trtllm_options", "trtllm_build"):
            if field in entry:
                raise CatalogError("model %s: %s is for engine trtllm, not %s" % (key, field, out["engine"]))
    out["port"] = _int_in(key, "port", entry.get("port", 8355 if out["engine"] == "trtllm" else 8000), 1024, 65535)
    out["extra_args"] = validate_extra_args(key, entry.get("extra_args", []), out["engine"])
    out["env"] = validated_env("model %s" % key, entry.get("env", {}), ROLE_ENV)
    for field in ("kv_cache_gib", "overhead_gib"):
        value = entry.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise CatalogError("model %s: %s %r is not allowed: must be a number >= 0" % (key, field, value))
    return out


def catalog_entry(catalog, key, overrides=None, engine_root=TRT_ENGINE_ROOT):
    """The validated entry `key` of the shipped catalog merged with the inventory's overrides (same keys).
    engine_root: where trt_build engines go on the nodes (the tensorrt backend serves <engine_root>/<key>)."""
    merged = dict(catalog or {})
    for name, entry in (overrides or {}).items():
        merged[name] = dict(merged.get(name, {}), **entry) if isinstance(entry, dict) else entry
    if not isinstance(key, str) or key not in merged:
        if isinstance(key, str):
            _rule(key, "model", key, "key")
        raise CatalogError("model %r is not in the catalog (known: %s)" % (key, ", ".join(sorted(merged))))
    return validate_entry(key, merged[key], engine_root)


def revalidated(key, entry):
    """An entry as the role hands it on (validated, defaults filled) checked again where it is used: the catalog's
    rules must give the same entry back, else CatalogError naming the fields that differ or break a rule."""
    if not isinstance(entry, dict):
        raise CatalogError("model %s: the entry must be a mapping, got %r" % (key, entry))
    engine_dir = entry.get("engine_dir")
    engine_root = engine_dir.rsplit("/", 1)[0] if isinstance(engine_dir, str) and "/" in engine_dir \
        else TRT_ENGINE_ROOT
    again = validate_entry(key, dict((name, value) for name, value in entry.items() if name in ENTRY_FIELDS),
                           engine_root)
    differs = sorted(name for name in set(again) | set(entry) if again.get(name) != entry.get(name))
    if differs:
        raise CatalogError("model %s: the entry's %s differ from what the catalog rules make of it"
                           % (key, ", ".join(differs)))
    return again
