"""weight_sync between the lab nodes over the fabric, run on the worker pulling from the head: a Hugging Face cache
entry arrives complete and resolvable."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
from labkit import (ROOT, VENV_BIN, ansible_env, async_job_files, fabric, lab, lab_inventory, module, module_run, playbook,
                    runner_module, ssh)

CACHE = "/home/spark/.cache/huggingface/hub"
HEAD_FABRIC = fabric("10.10.10.1")
# A cache entry as huggingface_hub lays it out: blobs named by hash, snapshot files as relative symlinks, refs;
# one blob kept at the hub level (outside the repo folder).
MAKE_CACHE = r"""
import hashlib, os
root = os.path.expanduser("~/.cache/huggingface/hub")
repo = os.path.join(root, "models--lab--tiny")
commit = "0123456789abcdef0123456789abcdef01234567"
snap = os.path.join(repo, "snapshots", commit)
os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
os.makedirs(os.path.join(root, "blobs"), exist_ok=True)
os.makedirs(snap, exist_ok=True)
open(os.path.join(repo, "refs", "main"), "w").write(commit)
files = {"config.json": b'{"model_type": "llama"}', "model.safetensors": os.urandom(20 << 20),
         "tokenizer.json": b'{"version": "1.0"}'}
for name, data in files.items():
    digest = hashlib.sha256(data).hexdigest()
    base = root if name == "tokenizer.json" else repo
    blob = os.path.join(base, "blobs", digest)
    open(blob, "wb").write(data)
    link = os.path.join(snap, name)
    if not os.path.islink(link):
        os.symlink(os.path.relpath(blob, snap), link)
"""
OPEN_ALL = r"""
import hashlib, json, os
snap = os.path.expanduser("~/.cache/huggingface/hub/models--lab--tiny/snapshots/0123456789abcdef0123456789abcdef01234567")
print(json.dumps({name: [os.path.islink(os.path.join(snap, name)),
                         hashlib.sha256(open(os.path.join(snap, name), "rb").read()).hexdigest()]
                  for name in sorted(os.listdir(snap))}))
"""


def sync():
    return module("spark-ba63", "weight_sync", {"path": CACHE, "hf_repo": "lab/tiny", "source_host": HEAD_FABRIC})


def digests(node):
    return json.loads(ssh(node, "python3 - <<'EOF'\n%s\nEOF" % OPEN_ALL).stdout)


@pytest.fixture(scope="module", autouse=True)
def cache_on_the_head():
    lab("up")
    fabric = playbook("fabric.yml")
    assert fabric.returncode == 0, fabric.stdout[-3000:]
    for node in ("spark-2959", "spark-ba63"):
        ssh(node, "rm -rf ~/.cache/huggingface")
    ssh("spark-2959", "python3 - <<'EOF'\n%s\nEOF" % MAKE_CACHE)
    yield
    for node in ("spark-2959", "spark-ba63"):
        ssh(node, "rm -rf ~/.cache/huggingface", check=False)


def test_sync_then_every_snapshot_file_opens_on_the_worker():
    rc, result = sync()
    assert rc == 0 and result["changed"] is True, result
    assert result["files_transferred"] == 4 and result["bytes_sent"] > 20 << 20
    head, worker = digests("spark-2959"), digests("spark-ba63")
    assert worker == head and set(worker) == {"config.json", "model.safetensors", "tokenizer.json"}
    assert all(is_link for is_link, _digest in worker.values())


def test_resync_of_the_unchanged_model_sends_almost_nothing():
    rc, result = sync()
    assert rc == 0 and result["changed"] is False and result["files_transferred"] == 0
    assert result["bytes_sent"] < 64 << 10 and result["seconds"] < 10


def test_a_blob_lost_on_the_worker_is_sent_again():
    ssh("spark-ba63", "rm -f ~/.cache/huggingface/hub/blobs/*")
    rc, result = sync()
    assert rc == 0 and result["files_transferred"] == 1
    assert digests("spark-ba63") == digests("spark-2959")


def test_a_long_sync_shows_its_progress_as_ansible_runner_events(tmp_path):
    ssh("spark-ba63", "rm -rf ~/.cache/huggingface")
    jobs_before = async_job_files("spark-ba63")
    # through ansible-runner, as AWX runs it: the progress lines are events of the run, not only text on stderr
    run = runner_module(tmp_path, "spark-ba63", "weight_sync", {
        "path": CACHE, "hf_repo": "lab/tiny", "source_host": HEAD_FABRIC, "bwlimit": 4000, "progress_interval": 0.5})
    rc, result = run.rc, run.result
    assert rc == 0 and result["changed"] is True and result["seconds"] > 2, result
    lines = [line for line in run.progress if line.startswith(fabric("spark-ba63: weights lab/tiny <- 10.10.10.1 "))]
    assert lines, run.progress
    mib = [float(line.split()[5]) for line in lines]
    assert mib == sorted(mib) and 0 < mib[-1] <= 20 and "of ~20 MiB" in lines[-1] and "MiB/s" in lines[-1], lines
    # 3 snapshot files, 2 blobs in the repo folder, refs/main
    assert result["files_checked"] == 6 and result["file_bytes"] > 20 << 20
    assert digests("spark-ba63") == digests("spark-2959")
    # neither the progress file nor the async job's own file (j<id>.<pid>) stays behind
    assert ssh("spark-ba63", "ls ~/.ansible_async | grep -c weight_sync", check=False).stdout.strip() == "0"
    assert async_job_files("spark-ba63") == jobs_before


def test_an_incomplete_download_on_the_head_is_refused():
    ssh("spark-2959", "mv ~/.cache/huggingface/hub/blobs ~/.cache/huggingface/hub/blobs.away")
    try:
        rc, result = sync()
    finally:
        ssh("spark-2959", "mv ~/.cache/huggingface/hub/blobs.away ~/.cache/huggingface/hub/blobs")
    assert rc != 0 and "dangling links" in result["msg"] and "tokenizer.json" in result["msg"]


def test_large_files_go_over_parallel_streams_and_arrive_whole():
    model = "/home/spark/models/two-shards"
    ssh("spark-2959", "mkdir -p %s && echo '{}' > %s/config.json && for i in 1 2; do head -c 67108864 /dev/urandom "
                      "> %s/model-0000$i-of-00002.safetensors; done" % (model, model, model))
    try:
        rc, result, stderr = module_run("spark-ba63", "weight_sync", {
            "path": model, "source_host": HEAD_FABRIC, "streams": 4, "bwlimit": 60000, "progress_interval": 0.5})
        assert rc == 0 and result["changed"] is True, result
        # two large files: two streams, whatever was asked; the cap is shared, so 128 MiB take 2 s at the least
        assert result["streams"] == 2 and result["files_transferred"] == 3 and result["seconds"] >= 2, result
        assert fabric("spark-ba63: weights %s <- 10.10.10.1 ") % model in stderr and "of ~128 MiB" in stderr, stderr
        listing = "cd %s && sha256sum config.json model-0000*" % model
        assert ssh("spark-ba63", listing).stdout == ssh("spark-2959", listing).stdout
    finally:
        for node in ("spark-2959", "spark-ba63"):
            ssh(node, "rm -rf /home/spark/models/two-shards", check=False)


def test_a_sync_interrupted_on_the_controller_is_ended_by_the_next_one():
    model = "/home/spark/models/interrupted"
    ssh("spark-2959", "mkdir -p %s && echo '{}' > %s/config.json && head -c 31457280 /dev/urandom "
                      "> %s/model.safetensors" % (model, model, model))
    argv = [str(VENV_BIN / "ansible"), "spark-ba63", "-i", str(lab_inventory()), "-m", "dgx_spark.cluster.weight_sync", "-a",
            json.dumps({"path": model, "source_host": HEAD_FABRIC, "bwlimit": 2000, "progress_interval": 1})]
    try:
        first = subprocess.Popen(argv, cwd=str(ROOT), env=ansible_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        for line in first.stdout:  # under way: a progress line
            if "spark-ba63: weights %s <- " % model in line:
                break
        first.send_signal(signal.SIGINT)  # Ctrl-C on the controller
        first.communicate(timeout=60)
        running = ssh("spark-ba63", "pgrep -x rsync || true").stdout.split()
        assert running, "the interrupted sync was expected to run on (nothing reaches it from the controller)"
        rc, result = module("spark-ba63", "weight_sync", {"path": model, "source_host": HEAD_FABRIC})
        assert rc == 0 and result["ended_leftover"]["processes"], result
        assert set(running) <= set(str(pid) for pid in result["ended_leftover"]["processes"])
        assert ssh("spark-ba63", "pgrep rsync", check=False).stdout == ""
        assert ssh("spark-ba63", "ls ~/.cache/dgx-spark/jobs", check=False).stdout == ""  # its marker went too
        listing = "cd %s && sha256sum config.json model.safetensors" % model
        assert ssh("spark-ba63", listing).stdout == ssh("spark-2959", listing).stdout
    finally:
        for node in ("spark-2959", "spark-ba63"):
            ssh(node, "rm -rf %s" % model, check=False)
