# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Model catalog validation and the fit plan (solo on one Spark, or tensor parallel over both).

Every string that can reach a command line is checked against an explicit pattern here, on the controller, before
any host is contacted; a rejection names the field and the rule.

The memory estimate, per node, in GiB:
  weights  = params_b * 1e9 * bytes_per_param(dtype or quantization) / 2**30 / tp
  kv       = kv_cache_gib (entry, else the default) / tp
  overhead = overhead_gib (entry, else the default): CUDA context, activations, the engine's own buffers
  need     = weights + kv + overhead
  budget   = node memory total (GB10: unified, /proc/meminfo MemTotal) * memory_fraction
It fits solo when need(tp=1) <= the head's budget; else over both with tp=2 when need(tp=2) <= every node's
budget; else it is refused with these numbers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _validate

GIB = float(1 << 30)
MIB_PER_GIB = 1024.0

BYTES_PER_PARAM = {
    "float32": 4.0, "fp32": 4.0,
    "bfloat16": 2.0, "bf16": 2.0, "float16": 2.0, "fp16": 2.0, "half": 2.0, "auto": 2.0,
    "fp8": 1.0, "int8": 1.0,
    # 4-bit formats carry per-group scales: ~0.53 bytes per parameter
    "nvfp4": 0.53, "mxfp4": 0.53, "fp4": 0.53, "int4": 0.53, "awq": 0.53, "gptq": 0.53,
}
ENGINES = ("vllm", "trtllm")
# trtllm-serve's backends: pytorch loads the checkpoint (NVIDIA's Spark recipe); tensorrt serves a trt_build engine.
TRTLLM_BACKENDS = ("pytorch", "tensorrt")
TRT_ENGINE_ROOT = "/var/lib/dgx-spark/trt-engines"
TRTLLM_OPTIONS_MOUNT = "/etc/dgx-spark/extra-llm-api-options.yml"

PATTERNS = {
    "key": (r"^[a-z0-9][a-z0-9._-]{0,63}$", "lowercase letters, digits, '._-', at most 64 characters"),
    "hf_repo": _validate.PATTERNS["hf_repo"],
    "local_path": (r"^/(?!.*/\.\.(/|$))[A-Za-z0-9._/-]{1,255}$",
                   "an absolute path of letters, digits and '._/-', without '..'"),
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
SECRET_ENV = re.compile(r"(TOKEN|KEY|SECRET|PASSWORD)", re.I)

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
        _rule(key, "engine root", engine_root, "local_path")
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
        _rule(key, "local_path", entry["local_path"], "local_path")
    out["engine"] = entry.get("engine", "vllm")
    if out["engine"] not in ENGINES:
        raise CatalogError("model %s: engine %r is not allowed: must be one of %s"
                           % (key, out["engine"], ", ".join(ENGINES)))
    _rule(key, "image", entry.get("image"), "image")
    params = entry.get("params_b")
    if isinstance(params, bool) or not isinstance(params, (int, float)) or not 0 < params <= 2000:
        raise CatalogError("model %s: params_b %r is not allowed: must be the parameter count in billions, "
                           "0 < params_b <= 2000" % (key, params))
    out["dtype"] = entry.get("dtype", "bfloat16")
    precision = entry.get("quantization") or out["dtype"]
    if precision not in BYTES_PER_PARAM or (entry.get("quantization") and out["dtype"] not in BYTES_PER_PARAM):
        raise CatalogError("model %s: dtype/quantization %r is not allowed: must be one of %s"
                           % (key, precision, ", ".join(sorted(BYTES_PER_PARAM))))
    out["tp"] = _int_in(key, "tp", entry.get("tp", "auto"), 1, 2, also="auto")
    out["pp"] = _int_in(key, "pp", entry.get("pp", 1), 1, 2, also="auto")
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
    env = entry.get("env", {})
    if not isinstance(env, dict):
        raise CatalogError("model %s: env must be a mapping of NAME: value, got %r" % (key, env))
    for name, value in env.items():
        _rule(key, "env name", name, "env_name")
        if SECRET_ENV.search(name):
            raise CatalogError("model %s: env %s is not allowed: secrets (tokens, keys) never go in the catalog; "
                               "the role passes them from a file or the controller's environment" % (key, name))
        _rule(key, "env %s" % name, str(value), "env_value")
    out["env"] = dict((name, str(value)) for name, value in env.items())
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


def weights_gib(entry):
    precision = entry.get("quantization") or entry["dtype"]
    return entry["params_b"] * 1e9 * BYTES_PER_PARAM[precision] / GIB


def plan(entry, nodes, defaults=None):
    """Where the model runs.

    nodes: [{host, total_mib, available_mib}] in order (head first), from gpu_vram_facts.
    defaults: {memory_fraction, kv_cache_gib, overhead_gib}.
    Returns {fits, mode (solo|tp), tp, hosts, weights_gib, per_node: [...], reason}.
    """
    defaults = dict({"memory_fraction": 0.85, "kv_cache_gib": 8.0, "overhead_gib": 6.0}, **(defaults or {}))
    weights = weights_gib(entry)
    kv = float(entry.get("kv_cache_gib") if entry.get("kv_cache_gib") is not None else defaults["kv_cache_gib"])
    overhead = float(entry.get("overhead_gib") if entry.get("overhead_gib") is not None
                     else defaults["overhead_gib"])
    options = [1, 2] if entry["tp"] == "auto" else [entry["tp"]]
    tried = []
    for tp in options:
        hosts = nodes[:tp]
        need = weights / tp + kv / tp + overhead
        per_node = []
        for node in hosts:
            budget = (node.get("total_mib") or 0) / MIB_PER_GIB * defaults["memory_fraction"]
            per_node.append({"host": node["host"], "need_gib": round(need, 1), "budget_gib": round(budget, 1),
                             "available_gib": round((node.get("available_mib") or 0) / MIB_PER_GIB, 1),
                             "fits": need <= budget})
        fits = len(hosts) == tp and all(n["fits"] for n in per_node)
        tried.append("tp=%d needs %.1f GiB per node (weights %.1f + KV %.1f + overhead %.1f) against %s"
                     % (tp, need, weights / tp, kv / tp, overhead,
                        ", ".join("%s %.1f GiB" % (n["host"], n["budget_gib"]) for n in per_node)
                        or "no node"))
        if fits:
            return {"fits": True, "mode": "solo" if tp == 1 else "tp", "tp": tp, "hosts": [n["host"] for n in hosts],
                    "weights_gib": round(weights, 1), "kv_cache_gib": kv, "overhead_gib": overhead,
                    "per_node": per_node, "reason": tried[-1]}
    return {"fits": False, "mode": None, "tp": None, "hosts": [], "weights_gib": round(weights, 1),
            "kv_cache_gib": kv, "overhead_gib": overhead, "per_node": [],
            "reason": "does not fit: " + "; ".join(tried) + " (budget = memory total x %.2f)"
                      % defaults["memory_fraction"]}


def config_hash(entry, plan_result, settings):
    """A short hash of everything that shapes the running engine (entry, plan, the run settings of
    vllm_rank_argv, addresses included); it labels the containers, so any change means a relaunch."""
    import hashlib
    import json
    blob = json.dumps({"entry": entry, "tp": plan_result["tp"], "hosts": plan_result["hosts"],
                       "settings": dict((k, v) for k, v in settings.items() if k != "config")},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


HF_TOKEN_MOUNT = "/run/secrets/hf_token"
# `hf download` (huggingface_hub >= 0.34), else `huggingface-cli download` (older images; NVIDIA's TensorRT-LLM recipe
# uses it). Constant text; the repository id is $1.
HF_DOWNLOAD_SCRIPT = ('if command -v hf >/dev/null; then exec hf download "$1"; '
                      'else exec huggingface-cli download "$1"; fi')


def hf_download_argv(entry, settings):
    """`docker run` argv that downloads entry's Hugging Face repository into the head's cache with the engine image's
    own CLI (`hf`, else `huggingface-cli`). settings: {cache (host dir), endpoint (a Hub mirror, optional), token_file (host path, optional)}.
    The token goes in as a read-only file (HF_TOKEN_PATH): never in argv, never in the container's environment."""
    argv = ["docker", "run", "--rm", "--network", "host", "-v", "%s:/root/.cache/huggingface/hub" % settings["cache"]]
    if settings.get("token_file"):
        argv += ["-v", "%s:%s:ro" % (settings["token_file"], HF_TOKEN_MOUNT), "-e", "HF_TOKEN_PATH=" + HF_TOKEN_MOUNT]
    if settings.get("endpoint"):
        argv += ["-e", "HF_ENDPOINT=" + settings["endpoint"]]
    return argv + ["-e", "HF_HUB_DISABLE_PROGRESS_BARS=1", entry["image"], "sh", "-c", HF_DOWNLOAD_SCRIPT, "sh",
                   entry["hf_repo"]]


# Rank 0 with Ray (vLLM's run_cluster.sh layout): the Ray head, then vLLM as the container's main process, so the
# container ends when vLLM does. Constant text: the addresses and vLLM's arguments arrive as positional parameters.
RAY_HEAD_SCRIPT = 'ray start --head --node-ip-address="$1" --port="$2" --disable-usage-stats && shift 2 && exec vllm serve "$@"'


def fabric_env(settings):
    """The environment every rank gets so that NCCL, Gloo, UCX and OpenMPI use the fabric and both twins."""
    iface = settings["fabric_interface"]
    return {"NCCL_SOCKET_IFNAME": iface, "GLOO_SOCKET_IFNAME": iface, "TP_SOCKET_IFNAME": iface,
            "UCX_NET_DEVICES": iface, "OMPI_MCA_btl_tcp_if_include": iface,
            "NCCL_IB_HCA": ",".join(settings["rdma_devices"])}


def _container_argv(entry, key, rank, settings, env, volumes):
    """`docker run -d` up to the image: name, labels, host network, limits, devices, environment, volumes."""
    argv = ["docker", "run", "-d", "--name", "dgx-spark-serve-%s-r%d" % (key, rank),
            "--label", "dgx-spark.role=serving", "--label", "dgx-spark.model=%s" % key,
            "--label", "dgx-spark.config=%s" % settings["config"], "--label", "dgx-spark.rank=%d" % rank,
            "--label", "dgx-spark.ranks=%d" % settings["tp"], "--label", "dgx-spark.port=%d" % entry["port"],
            "--label", "dgx-spark.served-name=%s" % entry["served_name"], "--network", "host"]
    for limit in settings["ulimits"]:
        argv += ["--ulimit", limit]
    argv += ["--ipc", "host"] if settings["ipc_host"] else ["--shm-size", settings["shm_size"] or "16g"]
    if settings["gpus"]:
        argv += ["--gpus", settings["gpus"]]
    for device in settings["devices"]:
        argv += ["--device", device]
    for name in sorted(env):
        argv += ["-e", "%s=%s" % (name, env[name])]
    for volume in volumes:
        argv += ["-v", volume]
    return argv


def vllm_rank_argv(entry, key, rank, settings):
    """`docker run` argv for one vLLM rank (rank 0 serves the API).

    Native multi-node (backend native, the default): every rank runs `vllm serve --nnodes N --node-rank R`, the
    other ranks --headless, started before rank 0. Ray (backend ray): rank 0 runs the Ray head and `vllm serve
    --distributed-executor-backend ray`; the other ranks run `ray start --block --address <head>` after it.
    settings: {tp, addresses (fabric IPs, rank order), config, fabric_interface, rdma_devices, gpus, ipc_host,
    shm_size, devices, ulimits, master_port, distributed_timeout, model_source (host path or HF cache dir),
    backend (native|ray), ray_port}.
    """
    tp, addresses = settings["tp"], settings["addresses"]
    env = dict(fabric_env(settings), VLLM_HOST_IP=addresses[rank])
    if entry.get("local_path"):
        volumes, model = ["%s:/model:ro" % entry["local_path"]], "/model"
    else:
        volumes, model = ["%s:/root/.cache/huggingface/hub" % settings["model_source"]], entry["hf_repo"]
        env["HF_HUB_OFFLINE"] = "1"
    env.update(entry.get("env", {}))
    argv = _container_argv(entry, key, rank, settings, env, volumes)
    serve = [model, "--served-model-name", entry["served_name"], "--tensor-parallel-size", str(tp),
             "--max-model-len", str(entry["max_model_len"]), "--dtype", entry["dtype"]]
    # quantization is for the plan: vLLM reads the method from the checkpoint's config
    api = ["--host", "0.0.0.0", "--port", str(entry["port"])]
    if tp > 1 and settings.get("backend") == "ray":
        ray_address = "%s:%d" % (addresses[0], settings["ray_port"])
        if rank > 0:
            return argv + [entry["image"], "ray", "start", "--block", "--address", ray_address,
                           "--node-ip-address", addresses[rank], "--disable-usage-stats"]
        serve += ["--distributed-executor-backend", "ray"]
        return argv + [entry["image"], "sh", "-c", RAY_HEAD_SCRIPT, "sh", addresses[0],
                       str(settings["ray_port"])] + serve + api + list(entry["extra_args"])
    if tp > 1:
        serve += ["--nnodes", str(tp), "--node-rank", str(rank), "--master-addr", addresses[0],
                  "--master-port", str(settings["master_port"]), "--distributed-executor-backend", "mp",
                  "--distributed-timeout-seconds", str(settings["distributed_timeout"])]
    return argv + [entry["image"], "vllm", "serve"] + serve + (["--headless"] if rank > 0 else api) \
        + list(entry["extra_args"])


# The other ranks of a TensorRT-LLM cluster: an sshd on the dedicated port and the fabric address only, key login,
# whose sessions (mpirun's orted) get the image's PATH and library path. Constant text; port and address are $1, $2.
TRTLLM_SSHD_SCRIPT = ('ssh-keygen -A >/dev/null && mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -p "$1" '
                      '-o ListenAddress="$2" -o PasswordAuthentication=no '
                      '-o SetEnv="PATH=$PATH LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"')


def trtllm_rank_argv(entry, key, rank, settings):
    """`docker run` argv for one TensorRT-LLM rank, NVIDIA's two-Spark recipe: rank 0's main process is
    `mpirun ... trtllm-llmapi-launch trtllm-serve <model> --tp_size N` (so the container ends when the MPI job
    does); the other ranks run sshd on settings["ssh_port"] for mpirun to start their rank, and go first. With one
    rank, `trtllm-serve` alone. The environment reaches the remote ranks through mpirun's -x, not docker's -e.
    settings: as vllm_rank_argv, plus ssh_port, ssh_dir (host dir mounted as /root/.ssh), options_file (host path
    of the extra LLM API options YAML, rank 0).
    """
    tp, addresses = settings["tp"], settings["addresses"]
    env = dict(fabric_env(settings), OMPI_MCA_oob_tcp_if_include=settings["fabric_interface"])
    volumes = []
    if entry.get("local_path"):
        volumes.append("%s:%s:ro" % (entry["local_path"], entry["local_path"]))
        source = entry["local_path"]
    else:
        volumes.append("%s:/root/.cache/huggingface/hub" % settings["model_source"])
        env["HF_HUB_OFFLINE"] = "1"
        source = entry["hf_repo"]
    if entry["trtllm_backend"] == "tensorrt":
        volumes.append("%s:%s:ro" % (entry["engine_dir"], entry["engine_dir"]))
    if tp > 1:
        volumes.append("%s:/root/.ssh:ro" % settings["ssh_dir"])
    if rank == 0 and entry["trtllm_options"]:
        volumes.append("%s:%s:ro" % (settings["options_file"], TRTLLM_OPTIONS_MOUNT))
    env.update(entry.get("env", {}))
    argv = _container_argv(entry, key, rank, settings, env, volumes) + [entry["image"]]
    if rank > 0:
        return argv + ["sh", "-c", TRTLLM_SSHD_SCRIPT, "sh", str(settings["ssh_port"]), addresses[rank]]
    serve = ["trtllm-serve", entry["served_name"], "--backend", entry["trtllm_backend"], "--tp_size", str(tp),
             "--host", "0.0.0.0", "--port", str(entry["port"])]
    if entry["trtllm_backend"] == "tensorrt":
        serve += ["--tokenizer", source]  # the engine carries max_seq_len from its build
    else:
        serve += ["--max_seq_len", str(entry["max_model_len"])]
    if entry["trtllm_options"]:
        serve += ["--extra_llm_api_options", TRTLLM_OPTIONS_MOUNT]
    serve += list(entry["extra_args"])
    if tp == 1:
        return argv + serve
    mpirun = ["mpirun", "--allow-run-as-root", "-np", str(tp), "-H", ",".join("%s:1" % ip for ip in addresses[:tp]),
              "--mca", "plm_rsh_args", "-p %d" % settings["ssh_port"]]
    for name in sorted(env):
        mpirun += ["-x", name]
    return argv + mpirun + ["trtllm-llmapi-launch"] + serve


def rank_argv(entry, key, rank, settings):
    """The `docker run` argv of one rank for the entry's engine."""
    build = trtllm_rank_argv if entry["engine"] == "trtllm" else vllm_rank_argv
    return build(entry, key, rank, settings)


def trt_build_args(entry, settings):
    """trt_build's arguments for the tensorrt backend: the engine for tp ranks from the entry's checkpoint."""
    precision = entry.get("quantization")
    args = {"model_dir": settings["model_dir"], "engine_dir": entry["engine_dir"], "image": entry["image"],
            "tp": settings["tp"], "dtype": entry["dtype"] if entry["dtype"] in ("float16", "bfloat16", "float32")
            else "bfloat16", "max_seq_len": entry["max_model_len"], "gpus": settings["gpus"],
            "quantization": {"fp8": "fp8", "nvfp4": "nvfp4", "int8": "int8_wo", "int4": "int4_wo"}.get(precision,
                                                                                                       "none")}
    args.update(entry["trtllm_build"])
    return args
