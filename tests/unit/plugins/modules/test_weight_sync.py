"""weight_sync with the real rsync between two directories (SSH played by a local pass-through)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _rsync_progress, _weights
from ansible_collections.dgx_spark.cluster.plugins.modules import weight_sync

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hf_cache(root, hub_level_blob=True):
    """A cache entry as huggingface_hub writes it: blobs, snapshot symlinks, refs; one blob at the cache root."""
    repo = root / "models--org--tiny"
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    (snapshot / "sub").mkdir(parents=True)
    blobs = {"config.json": b'{"model_type": "llama"}', "model.safetensors": os.urandom(300000),
             "sub/extra.bin": b"x" * 1000}
    for name, data in blobs.items():
        blob = repo / "blobs" / ("%064x" % abs(hash(name)))
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, (snapshot / name).parent), snapshot / name)
    if hub_level_blob:
        (root / "blobs").mkdir()
        shared = root / "blobs" / ("f" * 64)
        shared.write_bytes(b'{"tokenizer": true}')
        os.symlink(os.path.relpath(shared, snapshot), snapshot / "tokenizer.json")
    (root / "models--other--model").mkdir()  # another model in the cache: never sent
    return snapshot


@pytest.fixture
def local_ssh(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    ssh = bindir / "ssh"
    ssh.write_text("#!/bin/sh\nwhile [ \"$1\" = -o ]; do shift 2; done\nshift\nexec \"$@\"\n")
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))


def sync(module_runner, source, dest, **extra):
    args = dict({"path": str(source), "hf_repo": "org/tiny", "dest_host": "10.10.10.2", "dest_path": str(dest)},
                **extra)
    return module_runner(weight_sync.main, args)


def test_every_snapshot_file_opens_on_the_destination(module_runner, local_ssh, tmp_path):
    snapshot = hf_cache(tmp_path / "src")
    result, failed = sync(module_runner, tmp_path / "src", tmp_path / "dst")
    assert not failed, result
    assert result["changed"] is True and result["files_transferred"] == 5 and result["files_checked"] == 8  # 4 links, 3 blobs, refs/main
    dest_snapshot = tmp_path / "dst" / snapshot.relative_to(tmp_path / "src")
    for name in ("config.json", "model.safetensors", "sub/extra.bin", "tokenizer.json"):
        assert (dest_snapshot / name).is_symlink(), name  # links stay links: no doubled disk use
        assert (dest_snapshot / name).read_bytes() == (snapshot / name).read_bytes(), name
    assert (tmp_path / "dst" / "models--org--tiny" / "refs" / "main").read_text() == COMMIT
    assert not (tmp_path / "dst" / "models--other--model").exists()


def test_a_resync_of_an_unchanged_model_sends_almost_nothing(module_runner, local_ssh, tmp_path):
    hf_cache(tmp_path / "src")
    first = sync(module_runner, tmp_path / "src", tmp_path / "dst")[0]
    again, failed = sync(module_runner, tmp_path / "src", tmp_path / "dst")
    assert not failed and again["changed"] is False and again["files_transferred"] == 0
    assert again["bytes_sent"] < first["bytes_sent"] / 10


def test_check_mode_sends_nothing(module_runner, local_ssh, tmp_path, monkeypatch):
    hf_cache(tmp_path / "src")
    from ansible.module_utils import basic
    monkeypatch.setattr(basic.AnsibleModule, "check_mode", True, raising=False)
    result, failed = module_runner(weight_sync.main, {
        "path": str(tmp_path / "src"), "hf_repo": "org/tiny", "dest_host": "10.10.10.2",
        "dest_path": str(tmp_path / "dst"), "_ansible_check_mode": True})
    assert not failed and result["changed"] is True and "files_checked" not in result
    assert not (tmp_path / "dst" / "models--org--tiny").exists()


def test_check_mode_with_nothing_to_send_checks_the_destination(module_runner, local_ssh, tmp_path, monkeypatch):
    hf_cache(tmp_path / "src")
    assert not sync(module_runner, tmp_path / "src", tmp_path / "dst")[1]
    ssh = tmp_path / "bin" / "ssh"
    ssh.write_text("#!/bin/sh\nwhile [ \"$1\" = -o ]; do shift 2; done\nshift\necho \"$*\" >> %s\nexec \"$@\"\n"
                   % (tmp_path / "remote_commands"))
    from ansible.module_utils import basic
    monkeypatch.setattr(basic.AnsibleModule, "check_mode", True, raising=False)
    result, failed = sync(module_runner, tmp_path / "src", tmp_path / "dst", _ansible_check_mode=True)
    assert not failed and result["changed"] is False and result["files_checked"] == 8
    remote = (tmp_path / "remote_commands").read_text().splitlines()
    assert remote[0].startswith("rsync --server") and "n" in remote[0].split()[2]  # the dry run
    assert remote[1:] == ["python3 -"]  # then the read-only check of every file


def test_dangling_links_on_the_source_are_refused_before_sending(module_runner, local_ssh, tmp_path):
    snapshot = hf_cache(tmp_path / "src")
    os.remove(os.path.realpath(snapshot / "model.safetensors"))
    result, failed = sync(module_runner, tmp_path / "src", tmp_path / "dst")
    assert failed and "dangling links: models--org--tiny/snapshots/%s/model.safetensors" % COMMIT in result["msg"]
    assert not (tmp_path / "dst").exists()


def test_a_local_model_directory(module_runner, local_ssh, tmp_path):
    model = tmp_path / "models" / "tiny-llama"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(os.urandom(5000))
    result, failed = module_runner(weight_sync.main, {"path": str(model), "dest_host": "10.10.10.2",
                                                      "dest_path": str(tmp_path / "copy" / "tiny-llama")})
    assert not failed, result
    assert (tmp_path / "copy" / "tiny-llama" / "model.safetensors").read_bytes() == \
        (model / "model.safetensors").read_bytes()


@pytest.mark.parametrize("args, message", [
    ({"hf_repo": "org/tiny; rm -rf /"}, "hf_repo"),
    ({"dest_host": "-oProxyCommand=x"}, "dest_host"),
    ({"dest_path": "/data/../etc"}, "dest_path"),
    ({"streams": 0}, "streams is a number of parallel rsyncs from 1 to 64"),
])
def test_hostile_input_is_refused(module_runner, tmp_path, args, message):
    base = {"path": str(tmp_path), "hf_repo": "org/tiny", "dest_host": "10.10.10.2"}
    result, failed = module_runner(weight_sync.main, dict(base, **args))
    assert failed and result["msg"].startswith(message)


def test_links_leaving_the_cache_are_refused(tmp_path):
    snapshot = hf_cache(tmp_path / "src", hub_level_blob=False)
    (tmp_path / "outside").write_text("secret")
    os.symlink(str(tmp_path / "outside"), snapshot / "leak")
    with pytest.raises(_weights.LayoutError, match="links leaving the cache"):
        _weights.manifest(str(tmp_path / "src"), "models--org--tiny")


def test_rsync_stats_parsing():
    text = ("Number of regular files transferred: 1,234\nTotal transferred file size: 9,800,000 bytes\n"
            "Total bytes sent: 9,876,543\n")
    assert _weights.rsync_stats(text) == (9876543, 1234, 9800000)
    assert _weights.rsync_stats(text + text.replace("1,234", "6")) == (2 * 9876543, 1240, 2 * 9800000)  # streams
    assert _weights.rsync_stats("") == (None, None, None)


def test_rsync_progress_child_passes_rsync_through_and_reports(tmp_path):
    # the real rsync, locally: its progress2 lines feed the progress file, its output and status pass through
    source, dest = tmp_path / "src", tmp_path / "dst"
    source.mkdir()
    (source / "model.safetensors").write_bytes(os.urandom(8 << 20))
    progress = tmp_path / "progress.json"
    argv = [shutil.which("rsync"), "--info=progress2", "-a", "--stats", str(source) + "/", str(dest) + "/"]
    done = subprocess.run([sys.executable, "-"], input=_rsync_progress.program([[argv]], str(progress)).encode(),
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert _weights.rsync_stats(done.stdout.decode())[1:] == (1, 8 << 20)
    report = json.loads(progress.read_text())
    assert 0 < report["bytes"] <= 8 << 20 and report["seconds"] >= 0
    assert (dest / "model.safetensors").read_bytes() == (source / "model.safetensors").read_bytes()


def test_rsync_progress_child_keeps_rsyncs_failure(tmp_path):
    argv = [shutil.which("rsync"), "--info=progress2", "-a", str(tmp_path / "absent") + "/", str(tmp_path / "d")]
    never = [shutil.which("rsync"), "-a", str(tmp_path / "absent2") + "/", str(tmp_path / "never")]
    program = _rsync_progress.program([[argv], [never]], str(tmp_path / "p.json"))
    done = subprocess.run([sys.executable, "-"], input=program.encode(), capture_output=True, timeout=60, check=False)
    assert done.returncode == 23 and b"absent" in done.stderr
    assert b"absent2" not in done.stderr  # a failed stage ends the run


def test_the_large_files_are_dealt_to_the_least_loaded_stream_after_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(_weights, "BULK_BYTES", 1000)
    for name, size in (("a.bin", 5000), ("b.bin", 4000), ("c.bin", 3000), ("d.bin", 2000), ("small.json", 10)):
        (tmp_path / name).write_bytes(b"x" * size)
    os.symlink("a.bin", tmp_path / "link.bin")
    paths = ["a.bin", "b.bin", "c.bin", "d.bin", "link.bin", "small.json"]
    rest_first_then_balanced = [["link.bin", "small.json"], ["a.bin", "d.bin"], ["b.bin", "c.bin"]]
    assert _weights.stream_groups(str(tmp_path), paths, 2) == rest_first_then_balanced
    assert _weights.stream_groups(str(tmp_path), paths, 1) == [paths]
    monkeypatch.setattr(_weights, "BULK_BYTES", 4500)
    assert _weights.stream_groups(str(tmp_path), paths, 4) == [paths]  # one large file: nothing to spread


def test_parallel_streams_deliver_a_complete_cache_entry(module_runner, local_ssh, tmp_path, monkeypatch):
    monkeypatch.setattr(_weights, "BULK_BYTES", 1000)  # the safetensors blob and the extra blob go in parallel
    snapshot = hf_cache(tmp_path / "src")
    result, failed = sync(module_runner, tmp_path / "src", tmp_path / "dst", streams=2,
                          progress_file=str(tmp_path / ("weight_sync-%s.json" % ("c" * 32))))
    assert not failed, result
    assert result["streams"] == 2 and result["files_transferred"] == 5 and result["files_checked"] == 8
    dest_snapshot = tmp_path / "dst" / snapshot.relative_to(tmp_path / "src")
    for name in ("config.json", "model.safetensors", "sub/extra.bin", "tokenizer.json"):
        assert (dest_snapshot / name).read_bytes() == (snapshot / name).read_bytes(), name
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("weight_sync-")] == []  # nor its temporary
    again = sync(module_runner, tmp_path / "src", tmp_path / "dst", streams=2)[0]
    assert again["changed"] is False and again["files_transferred"] == 0


def test_the_small_files_first_stream_and_check_share_one_ssh_connection(module_runner, tmp_path, monkeypatch):
    monkeypatch.setattr(_weights, "BULK_BYTES", 1000)  # two large files: two streams after the small files
    short = tempfile.mkdtemp(prefix="ssh-", dir="/tmp")  # room for a unix socket's name, unlike tmp_path
    monkeypatch.setattr(tempfile, "tempdir", short)  # where the shared connection's socket goes
    bindir, calls = tmp_path / "bin", tmp_path / "ssh-calls"
    bindir.mkdir()
    (bindir / "ssh").write_text("#!/bin/sh\necho \"$*\" >> %s\nwhile [ \"$1\" = -o ]; do shift 2; done\nshift\n"
                                "exec \"$@\"\n" % calls)
    (bindir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))
    hf_cache(tmp_path / "src")
    result, failed = sync(module_runner, tmp_path / "src", tmp_path / "dst", streams=2)
    assert not failed and result["streams"] == 2, result
    lines = calls.read_text().splitlines()
    shared = [line for line in lines if "ControlMaster=auto" in line]
    # the small files, the first of the two streams and the check share; the second stream has its own connection
    assert len(lines) == 4 and len(shared) == 3 and shared[-1].endswith("python3 -"), lines
    paths = set(word for line in shared for word in line.split() if word.startswith("ControlPath="))
    shutil.rmtree(short)
    assert paths == {"ControlPath=%s/dgx-spark-ssh-%d/%%C" % (short, os.geteuid())}
