"""Serving you can leave running, on the lab: how long a swap keeps the old model answering, and how long the
watchdog takes from a rank's death to serving again.

Needs the lab up with the fabric role applied and the engine loaded (`lab/lab.sh engine`). A poller asks the head's
API for a real completion every 0.5 s throughout and records which model answered. It prints:
  swap            launch_model.yml from one model to another (weights and image already on the nodes, or not):
                  the whole run, how long the old model kept answering from its start, the outage (the last
                  answer of the old model -> the first of the new one), and outage / run: the share of the run
                  nothing answered (1.0 is what stopping first and preparing after would give at best)
  rank death      the TP=2 worker's container killed -> a real completion again, with no playbook run (watchdog),
                  and that time over the watchdog's own detection time (interval x failures)
Printed, never asserted.  Usage: .venv/bin/python benchmarks/serving_recovery.py [--deaths 2]
"""

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lab"))
from labkit import CURL_AUTH, playbook, ssh  # noqa: E402

SOLO, TP2 = "lab-tiny-llama", "lab-tiny-llama-tp2"
WATCHDOG = {"interval": 10, "failures": 3}
PROBE = ("curl -s --max-time 5 http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' "
         + CURL_AUTH + " "
         "-d '{\"model\": \"tiny-llama\", \"prompt\": \"The\", \"max_tokens\": 1}'")


class Poller(threading.Thread):
    """(monotonic time, answered) every 0.5 s, over one SSH master to the head."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.running = [], True

    def run(self):
        while self.running:
            out = ssh("spark-2959", PROBE, check=False, timeout=20).stdout
            try:
                answered = bool(json.loads(out)["choices"])
            except (ValueError, KeyError):
                answered = False
            self.samples.append((time.monotonic(), answered))
            time.sleep(0.5)

    def stop(self):
        self.running = False
        self.join()
        return self.samples


def launch(key, *args):
    out = playbook("launch_model.yml", "-e", "model=" + key, *args, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError("launch of %s failed:\n%s" % (key, out.stdout[-3000:]))


def swap(to_key):
    """(run s, old answering s, outage s) of one swap."""
    poller = Poller()
    poller.start()
    time.sleep(2)
    start = time.monotonic()
    launch(to_key, "-e", "model_serving_watchdog=true")
    end = time.monotonic()
    time.sleep(2)
    samples = poller.stop()
    during = [(at, ok) for at, ok in samples if at >= start]
    first_gap = next((at for at, ok in during if not ok), end)
    back = next((at for at, ok in during if ok and at > first_gap), end)
    last_old = max((at for at, ok in during if ok and at < first_gap), default=start)
    return end - start, first_gap - start, back - last_old


def rank_death():
    """Seconds from the worker rank's kill to a real completion again."""
    ssh("spark-ba63", "docker kill dgx-spark-serve-%s-r1 >/dev/null" % TP2)
    start = time.monotonic()
    time.sleep(1)
    while time.monotonic() - start < 600:
        out = ssh("spark-2959", PROBE, check=False, timeout=20).stdout
        if '"choices"' in out:
            return time.monotonic() - start
        time.sleep(0.5)
    raise RuntimeError("not serving again within 600 s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deaths", type=int, default=2, help="rank deaths to time")
    args = parser.parse_args()
    playbook("stop_model.yml")
    launch(SOLO)
    swaps = [("%s -> %s" % (SOLO, TP2),) + swap(TP2)]
    deaths = []
    for _death in range(args.deaths):
        deaths.append(rank_death())
        time.sleep(15)  # the watchdog's next looks see the group healthy
    swaps.append(("%s -> %s" % (TP2, SOLO),) + swap(SOLO))
    playbook("stop_model.yml")
    print("\n%-42s %8s %16s %9s %14s" % ("swap", "run s", "old answered s", "outage s", "outage / run"))
    for name, run, old, outage in swaps:
        print("%-42s %8.1f %16.1f %9.1f %14.2f" % (name, run, old, outage, outage / run))
    detection = WATCHDOG["interval"] * WATCHDOG["failures"]
    median = statistics.median(deaths)
    print("\nrank death -> serving (watchdog, TP=2): %s s; median %.1f s; median / detection time (%d s) %.2f"
          % (", ".join("%.1f" % d for d in deaths), median, detection, median / detection))
    print("targets: the old model answers until the switch; serving again within 180 s of a rank's death")


if __name__ == "__main__":
    main()
