"""train.yml on the lab against the same two torchruns started over SSH by hand: the time from the start of each to
the first training step on every rank.

Needs the lab up with the fabric role applied and the training venv built (`lab/lab.sh train`). For --repeat rounds
it runs, in turn:
  train.yml       ansible-playbook playbooks/train.yml -e job=tiny-regression (gate skipped; the gate is timed once
                  apart, as the playbook run with it minus the run without)
  by hand         ssh to both nodes at once, export the fabric's variables, start torchrun with the same arguments
and takes each rank's first step time from the rank's own clock (journald's timestamp for train.yml, a timestamp
the node's shell puts on each line by hand; the lab's nodes share the host's clock). Prints the medians, the
playbook's overhead over the hand start and their ratio. Printed, never asserted.
Usage: .venv/bin/python benchmarks/train_launch.py [--repeat 3]
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lab"))
from labkit import KEY, NODES, playbook, ssh  # noqa: E402

VENV = "/opt/dgx-spark-lab/train/venv"
SCRIPT = "/usr/local/lib/dgx-spark/train/examples/tiny_regression.py"
ARGS = ["--steps", "20", "--step-seconds", "0.05"]
FABRIC = "enp1s0f1np1"


def job_override():
    return json.dumps({"train_launch_jobs": {"tiny-regression": {"venv": VENV, "args": ARGS}}})


def first_steps_of_run(run_id):
    """Each rank's first step time (journald's realtime stamp), once every rank printed one."""
    stamps = []
    for rank, node in enumerate(NODES_LIST):
        unit = "dgx-spark-train-%s-r%d.service" % (run_id, rank)
        out = ssh(node, "sudo journalctl _SYSTEMD_UNIT=%s -o json --no-pager" % unit).stdout
        for line in out.splitlines():
            entry = json.loads(line)
            if '"step": 1,' in str(entry.get("MESSAGE", "")):
                stamps.append(int(entry["__REALTIME_TIMESTAMP"]) / 1e6)
                break
    return stamps if len(stamps) == len(NODES_LIST) else None


NODES_LIST = list(NODES)


def with_playbook(*extra):
    start = time.time()
    out = playbook("train.yml", "-e", "job=tiny-regression", "-e", job_override(), *extra)
    if out.returncode != 0:
        raise RuntimeError(out.stdout[-3000:])
    run_id = re.findall(r"(tiny-regression-\d{8}t\d{6})", out.stdout)[-1]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stamps = first_steps_of_run(run_id)
        state = json.loads(ssh(NODES_LIST[0], "cat /var/lib/dgx-spark/train/%s/job.json" % run_id).stdout)["state"]
        if stamps and state in ("succeeded", "failed", "stopped"):
            return max(stamps) - start
        time.sleep(0.5)
    raise RuntimeError("%s did not end within 60 s" % run_id)


def by_hand(round_number):
    """Both torchruns started over SSH at once; (seconds to the first step on every rank)."""
    port = 29600 + round_number % 50
    procs = []
    start = time.time()
    for rank, node in enumerate(NODES_LIST):
        command = ("export NCCL_SOCKET_IFNAME={f} GLOO_SOCKET_IFNAME={f}; cd /tmp && {v}/bin/torchrun --nnodes 2 "
                   "--node_rank {r} --nproc_per_node 1 --master_addr 10.10.10.1 --master_port {p} {s} {a} 2>&1 "
                   "| while IFS= read -r line; do echo \"$(date +%s.%N) $line\"; done"
                   .format(f=FABRIC, v=VENV, r=rank, p=port, s=SCRIPT, a=" ".join(ARGS)))
        procs.append(subprocess.Popen(
            ["ssh", "-i", str(KEY), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
             "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "spark@%s" % NODES[node], command],
            stdout=subprocess.PIPE, text=True))
    firsts = []
    for proc in procs:
        out, _err = proc.communicate(timeout=120)
        stamp = next((float(line.split(" ", 1)[0]) for line in out.splitlines() if '"step": 1,' in line), None)
        if stamp is None:
            raise RuntimeError("a hand-started rank printed no step:\n" + out[-2000:])
        firsts.append(stamp)
    return max(firsts) - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ours, hand = [], []
    for round_number in range(args.repeat):
        ours.append(with_playbook("-e", "train_skip_gate=true"))
        hand.append(by_hand(round_number))
    gated = with_playbook()
    ours_median, hand_median = statistics.median(ours), statistics.median(hand)
    print("start -> first step on every rank (median of %d, range)" % args.repeat)
    print("  train.yml (gate skipped)  %6.2f s  (%.2f..%.2f)" % (ours_median, min(ours), max(ours)))
    print("  by hand over ssh          %6.2f s  (%.2f..%.2f)" % (hand_median, min(hand), max(hand)))
    print("  overhead                  %6.2f s   ratio %.2fx" % (ours_median - hand_median, ours_median / hand_median))
    print("  train.yml with the gate   %6.2f s  (the lab's NCCL gate is a double: its time is Ansible's share)"
          % gated)


if __name__ == "__main__":
    main()
