"""launch_model.yml on the lab: cold launch, relaunch of the same model, and the engine's own start time.

Needs the lab up with the fabric role applied and the engine loaded (`lab/lab.sh engine`); the image and weights
are already on the nodes after a first launch (the copies are measured by the image and weight benchmarks).
For each catalog model (solo and TP=2 by default) it prints:
  cold launch     nothing serving -> launch_model.yml returns (a real completion answered)
  relaunch        the same model again (nothing restarted; the median of three), and the part of it rank 0 spent
                  answering the look's real completion
  engine start    the same containers started by hand with the role's argv -> /v1/models answers
  engine wait     inside the cold launch: serving_wait's own elapsed time (start -> a real completion)
  ping            a playbook that only pings the same nodes (Ansible's own floor; the median of three), timed in the
                  same run
  busy CPUs       how many of the machine's CPUs the cold launch's own work (outside its wait for the engine) kept
                  busy, the controller and the nodes together (/proc/stat sampled every 0.1 s): near the CPU count,
                  that work is bound by the lab's CPUs
and for a model over more than one node, with --absent:
  cold absent     the cold launch with the image and the weights absent on the workers
  transfers       the image copy alone (p2p_image_copy, as the role runs it) and the weights alone (weight_sync)
with the ratios the issues target: relaunch <= 5% of cold (#serving), launch overhead over the engine <= 10 s
(serving) and <= 5 s (#23), relaunch <= 2x the ping playbook (#23), cold absent <= 1.15x (the slower transfer +
the engine's start) (#23). The overhead is printed twice: cold minus the separate engine start (two starts of a
2-CPU engine differ by seconds) and cold minus the launch's own wait for its engine (Ansible's share of the same run).
Printed, never asserted.  Usage: .venv/bin/python benchmarks/launch_model.py [--model lab-tiny-llama ...] [--absent]
"""

import argparse
import os
import shlex
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lab"))
sys.path.insert(0, str(ROOT / ".collections"))
from labkit import JSON_OUTPUT, json_document, module, playbook, ssh  # noqa: E402
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _catalog, _engine_argv, _fit_plan  # noqa: E402

HOSTS = ["spark-2959", "spark-ba63"]
REPEATS = 5  # relaunches and pings, each figure their median (a shared VM varies by a fifth between runs)
ADDRESSES = ["10.10.10.1", "10.10.10.2"]


def busy_cpu_seconds():
    """The machine's busy CPU seconds so far (/proc/stat: user, nice, system, irq, softirq, steal). The lab's nodes
    are containers on the same CPUs, so this counts the controller and every node."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class CpuSampler(threading.Thread):
    """(epoch seconds, busy CPU seconds) every 0.1 s while a run lasts."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.done = [], threading.Event()

    def run(self):
        while not self.done.is_set():
            self.samples.append((time.time(), busy_cpu_seconds()))
            self.done.wait(0.1)

    def busy_between(self, start, end):
        """Busy CPU seconds from start to end (the samples nearest inside)."""
        inside = [busy for when, busy in self.samples if start <= when <= end]
        return inside[-1] - inside[0] if len(inside) > 1 else 0.0


def run_playbook(*args, sampler=None):
    """(wall seconds, the JSON callback's document) of one playbook run; with a sampler, it samples the run, and
    the document gets its epoch start and end ("_run")."""
    if sampler:
        sampler.start()
    started = time.time()
    start = time.monotonic()
    out = playbook(*args, timeout=1800, env=JSON_OUTPUT)
    wall = time.monotonic() - start
    if sampler:
        time.sleep(0.15)
        sampler.done.set()
        sampler.join()
    if out.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(args), out.stdout[-3000:]))
    document = json_document(out.stdout)
    document["_run"] = (started, started + wall)
    return wall, document


def epoch(stamp):
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def own_work_cpu(document, sampler):
    """The CPUs the launch's own work kept busy (busy CPU seconds / seconds, outside its wait for the engine):
    near the machine's CPU count, that work is bound by the lab's CPUs."""
    start, end = document["_run"]
    for play in document["plays"]:
        for task in play["tasks"]:
            if "Wait for /health" in task["task"]["name"] and HOSTS[0] in task["hosts"]:
                waited = (epoch(task["task"]["duration"]["start"]), epoch(task["task"]["duration"]["end"]))
                busy = sampler.busy_between(start, waited[0]) + sampler.busy_between(waited[1], end)
                return busy / ((waited[0] - start) + (end - waited[1]))
    raise RuntimeError("the launch did not wait for an engine")


def look_answer(document):
    """Seconds the relaunch's one look spent on rank 0's real completion (the engine's share of the relaunch)."""
    for play in document["plays"]:
        for task in play["tasks"]:
            probe = task["hosts"].get(HOSTS[0], {}).get("probe") or {}
            if "What serves on every node" in task["task"]["name"] and probe.get("ran"):
                return probe["elapsed"]
    raise RuntimeError("the relaunch's look did not ask rank 0")


def engine_wait(document):
    """Seconds serving_wait reported on the head (start -> a real completion) in a launch's JSON output."""
    for play in document["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(HOSTS[0], {})
            if "Wait for /health" in task["task"]["name"] and "elapsed" in result:
                return result["elapsed"]
    raise RuntimeError("the launch did not wait for an engine")


def lab_settings():
    """The lab inventory's serving variables, as the role passes them to vllm_rank_argv."""
    sparks = yaml.safe_load((ROOT / "inventory" / "lab.yml").read_text())["all"]["children"]["sparks"]["vars"]
    return sparks, {"addresses": ADDRESSES, "config": "benchmark", "fabric_interface": "enp1s0f1np1",
                    "rdma_devices": [], "gpus": sparks["model_serving_gpus"],
                    "ipc_host": sparks["model_serving_ipc_host"], "shm_size": sparks["model_serving_shm_size"],
                    "devices": sparks["model_serving_devices"], "ulimits": sparks["model_serving_ulimits"],
                    "master_port": 29501, "distributed_timeout": sparks["model_serving_distributed_timeout"],
                    "model_source": "/var/lib/dgx-spark/hf-cache"}


def engine_start(key):
    """Seconds from `docker run` of every rank (workers first, as the role does) to /v1/models answering."""
    sparks, settings = lab_settings()
    entry = _catalog.validate_entry(key, sparks["model_serving_catalog"][key])
    # the smallest placement, as the role's plan chooses for the lab's tiny models
    settings["tp"], settings["pp"] = _fit_plan.placements(entry["tp"], entry["pp"], len(HOSTS))[0]
    start = time.monotonic()
    for rank in reversed(range(_engine_argv.rank_count(settings))):
        ssh(HOSTS[rank], shlex.join(_engine_argv.vllm_rank_argv(entry, key, rank, settings)) + " >/dev/null")
    probe = "curl -sf -o /dev/null http://127.0.0.1:%d/v1/models" % entry["port"]
    while ssh(HOSTS[0], probe, check=False).returncode != 0:
        if time.monotonic() - start > 600:
            raise RuntimeError("the engine did not answer within 600 s")
        time.sleep(0.2)
    return time.monotonic() - start


PING = """
- name: Ping the nodes (Ansible's floor for a run over them)
  hosts: sparks
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def ping_playbook():
    """(wall seconds, CPUs it kept busy) of a playbook that only pings the lab's nodes (the run with the median wall
    time of REPEATS)."""
    path = Path(tempfile.mkdtemp()) / "ping.yml"
    path.write_text(PING)
    runs = sorted(sampled(str(path)) for _run in range(REPEATS))
    return runs[len(runs) // 2][0], runs[len(runs) // 2][2]


def sampled(*args):
    """(wall seconds, document, CPUs the run kept busy) of one playbook run."""
    sampler = CpuSampler()
    wall, document = run_playbook(*args, sampler=sampler)
    return wall, document, sampler.busy_between(*document["_run"]) / wall


def relaunched(key):
    """(wall seconds, seconds of it rank 0 spent answering, CPUs it kept busy) of a relaunch of what serves: the run
    with the median wall time of REPEATS."""
    runs = sorted((sampled("launch_model.yml", "-e", "model=" + key) for _run in range(REPEATS)), key=lambda run: run[0])
    wall, document, busy = runs[len(runs) // 2]
    return wall, look_answer(document), busy


def without_artifacts_on_workers(entry):
    """The image and the model directory gone from every worker (what a cold launch on new nodes finds)."""
    for host in HOSTS[1:]:
        ssh(host, "docker image rm -f %s >/dev/null 2>&1; sudo rm -rf %s" % (entry["image"], entry["local_path"]),
            check=False, timeout=300)


def transfers_alone(entry):
    """(image copy s, weight sync s) to the workers, each alone, as the role runs them."""
    without_artifacts_on_workers(entry)
    start = time.monotonic()
    for host in HOSTS[1:]:
        rc, result = module(host, "p2p_image_copy", {"image": entry["image"], "source_host": ADDRESSES[0],
                                                     "source_become": True}, timeout=1800)
        if rc != 0:
            raise RuntimeError("the image copy failed: %s" % result.get("msg"))
    image = time.monotonic() - start
    start = time.monotonic()
    for host in HOSTS[1:]:
        rc, result = module(host, "weight_sync", {"path": entry["local_path"], "source_host": ADDRESSES[0]},
                            timeout=1800)
        if rc != 0:
            raise RuntimeError("the weight sync failed: %s" % result.get("msg"))
    return image, time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="catalog key (repeatable)")
    parser.add_argument("--absent", action="store_true",
                        help="also a cold launch of each model over more than one node with nothing on the workers")
    args = parser.parse_args()
    figures, absent = {}, {}
    catalog = lab_settings()[0]["model_serving_catalog"]
    for key in args.model or ["lab-tiny-llama", "lab-tiny-llama-tp2"]:
        run_playbook("stop_model.yml")
        engine = engine_start(key)
        run_playbook("stop_model.yml")
        sampler = CpuSampler()
        cold, document = run_playbook("launch_model.yml", "-e", "model=" + key, sampler=sampler)
        relaunch, answering, relaunch_busy = relaunched(key)
        ping, ping_busy = ping_playbook()
        figures[key] = (cold, relaunch, answering, engine, engine_wait(document), ping,
                        own_work_cpu(document, sampler), relaunch_busy, ping_busy)
        entry = _catalog.validate_entry(key, catalog[key])
        if args.absent and _fit_plan.placements(entry["tp"], entry["pp"], len(HOSTS))[0] != (1, 1):
            run_playbook("stop_model.yml")
            image, weights = transfers_alone(entry)
            without_artifacts_on_workers(entry)
            absent[key] = (run_playbook("launch_model.yml", "-e", "model=" + key)[0], image, weights, engine)
    run_playbook("stop_model.yml")
    header = ("model", "cold s", "relaunch s", "its answer s", "engine start s", "engine wait s", "ping s",
              "relaunch / cold", "relaunch / ping", "(relaunch - answer) / ping", "overhead s (cold-start)",
              "overhead s (cold-wait)", "busy CPUs: overhead", "relaunch", "ping")
    print("\n%-20s %8s %11s %13s %15s %14s %7s %16s %16s %27s %24s %23s %21s %9s %5s" % header)
    for key, (cold, relaunch, answering, engine, wait, ping, busy, relaunch_busy, ping_busy) in figures.items():
        row = (key, cold, relaunch, answering, engine, wait, ping, relaunch / cold, relaunch / ping,
               (relaunch - answering) / ping, cold - engine, cold - wait, busy, relaunch_busy, ping_busy)
        print("%-20s %8.1f %11.2f %13.2f %15.1f %14.1f %7.2f %16.2f %16.2f %27.2f %24.1f %23.1f %21.2f %9.2f %5.2f"
              % row)
    print("busy CPUs: how many of the lab's %d CPUs were busy on average (the controller and both nodes together) "
          "during the cold" % os.cpu_count())
    print("launch's own work (outside its wait for the engine), the relaunch and the ping playbook")
    print("targets: relaunch / cold <= 0.05; relaunch / ping <= 2; overhead <= 10 s (serving), <= 5 s (#23)")
    print("(relaunch - answer) / ping: the relaunch without rank 0's own time to answer its real completion (the lab's")
    print("CPU engine's share; a GB10 answers in milliseconds); relaunch and ping are the medians of %d runs" % REPEATS)
    if absent:
        print("\n%-20s %15s %14s %16s %15s %32s" % ("model", "cold absent s", "image copy s", "weight sync s",
                                                    "engine start s", "cold absent / (slower + start)"))
        for key, (cold, image, weights, engine) in absent.items():
            print("%-20s %15.1f %14.1f %16.1f %15.1f %32.2f"
                  % (key, cold, image, weights, engine, cold / (max(image, weights) + engine)))
        print("target: cold absent / (the slower transfer + the engine's start) <= 1.15")


if __name__ == "__main__":
    main()
