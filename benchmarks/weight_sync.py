"""Model weights between the lab nodes over the fabric: weight_sync against rsync -a over ssh and raw TCP.

Needs the lab up with the fabric role applied. Builds a model directory of --size-mib MiB (4 safetensors shards)
on the head, then prints: raw TCP (tar | nc), plain `rsync -a` over ssh, weight_sync with one stream and with its
default streams (module time and whole task), each --repeat times in turn (medians, with their range), and the
re-sync of the unchanged model for both. Printed, never asserted.
Usage: .venv/bin/python benchmarks/weight_sync.py [--size-mib 1024] [--repeat 3]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lab"))
from labbench import HEAD, WORKER, WORKER_FABRIC, in_turn, piped, timed  # noqa: E402
from labkit import module, ssh  # noqa: E402

MODEL = "/home/spark/bench-model"
PORT = 19200


def fresh(measure):
    """measure() with no model on the worker."""
    ssh(WORKER, "rm -rf /tmp/bench-model %s" % MODEL)
    return measure()


def ours(**extra):
    start = time.monotonic()
    rc, result = module(HEAD, "weight_sync", dict({"path": MODEL, "dest_host": WORKER_FABRIC}, **extra))
    if rc != 0:
        raise RuntimeError(result.get("msg"))
    return time.monotonic() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the full syncs, in turn (medians)")
    args = parser.parse_args()
    shard = args.size_mib // 4
    ssh(HEAD, "rm -rf %s && mkdir -p %s && echo '{}' > %s/config.json && for i in 1 2 3 4; do "
              "dd if=/dev/urandom of=%s/model-0000$i-of-00004.safetensors bs=1M count=%d 2>/dev/null; done"
        % (MODEL, MODEL, MODEL, MODEL, shard), timeout=3600)
    rsync = "rsync -a %s/ %s:%s/" % (MODEL, WORKER_FABRIC, MODEL)
    default_runs = []

    def default_streams():
        default_runs.append(ours())
        return default_runs[-1][1]["seconds"]
    figures, spreads = in_turn(args.repeat, {
        "raw TCP (tar | nc)": lambda: fresh(lambda: piped(
            "nc -l -p %d | tar -x -C /tmp" % PORT,
            "tar -C /home/spark -c bench-model | nc -q 0 %s %d" % (WORKER_FABRIC, PORT), PORT)),
        "rsync -a over ssh": lambda: fresh(lambda: timed(HEAD, rsync)),
        "weight_sync, one stream (module transfer)": lambda: fresh(lambda: ours(streams=1)[1]["seconds"]),
        "weight_sync, default streams (module transfer)": lambda: fresh(default_streams),
    })
    streams = default_runs[-1][1]["streams"]
    figures["weight_sync (whole task, incl. verification)"] = statistics.median(task for task, _result in default_runs)
    figures["rsync -a over ssh, unchanged re-sync"] = timed(HEAD, rsync)
    resync_task, resync = ours()
    figures["weight_sync unchanged re-sync (task)"] = resync_task
    print("\nmodel directory of %d MiB; weight_sync's default: %d streams" % (args.size_mib, streams))
    for name, seconds in figures.items():
        line = "  %-46s %8.2f s  %8.1f MiB/s" % (name, seconds, args.size_mib / max(seconds, 1e-6))
        print(line + ("  median, %.2f to %.2f" % spreads[name] if name in spreads else ""))
    best = figures["weight_sync, default streams (module transfer)"]
    print("  weight_sync / rsync -a: %.2f" % (best / figures["rsync -a over ssh"]))
    print("  weight_sync / raw TCP: %.2f" % (best / figures["raw TCP (tar | nc)"]))
    print("  %d streams / one stream: %.2f" % (streams, best / figures["weight_sync, one stream (module transfer)"]))
    print("  unchanged re-sync sent %d bytes" % resync["bytes_sent"])
    for node in (HEAD, WORKER):
        ssh(node, "rm -rf %s" % MODEL)


if __name__ == "__main__":
    main()
