# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `docker run` argv of each engine's ranks: vLLM (native multi-node or Ray) and TensorRT-LLM.

Everything here is argv lists built from a validated catalog entry (_catalog) and the run settings; the scripts
run inside the containers are constant text whose inputs arrive as positional parameters.
"""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _validate
from ansible_collections.dgx_spark.cluster.plugins.module_utils._catalog import MAX_RANKS
from ansible_collections.dgx_spark.cluster.plugins.module_utils._serving_state import SERVING_LABEL

CONTAINER_PREFIX = "dgx-spark-serve-"
TRTLLM_OPTIONS_MOUNT = "/etc/dgx-spark/extra-llm-api-options.yml"


# The run settings a rank's argv is built from, and what each must be where it is used (the serving_container module
# checks them again there, whatever the role or an extra var put in them).
SETTING_PATTERNS = dict(((kind, _validate.PATTERNS[kind]) for kind in ("gpus", "shm_size", "ulimit")), **{
    "config": (r"^[0-9a-f]{16}$", "16 hex digits (serving_config_hash)"),
    "backend": (r"^(native|ray)$", "native or ray"),
})


def settings_problems(settings):
    """Every problem of a rank's run settings, named by field and rule (empty when all pass)."""
    if not isinstance(settings, dict):
        return ["settings must be a mapping, got %r" % (settings,)]
    checks = [("settings.addresses[]", settings.get("addresses"), "ipv4"),
              ("settings.fabric_interface", settings.get("fabric_interface"), "netdev"),
              ("settings.rdma_devices[]", settings.get("rdma_devices"), "rdma_device"),
              ("settings.devices[]", settings.get("devices"), "device"),
              ("settings.master_port", settings.get("master_port"), "unprivileged_port"),
              ("settings.ray_port", settings.get("ray_port"), "unprivileged_port"),
              ("settings.ssh_port", settings.get("ssh_port"), "unprivileged_port"),
              ("settings.distributed_timeout", settings.get("distributed_timeout"), "seconds"),
              ("settings.model_source", settings.get("model_source"), "data_dir"),
              ("settings.ssh_dir", settings.get("ssh_dir"), "path"),
              ("settings.options_file", settings.get("options_file"), "path")]
    if settings.get("api_key_file"):
        checks.append(("settings.api_key_file", settings["api_key_file"], "path"))
    problems = _validate.problems(checks)
    for field, kind in (("gpus", "gpus"), ("shm_size", "shm_size"), ("config", "config"), ("backend", "backend")):
        found = _validate.problem("settings.%s" % field, str(settings.get(field, "")), kind, SETTING_PATTERNS)
        if found:
            problems.append(found)
    for index, limit in enumerate(settings.get("ulimits") or []):
        found = _validate.problem("settings.ulimits[%d]" % index, limit, "ulimit", SETTING_PATTERNS)
        if found:
            problems.append(found)
    sizes = [(name, settings.get(name, 1 if name == "pp" else None)) for name in ("tp", "pp")]
    wrong = [(name, size) for name, size in sizes
             if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_RANKS]
    for name, size in wrong:
        problems.append("settings.%s %r is not allowed: must be an integer 1..%d" % (name, size, MAX_RANKS))
    if not wrong and rank_count(settings) > MAX_RANKS:
        problems.append("settings.tp x settings.pp is %d: at most %d ranks" % (rank_count(settings), MAX_RANKS))
    elif not wrong and isinstance(settings.get("addresses"), list) and len(settings["addresses"]) < rank_count(settings):
        problems.append("settings.addresses has %d address(es) for %d ranks (tp %d x pp %d)"
                        % (len(settings["addresses"]), rank_count(settings), settings["tp"], settings.get("pp", 1)))
    if not isinstance(settings.get("ipc_host"), bool):
        problems.append("settings.ipc_host %r is not allowed: must be true or false" % (settings.get("ipc_host"),))
    return problems


def rank_count(settings):
    """How many ranks (one per node) the run has: tensor x pipeline parallel."""
    return settings["tp"] * settings.get("pp", 1)


def container_name(key, rank):
    """The container of one rank of catalog model key, on its node (every role task and module uses this name)."""
    return "%s%s-r%d" % (CONTAINER_PREFIX, key, int(rank))


# Rank 0 with Ray (vLLM's run_cluster.sh layout): the Ray head, then vLLM as the container's main process, so the
# container ends when vLLM does. Constant text: the addresses and vLLM's arguments arrive as positional parameters.
RAY_HEAD_SCRIPT = 'ray start --head --node-ip-address="$1" --port="$2" --disable-usage-stats && shift 2 && exec vllm serve "$@"'


def starts_first(entry, rank, settings):
    """Whether this rank starts before the others: the workers for vLLM native and TensorRT-LLM (the head's mpirun
    reaches their sshd), the head for Ray (the workers join it)."""
    ray = entry["engine"] == "vllm" and settings.get("backend") == "ray" and rank_count(settings) > 1
    return (rank == 0) == ray


def peers(entry, rank, settings):
    """address:port of the ranks this one needs listening before it starts (what its unit waits for at boot)."""
    addresses = settings["addresses"][:rank_count(settings)]
    if len(addresses) < 2:
        return []
    if entry["engine"] == "trtllm":
        return ["%s:%d" % (address, settings["ssh_port"]) for address in addresses[1:]] if rank == 0 else []
    if settings.get("backend") == "ray":
        return ["%s:%d" % (addresses[0], settings["ray_port"])] if rank > 0 else []
    return []


def fabric_env(settings):
    """The environment every rank gets so that NCCL, Gloo, UCX and OpenMPI use the fabric and both twins."""
    iface = settings["fabric_interface"]
    return {"NCCL_SOCKET_IFNAME": iface, "GLOO_SOCKET_IFNAME": iface, "TP_SOCKET_IFNAME": iface,
            "UCX_NET_DEVICES": iface, "OMPI_MCA_btl_tcp_if_include": iface,
            "NCCL_IB_HCA": ",".join(settings["rdma_devices"])}


def _container_argv(entry, key, rank, settings, env, volumes):
    """`docker run -d` up to the image: name, labels, host network, limits, devices, environment, volumes."""
    argv = ["docker", "run", "-d", "--name", container_name(key, rank),
            "--label", SERVING_LABEL, "--label", "dgx-spark.model=%s" % key,
            "--label", "dgx-spark.config=%s" % settings["config"], "--label", "dgx-spark.rank=%d" % rank,
            "--label", "dgx-spark.ranks=%d" % rank_count(settings), "--label", "dgx-spark.port=%d" % entry["port"],
            "--label", "dgx-spark.served-name=%s" % entry["served_name"],
            "--label", "dgx-spark.first=%d" % starts_first(entry, rank, settings), "--network", "host"]
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
    Pipeline parallel (pp > 1) adds --pipeline-parallel-size; the tp x pp ranks are the nodes (--nnodes).
    settings: {tp, pp (default 1), addresses (fabric IPs, rank order), config, fabric_interface, rdma_devices, gpus,
    ipc_host, shm_size, devices, ulimits, master_port, distributed_timeout, model_source (host path or HF cache
    dir), backend (native|ray), ray_port, api_key_file (rank 0's --env-file holding VLLM_API_KEY, or empty)}.
    """
    tp, pp, ranks, addresses = settings["tp"], settings.get("pp", 1), rank_count(settings), settings["addresses"]
    env = dict(fabric_env(settings), VLLM_HOST_IP=addresses[rank])
    if entry.get("local_path"):
        volumes, model = ["%s:/model:ro" % entry["local_path"]], "/model"
    else:
        volumes, model = ["%s:/root/.cache/huggingface/hub:ro" % settings["model_source"]], entry["hf_repo"]
        env["HF_HUB_OFFLINE"] = "1"
    env.update(entry.get("env", {}))
    argv = _container_argv(entry, key, rank, settings, env, volumes)
    if rank == 0 and settings.get("api_key_file"):
        argv += ["--env-file", settings["api_key_file"]]  # VLLM_API_KEY: the key never in an argv
    serve = [model, "--served-model-name", entry["served_name"], "--tensor-parallel-size", str(tp)] \
        + (["--pipeline-parallel-size", str(pp)] if pp > 1 else []) \
        + ["--max-model-len", str(entry["max_model_len"]), "--dtype", entry["dtype"]]
    # quantization is for the plan: vLLM reads the method from the checkpoint's config
    api = ["--host", "0.0.0.0", "--port", str(entry["port"])]
    if ranks > 1 and settings.get("backend") == "ray":
        ray_address = "%s:%d" % (addresses[0], settings["ray_port"])
        if rank > 0:
            return argv + [entry["image"], "ray", "start", "--block", "--address", ray_address,
                           "--node-ip-address", addresses[rank], "--disable-usage-stats"]
        serve += ["--distributed-executor-backend", "ray"]
        return argv + [entry["image"], "sh", "-c", RAY_HEAD_SCRIPT, "sh", addresses[0],
                       str(settings["ray_port"])] + serve + api + list(entry["extra_args"])
    if ranks > 1:
        serve += ["--nnodes", str(ranks), "--node-rank", str(rank), "--master-addr", addresses[0],
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
    tp, pp, ranks, addresses = settings["tp"], settings.get("pp", 1), rank_count(settings), settings["addresses"]
    env = dict(fabric_env(settings), OMPI_MCA_oob_tcp_if_include=settings["fabric_interface"])
    volumes = []
    if entry.get("local_path"):
        volumes.append("%s:%s:ro" % (entry["local_path"], entry["local_path"]))
        source = entry["local_path"]
    else:
        volumes.append("%s:/root/.cache/huggingface/hub:ro" % settings["model_source"])
        env["HF_HUB_OFFLINE"] = "1"
        source = entry["hf_repo"]
    if entry["trtllm_backend"] == "tensorrt":
        volumes.append("%s:%s:ro" % (entry["engine_dir"], entry["engine_dir"]))
    if ranks > 1:
        volumes.append("%s:/root/.ssh:ro" % settings["ssh_dir"])
    if rank == 0 and entry["trtllm_options"]:
        volumes.append("%s:%s:ro" % (settings["options_file"], TRTLLM_OPTIONS_MOUNT))
    env.update(entry.get("env", {}))
    argv = _container_argv(entry, key, rank, settings, env, volumes) + [entry["image"]]
    if rank > 0:
        return argv + ["sh", "-c", TRTLLM_SSHD_SCRIPT, "sh", str(settings["ssh_port"]), addresses[rank]]
    serve = ["trtllm-serve", entry["served_name"], "--backend", entry["trtllm_backend"], "--tp_size", str(tp)] \
        + (["--pp_size", str(pp)] if pp > 1 else []) + ["--host", "0.0.0.0", "--port", str(entry["port"])]
    if entry["trtllm_backend"] == "tensorrt":
        serve += ["--tokenizer", source]  # the engine carries max_seq_len from its build
    else:
        serve += ["--max_seq_len", str(entry["max_model_len"])]
    if entry["trtllm_options"]:
        serve += ["--extra_llm_api_options", TRTLLM_OPTIONS_MOUNT]
    serve += list(entry["extra_args"])
    if ranks == 1:
        return argv + serve
    mpirun = ["mpirun", "--allow-run-as-root", "-np", str(ranks), "-H",
              ",".join("%s:1" % ip for ip in addresses[:ranks]),
              "--mca", "plm_rsh_args", "-p %d" % settings["ssh_port"]]
    for name in sorted(env):
        mpirun += ["-x", name]
    return argv + mpirun + ["trtllm-llmapi-launch"] + serve


def rank_argv(entry, key, rank, settings):
    """The `docker run` argv of one rank for the entry's engine."""
    build = trtllm_rank_argv if entry["engine"] == "trtllm" else vllm_rank_argv
    return build(entry, key, rank, settings)


def trt_build_args(entry, settings):
    """trt_build's arguments for the tensorrt backend: the engine for tp x pp ranks from the entry's checkpoint."""
    precision = entry.get("quantization")
    args = {"model_dir": settings["model_dir"], "engine_dir": entry["engine_dir"], "image": entry["image"],
            "tp": settings["tp"], "pp": settings.get("pp", 1),
            "dtype": entry["dtype"] if entry["dtype"] in ("float16", "bfloat16", "float32") else "bfloat16",
            "max_seq_len": entry["max_model_len"], "gpus": settings["gpus"],
            "quantization": {"fp8": "fp8", "nvfp4": "nvfp4", "int8": "int8_wo", "int4": "int4_wo"}.get(precision,
                                                                                                       "none")}
    args.update(entry["trtllm_build"])
    return args


def watchdog_rank(rank, key, entry, settings):
    """One rank as the watchdog sees it: {rank, address (fabric), container, local (the head's own), first}."""
    return {"rank": rank, "address": settings["addresses"][rank], "container": container_name(key, rank),
            "local": rank == 0, "first": starts_first(entry, rank, settings)}
