"""An image (or a model) from the head to three workers in a relay against the same to one worker, printed, never
asserted.

Needs a lab of four (LAB_NODES=4 lab/lab.sh up); the benchmark applies the fabric role to it with every address
derived from the node order (lab/labkit.node_inventory). For a --size-mib image of random data on the head (with
--what weights, a model directory: a config and one safetensors file of random data) it times, each --repeat times
in turn (medians, with their range):
  one worker       to spark-ba63 alone (p2p_image_copy, or weight_sync, from the head)
  relay to three   to spark-ba63, spark-lab3 and spark-lab4 at once, each forwarding what it receives to the next
  head to three    the same three at once, each from the head (no relay): what the role did before
both as the playbook's wall time and as the slowest node's own transfer time, and the issue's target ratio:
relay to three / one worker <= 1.3. Every node is a container on this one machine: the three docker loads (or
unpacks) and the relay hops share its CPUs and its disk, which real Sparks (a node each) do not, and its "links" are
memory copies faster than the loads. --link-mbit caps every node's fabric egress (lab.sh link-rate) so that the
links are the bottleneck, as the head's uplink is between real Sparks; 0 leaves them uncapped.
Usage: .venv/bin/python benchmarks/image_relay.py [--what image|weights] [--size-mib 1024] [--repeat 3]
       [--link-mbit 400]
"""

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lab"))
from labbench import in_turn  # noqa: E402
from labkit import lab, node_inventory, playbook, relay, ssh  # noqa: E402

HEAD, WORKERS = "spark-2959", ["spark-ba63", "spark-lab3", "spark-lab4"]
IMAGE = "lab/relay-bench:1"
MODEL = "/home/spark/models/relay-bench"
# what --what copies: how to put it on the head, how to take it off a node, relay()'s argument
KINDS = {
    "image": ("printf 'FROM lab/busybox\\nRUN dd if=/dev/urandom of=/blob bs=1M count=%d 2>/dev/null\\n' "
              "| docker build -q --network host -t " + IMAGE + " - >/dev/null",
              "docker image rm -f %s >/dev/null 2>&1; docker image prune -f >/dev/null" % IMAGE, {"image": IMAGE}),
    "weights": ("mkdir -p {0} && echo '{{}}' > {0}/config.json && head -c $((%d << 20)) /dev/urandom "
                "> {0}/model.safetensors".format(MODEL), "rm -rf " + MODEL, {"path": MODEL}),
}


def without(kind, nodes=None):
    for node in nodes or WORKERS:
        ssh(node, KINDS[kind][1], check=False)


def copy(inventory, kind, chain, *args, transfer_times=None):
    """Wall seconds of one copy to chain's nodes (none holding it before); the slowest node's own transfer time is
    appended to transfer_times."""
    without(kind)
    rc, results, wall = relay(inventory, chain, *args, **KINDS[kind][2])
    if rc != 0:
        raise RuntimeError("the copy to %s failed: %s" % (chain, results))
    transfer_times.append(max(results[node]["seconds"] for node in chain))
    return wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=sorted(KINDS), default="image")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--link-mbit", type=int, default=400)
    args = parser.parse_args()
    inventory = node_inventory(Path(tempfile.mkdtemp()) / "inventory.yml", 4)
    out = playbook("fabric.yml", "-i", str(inventory))
    if out.returncode != 0:
        raise SystemExit("fabric.yml failed on the four-node lab (LAB_NODES=4 lab/lab.sh up?):\n" + out.stdout[-2000:])
    ssh(HEAD, KINDS[args.what][0] % args.size_mib, timeout=900)
    transfers = {"one worker": [], "relay to three": [], "head to three": []}
    try:
        for node in [HEAD] + WORKERS:
            lab("link-rate", node, str(args.link_mbit))
        walls, ranges = in_turn(args.repeat, {
            "one worker": lambda: copy(inventory, args.what, WORKERS[:1], transfer_times=transfers["one worker"]),
            "relay to three": lambda: copy(inventory, args.what, WORKERS,
                                           transfer_times=transfers["relay to three"]),
            "head to three": lambda: copy(inventory, args.what, WORKERS, "-e", "relay=false",
                                          transfer_times=transfers["head to three"]),
        })
    finally:
        for node in [HEAD] + WORKERS:
            lab("link-rate", node, "0", check=False)
        without(args.what, [HEAD] + WORKERS)
    capped = "capped at %d Mbit/s per node" % args.link_mbit if args.link_mbit else "uncapped"
    print("%s of %d MiB, %d rounds (medians, range), fabric egress %s"
          % ("image" if args.what == "image" else "model", args.size_mib, args.repeat, capped))
    print("%-16s %22s %22s" % ("", "playbook wall s", "slowest transfer s"))
    median = {}
    for name, values in transfers.items():
        median[name] = sorted(values)[len(values) // 2]
        print("%-16s %8.1f (%5.1f-%5.1f) %12.1f (%5.1f-%5.1f)"
              % (name, walls[name], ranges[name][0], ranges[name][1], median[name], min(values), max(values)))
    for name in ("relay to three", "head to three"):
        print("%s / one worker: %.2f wall, %.2f transfer (target for the relay: <= 1.3)"
              % (name, walls[name] / walls["one worker"], median[name] / median["one worker"]))


if __name__ == "__main__":
    main()
