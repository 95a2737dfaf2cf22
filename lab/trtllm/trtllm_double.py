"""Stand-ins for `convert_checkpoint.py`, `trtllm-build`, `trtllm-llmapi-launch` and `trtllm-serve` (TensorRT-LLM
cannot run on the lab's CPU).

convert/build take the real tools' options, print the lines the real tools print (version banner, [TRT-LLM] [I]/[E])
and write what the real tools write: a checkpoint (config.json with the mapping, one rank<N>.safetensors per rank)
and an engine (config.json with the build config, one rank<N>.engine per rank). Like the real converter they fail
on a model whose weights are missing or whose architecture they do not know.

serve runs as every MPI rank that the real mpirun starts (OMPI_COMM_WORLD_RANK/SIZE): each rank opens its own share
of the model on its own node (the weights' files, or rank<N>.engine of a TensorRT engine) and reports to rank 0 over
MPI (mpi4py, OpenMPI's TCP transport on the fabric) with its host name and the fabric environment it received; rank 0
replays the recorded trtllm-serve startup (tests/fixtures/trtllm) and then answers /health, /v1/models and
/v1/completions, each completion a round trip to every rank. An unknown architecture fails as recorded ("Failed to
initialize executor on rank 0: Cannot determine model architecture from config").
"""

import argparse
import glob
import json
import os
import signal
import socket
import sys
import time

VERSION = "1.1.0rc3"
PROMPT_TAG = 7  # rank 0 -> every other rank: one completion's prompt


def stamp():
    return time.strftime("[%m/%d/%Y-%H:%M:%S]")


def convert(argv):
    parser = argparse.ArgumentParser(prog="convert_checkpoint.py")
    for option in ("--model_dir", "--output_dir", "--dtype", "--weight_only_precision"):
        parser.add_argument(option)
    parser.add_argument("--tp_size", type=int, default=1)
    parser.add_argument("--pp_size", type=int, default=1)
    parser.add_argument("--use_weight_only", action="store_true")
    args = parser.parse_args(argv)
    print("[TensorRT-LLM] TensorRT-LLM version: %s" % VERSION, flush=True)
    with open(os.path.join(args.model_dir, "config.json")) as handle:
        config = json.load(handle)
    if "LlamaForCausalLM" not in config.get("architectures", []):
        print("%s [TRT-LLM] [E] Unsupported model architecture: %s" % (stamp(), config.get("architectures")))
        return 1
    weights = glob.glob(os.path.join(args.model_dir, "*.safetensors"))
    if not weights:
        print("%s [TRT-LLM] [E] No safetensors weights found in %s" % (stamp(), args.model_dir))
        return 1
    world = args.tp_size * args.pp_size
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "config.json"), "w") as handle:
        json.dump({"architecture": "LlamaForCausalLM", "dtype": args.dtype,
                   "mapping": {"world_size": world, "tp_size": args.tp_size, "pp_size": args.pp_size},
                   "quantization": {"quant_algo": ("W%sA16" % args.weight_only_precision[3:].upper()
                                                   if args.use_weight_only else None)}}, handle)
    size = sum(os.path.getsize(path) for path in weights) // world
    for rank in range(world):
        with open(os.path.join(args.output_dir, "rank%d.safetensors" % rank), "wb") as handle:
            handle.write(os.urandom(min(size, 1 << 20)))
    print("Total time of converting checkpoints: 00:00:01")
    return 0


def build(argv):
    parser = argparse.ArgumentParser(prog="trtllm-build")
    for option in ("--checkpoint_dir", "--output_dir", "--gemm_plugin"):
        parser.add_argument(option)
    for option in ("--workers", "--max_batch_size", "--max_seq_len", "--max_num_tokens"):
        parser.add_argument(option, type=int)
    args, unknown = parser.parse_known_args(argv)
    print("[TensorRT-LLM] TensorRT-LLM version: %s" % VERSION, flush=True)
    print("%s [TRT-LLM] [I] Set gemm_plugin to %s." % (stamp(), args.gemm_plugin))
    with open(os.path.join(args.checkpoint_dir, "config.json")) as handle:
        checkpoint = json.load(handle)
    world = checkpoint["mapping"]["world_size"]
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "config.json"), "w") as handle:
        json.dump({"version": VERSION, "pretrained_config": checkpoint,
                   "build_config": {"max_batch_size": args.max_batch_size, "max_seq_len": args.max_seq_len,
                                    "max_num_tokens": args.max_num_tokens, "extra": unknown}}, handle)
    for rank in range(world):
        with open(os.path.join(args.output_dir, "rank%d.engine" % rank), "wb") as handle:
            handle.write(os.urandom(4096))
        print("%s [TRT-LLM] [I] Engine generated for rank %d" % (stamp(), rank))
    print("%s [TRT-LLM] [I] Total time of building all engines: 00:00:01" % stamp())
    return 0


RECORDED = "/opt/trtllm-double/recorded"
STARTUP = RECORDED + "/trtllm_serve_gptoss120b_startup_to_ready_spark.txt"
EXECUTOR_ERROR = RECORDED + "/trtllm_serve_error_failed_to_initialize_executor_trtllm6193.txt"
# What every rank must receive (through mpirun -x) for NCCL, Gloo, UCX and OpenMPI to stay on the fabric.
FABRIC_ENV = ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "UCX_NET_DEVICES", "NCCL_IB_HCA",
              "OMPI_MCA_btl_tcp_if_include")


def recorded(path):
    """The recorded output's lines, without the provenance header."""
    with open(path) as handle:
        text = handle.read()
    return text.split("# ---\n", 1)[1].splitlines()


def model_config(model, backend):
    """(config dict, the files this rank loads) for a Hugging Face id in the offline cache, a checkpoint path or a
    TensorRT engine directory."""
    path = model
    if not os.path.isdir(model):
        if os.environ.get("HF_HUB_OFFLINE") != "1":
            raise SystemExit("%s [TRT-LLM] [E] %s is not a local path and the Hub is unreachable in the lab"
                             % (stamp(), model))
        repo = os.path.join(os.path.expanduser("~/.cache/huggingface/hub"), "models--" + model.replace("/", "--"))
        with open(os.path.join(repo, "refs", "main")) as handle:
            path = os.path.join(repo, "snapshots", handle.read().strip())
    with open(os.path.join(path, "config.json")) as handle:
        config = json.load(handle)
    if backend == "tensorrt":
        return config.get("pretrained_config", {}), [os.path.join(path, "rank%d.engine" % rank_env()[0])]
    return config, sorted(glob.glob(os.path.join(path, "*.safetensors")))


def rank_env():
    return int(os.environ.get("OMPI_COMM_WORLD_RANK", "0")), int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))


def serve(argv):
    parser = argparse.ArgumentParser(prog="trtllm-serve")
    parser.add_argument("model")
    for option in ("--host", "--backend", "--extra_llm_api_options", "--tokenizer"):
        parser.add_argument(option)
    for option in ("--port", "--tp_size", "--pp_size", "--max_seq_len", "--max_batch_size", "--max_num_tokens"):
        parser.add_argument(option, type=int)
    parser.add_argument("--trust_remote_code", action="store_true")
    args = parser.parse_args(argv[1:] if argv[:1] == ["serve"] else argv)
    rank, size = rank_env()
    backend = args.backend or "pytorch"
    world = (args.tp_size or 1) * (args.pp_size or 1)
    if world != size:
        print("%s [TRT-LLM] [E] tp_size %d x pp_size %d needs %d MPI ranks, %d started"
              % (stamp(), args.tp_size or 1, args.pp_size or 1, world, size), flush=True)
        return 1
    config, files = model_config(args.model, backend)
    # every rank opens its share on its own node: a missing engine rank file or missing weights fail here
    for path in files:
        with open(path, "rb") as handle:
            handle.read(1)
    report = {"rank": rank, "host": socket.gethostname(), "files": len(files),
              "env": dict((name, os.environ.get(name)) for name in FABRIC_ENV)}
    comm = None
    if size > 1:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
    if rank > 0:
        print("rank %d of %d on %s: loaded %d file(s) of %s; %s" % (rank, size, report["host"], len(files), args.model,
              " ".join("%s=%s" % item for item in sorted(report["env"].items()))), flush=True)
        comm.gather(report, root=0)
        return worker_loop(comm)
    startup = recorded(STARTUP)
    server_lines = [line for line in startup if line.startswith("INFO:")]
    for line in startup:
        if line in server_lines:
            continue
        if "Using LLM with PyTorch backend" in line and backend == "tensorrt":
            line = line.replace("PyTorch backend", "TensorRT backend")
        print(line, flush=True)
        if "TensorRT-LLM version" in line and "LlamaForCausalLM" not in config.get("architectures", [config.get(
                "architecture")]):
            for error in recorded(EXECUTOR_ERROR):
                print(error, flush=True)
            return abort(comm)
    options = {}
    if args.extra_llm_api_options:
        import yaml
        with open(args.extra_llm_api_options) as handle:
            options = yaml.safe_load(handle)
        fraction = (options.get("kv_cache_config") or {}).get("free_gpu_memory_fraction", 0.9)
        if not 0 < fraction <= 1:
            print("%s [TRT-LLM] [E] kv_cache_config.free_gpu_memory_fraction must be in (0, 1], got %s"
                  % (stamp(), fraction), flush=True)
            return abort(comm)
        print("%s [TRT-LLM] [I] extra LLM API options: %s" % (stamp(), json.dumps(options, sort_keys=True)),
              flush=True)
    reports = comm.gather(report, root=0) if comm else [report]
    for joined in reports:
        print("%s [TRT-LLM] [I] rank %d on %s loaded %d file(s) with %s" % (
            stamp(), joined["rank"], joined["host"], joined["files"],
            " ".join("%s=%s" % item for item in sorted(joined["env"].items()))), flush=True)
    return api(args, comm, size, server_lines)


def abort(comm):
    """A fatal error on rank 0: end every rank (MPI_Abort), as an MPI program must, or the job waits forever."""
    if comm:
        comm.Abort(1)
    return 1


def worker_loop(comm):
    """Answer rank 0's per-request round trips until mpirun ends the job. Idle between requests: OpenMPI's blocking
    receive polls at 100% CPU (the lab's CPUs are the tests' own), so the rank probes every 10 ms instead."""
    while True:
        while not comm.Iprobe(source=0, tag=PROMPT_TAG):
            time.sleep(0.01)
        comm.send(len(comm.recv(source=0, tag=PROMPT_TAG)), dest=0)


def api(args, comm, size, server_lines):
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path == "/health":
                return self.reply(200, {})
            if self.path == "/v1/models":
                served = {"id": args.model, "object": "model", "owned_by": "tensorrt_llm"}
                return self.reply(200, {"object": "list", "data": [served]})
            return self.reply(404, {"detail": "Not Found"})

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            if self.path != "/v1/completions":
                return self.reply(404, {"detail": "Not Found"})
            if body.get("model") != args.model:
                return self.reply(404, {"object": "error", "message": "The model `%s` does not exist."
                                        % body.get("model"), "type": "NotFoundError", "code": 404})
            prompt = str(body.get("prompt", ""))
            if comm:
                for peer in range(1, size):
                    comm.send(prompt, dest=peer, tag=PROMPT_TAG)
                if any(comm.recv(source=peer) != len(prompt) for peer in range(1, size)):
                    return self.reply(500, {"detail": "a rank answered out of step"})
            tokens = max(1, int(body.get("max_tokens", 16)))
            words = prompt.split()[::-1] or ["spark"]
            text = " " + " ".join((words * tokens)[:tokens])
            return self.reply(200, {"id": "cmpl-double", "object": "text_completion", "model": args.model,
                                    "choices": [{"index": 0, "text": text, "finish_reason": "length"}],
                                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": tokens,
                                              "total_tokens": len(prompt.split()) + tokens}})

        def log_message(self, *args):
            return

    server = http.server.HTTPServer((args.host or "localhost", args.port or 8000), Handler)
    for line in server_lines:
        print(line.replace("[41]", "[%d]" % os.getpid()).replace("0.0.0.0:8355", "%s:%d" % (args.host, args.port)),
              flush=True)
    # SIGTERM ends it as it ends the real server (uvicorn's handler), also as a container's PID 1 (no default action)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    tool, rest = (sys.argv[1], sys.argv[2:]) if sys.argv[1:2] in (["build"], ["serve"]) else ("convert", sys.argv[1:])
    sys.exit({"build": build, "serve": serve, "convert": convert}[tool](rest))
