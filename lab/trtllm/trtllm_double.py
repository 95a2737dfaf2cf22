"""Stand-ins for `convert_checkpoint.py` and `trtllm-build` (TensorRT-LLM cannot run on the lab's CPU).

They take the real tools' options, print the lines the real tools print (version banner, [TRT-LLM] [I]/[E]) and
write what the real tools write: a checkpoint (config.json with the mapping, one rank<N>.safetensors per rank) and
an engine (config.json with the build config, one rank<N>.engine per rank). Like the real converter they fail on
a model whose weights are missing or whose architecture they do not know.
"""

import argparse
import glob
import json
import os
import sys
import time

VERSION = "1.1.0rc3"


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


if __name__ == "__main__":
    tool = sys.argv[1] if sys.argv[1:2] == ["build"] else "convert"
    rest = sys.argv[2:] if tool == "build" else sys.argv[1:]
    sys.exit(build(rest) if tool == "build" else convert(rest))
