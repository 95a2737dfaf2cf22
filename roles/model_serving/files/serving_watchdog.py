"""The serving watchdog on the head (dgx-spark-serving-watchdog.service).

Every `interval` seconds it asks the served model for a real completion (vLLM's head keeps answering /health with
200 after a worker rank died, so /health proves nothing) and checks that every rank's container runs (the head's
with docker, the others' over SSH on the fabric). After `failures` bad looks in a row it restarts the whole group:
every rank's unit stopped, then started again in the launch's order (the ranks that go first, then the others), and
waits up to `start_timeout` seconds for a completion. At most `max_restarts` restarts within `window` seconds, with
a back-off that doubles from `backoff` seconds; past that it stops every rank and gives up. Its state goes to
`status_file` (JSON: state, checked, restarts, last_problem), which model_status.yml reports.
Configuration: the JSON file named by its first argument (the model_serving role writes it).
"""

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request


def probe(config):
    """None when the model answers a real completion, else what went wrong."""
    body = json.dumps({"model": config["served_name"], "prompt": "The", "max_tokens": 1, "temperature": 0}).encode()
    request = urllib.request.Request("http://127.0.0.1:%d/v1/completions" % config["port"], data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    if config.get("api_key_file") and os.path.exists(config["api_key_file"]):
        with open(config["api_key_file"]) as handle:  # VLLM_API_KEY=<key>, docker's --env-file format
            request.add_header("Authorization", "Bearer " + handle.read().strip().partition("=")[2])
    try:
        with urllib.request.urlopen(request, timeout=config["probe_timeout"]) as response:
            answer = json.loads(response.read())
        if not answer.get("choices"):
            return "the completion had no choices"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return "no completion: %s" % exc
    return None


def run(argv, timeout=60):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return done.returncode, (done.stdout + done.stderr).strip()


def on_rank(config, rank, command):
    """argv running command on the rank's node: here, or over SSH on the fabric as this user."""
    if rank["local"]:
        return command
    return ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", rank["address"], shlex.join(command)]


def ranks_down(config):
    down = []
    for rank in config["ranks"]:
        rc, out = run(on_rank(config, rank, ["docker", "inspect", "-f", "{{.State.Running}}", rank["container"]]), 30)
        if rc != 0 or out.strip() != "true":
            down.append("rank %d (%s) is not running" % (rank["rank"], rank["container"]))
    return down


def units(config, action, ranks):
    for rank in ranks:
        command = ["sudo", "-n", "systemctl", action, "dgx-spark-serving@%s.service" % rank["container"]]
        if action == "start":
            command.insert(3, "--no-block")
        run(on_rank(config, rank, command), 120)


def restart_group(config):
    first = [rank for rank in config["ranks"] if rank["first"]]
    others = [rank for rank in config["ranks"] if not rank["first"]]
    units(config, "stop", list(reversed(others)) + first)
    units(config, "start", first)
    units(config, "start", others)
    deadline = time.monotonic() + config["start_timeout"]
    while time.monotonic() < deadline:
        if not ranks_down(config) and probe(config) is None:
            return True
        time.sleep(5)
    return False


def write_status(config, status):
    tmp = config["status_file"] + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(dict(status, checked=time.time()), handle)
    os.replace(tmp, config["status_file"])


def main():
    with open(sys.argv[1]) as handle:
        config = json.load(handle)
    status = {"state": "starting", "model": config["model"], "restarts": [], "last_problem": None}
    write_status(config, status)
    # after a boot or a launch the ranks take a while: judge them once they answered, or once start_timeout passed
    grace = time.monotonic() + config["start_timeout"]
    while time.monotonic() < grace and (ranks_down(config) or probe(config) is not None):
        time.sleep(config["interval"])
    bad, backoff = 0, config["backoff"]
    while True:
        problems = ranks_down(config)
        if not problems:
            found = probe(config)
            problems = [found] if found else []
        if not problems:
            bad, status["state"] = 0, "healthy"
            write_status(config, status)
            time.sleep(config["interval"])
            continue
        bad += 1
        status.update(state="unhealthy", last_problem="; ".join(problems))
        write_status(config, status)
        if bad < config["failures"]:
            time.sleep(config["interval"])
            continue
        now = time.time()
        status["restarts"] = [at for at in status["restarts"] if now - at < config["window"]]
        if len(status["restarts"]) >= config["max_restarts"]:
            units(config, "stop", config["ranks"])
            status.update(state="gave up", last_problem="%s; %d restarts within %d s did not help, every rank "
                                                        "stopped" % ("; ".join(problems), config["max_restarts"],
                                                                     config["window"]))
            write_status(config, status)
            return
        status["restarts"].append(now)
        status["state"] = "restarting"
        write_status(config, status)
        if restart_group(config):
            bad, backoff = 0, config["backoff"]
            status["state"] = "healthy"
            write_status(config, status)
        else:
            time.sleep(backoff)
            backoff *= 2


if __name__ == "__main__":
    main()
