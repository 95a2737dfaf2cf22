"""launch_model.yml on the lab: cold launch, relaunch of the same model, and the engine's own start time.

Needs the lab up with the fabric role applied and the engine loaded (`lab/lab.sh engine`); the image and weights
are already on the nodes after a first launch (the copies are measured by the image and weight benchmarks).
For each catalog model (solo and TP=2 by default) it prints:
  cold launch     nothing serving -> launch_model.yml returns (a real completion answered)
  relaunch        the same model again (nothing restarted)
  engine start    the same containers started by hand with the role's argv -> /v1/models answers
  engine wait     inside the cold launch: serving_wait's own elapsed time (start -> a real completion)
with the ratios the serving issue targets: relaunch <= 5% of cold, launch overhead over the engine <= 10 s. The
overhead is printed twice: cold minus the separate engine start (two starts of a 2-CPU engine differ by seconds)
and cold minus the launch's own wait for its engine (Ansible's share of the same run).
Printed, never asserted.  Usage: .venv/bin/python benchmarks/launch_model.py [--model lab-tiny-llama ...]
"""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lab"))
sys.path.insert(0, str(ROOT / ".collections"))
from labkit import playbook, ssh  # noqa: E402
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _catalog, _engine_argv, _fit_plan  # noqa: E402

HOSTS = ["spark-2959", "spark-ba63"]
ADDRESSES = ["10.10.10.1", "10.10.10.2"]


def run_playbook(*args):
    """(wall seconds, the JSON callback's document) of one playbook run."""
    start = time.monotonic()
    out = playbook(*args, timeout=1800, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
                                             "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"})
    wall = time.monotonic() - start
    if out.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(args), out.stdout[-3000:]))
    # the JSON document; profile_tasks prints its table after it
    return wall, json.JSONDecoder().raw_decode(out.stdout[out.stdout.index("{"):])[0]


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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="catalog key (repeatable)")
    args = parser.parse_args()
    figures = {}
    for key in args.model or ["lab-tiny-llama", "lab-tiny-llama-tp2"]:
        run_playbook("stop_model.yml")
        engine = engine_start(key)
        run_playbook("stop_model.yml")
        cold, document = run_playbook("launch_model.yml", "-e", "model=" + key)
        relaunch = run_playbook("launch_model.yml", "-e", "model=" + key)[0]
        figures[key] = (cold, relaunch, engine, engine_wait(document))
    run_playbook("stop_model.yml")
    header = ("model", "cold s", "relaunch s", "engine start s", "engine wait s", "relaunch / cold",
              "overhead s (cold-start)", "overhead s (cold-wait)")
    print("\n%-20s %8s %11s %15s %14s %16s %24s %23s" % header)
    for key, (cold, relaunch, engine, wait) in figures.items():
        row = (key, cold, relaunch, engine, wait, relaunch / cold, cold - engine, cold - wait)
        print("%-20s %8.1f %11.1f %15.1f %14.1f %16.2f %24.1f %23.1f" % row)
    print("targets: relaunch / cold <= 0.05; overhead <= 10 s")


if __name__ == "__main__":
    main()
