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
    """weight_sync on the destination, pulling from the source (SSH played by local_ssh)."""
    args = dict({"path": str(dest), "hf_repo": "org/tiny", "source_host": "10.10.10.1", "source_path": str(source)},
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
    assert remote[0] == "python3 -"  # the source's listing
    assert remote[1].startswith("rsync --server --sender") and "n" in remote[1].split()[3]  # the dry run
    assert len(remote) == 2  # then the read-only check of every file, here


def test_dangling_links_on_the_source_are_refused_before_sending(module_runner, local_ssh, tmp_path):
    snapshot = hf_cache(tmp_path / "src")
    os.remove(os.path.realpath(snapshot / "model.safetensors"))
    result, failed = sync(module_runner, tmp_path / "src", tmp_path / "dst")
    assert failed and "dangling links: models--org--tiny/snapshots/%s/model.safetensors" % COMMIT in result["msg"]
    assert not (tmp_path / "dst").exists()


def test_a_local_model_directory_pushed_the_deprecated_way(module_runner, local_ssh, tmp_path, monkeypatch):
    deprecated = []
    monkeypatch.setattr(weight_sync.AnsibleModule, "deprecate", lambda self, msg, **kwargs: deprecated.append(msg))
    model = tmp_path / "models" / "tiny-llama"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(os.urandom(5000))
    result, failed = module_runner(weight_sync.main, {"path": str(model), "dest_host": "10.10.10.2",
                                                      "dest_path": str(tmp_path / "copy" / "tiny-llama")})
    assert not failed, result
    # the push from the source still works for one release, deprecated
    assert "replaced by source_host" in deprecated[0] and result["destination"].startswith("10.10.10.2:")
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
    pulled = text + "Total bytes received: 9,900,000\n"  # a pull counts what came from the other node
    assert _weights.rsync_stats(pulled, pulled=True) == (9900000, 1234, 9800000)


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
    source = _weights.listing(str(tmp_path), ".")
    paths = ["a.bin", "b.bin", "c.bin", "d.bin", "link.bin", "small.json"]
    assert [path for path in source["paths"] if path != "."] == paths and "link.bin" not in source["sizes"]
    rest_first_then_balanced = [["link.bin", "small.json"], ["a.bin", "d.bin"], ["b.bin", "c.bin"]]
    assert _weights.stream_groups(paths, source["sizes"], 2) == rest_first_then_balanced
    assert _weights.stream_groups(paths, source["sizes"], 1) == [paths]
    monkeypatch.setattr(_weights, "BULK_BYTES", 4500)
    assert _weights.stream_groups(paths, source["sizes"], 4) == [paths]  # one large file: nothing to spread


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
    # the source's listing, the small files and the first of the two streams share; the second has its own
    assert len(lines) == 4 and len(shared) == 3 and shared[0].endswith("python3 -"), lines
    paths = set(word for line in shared for word in line.split() if word.startswith("ControlPath="))
    shutil.rmtree(short)
    assert paths == {"ControlPath=%s/dgx-spark-ssh-%d/%%C" % (short, os.geteuid())}


# ------------------------------------------------------------------ in a relay: the authenticated tar stream
def relay(module_runner, tmp_path, **extra):
    return sync(module_runner, tmp_path / "src", tmp_path / "dst", source_host="127.0.0.1",
                listen_address="127.0.0.1", relay_id="relay0001", relay_dir=str(tmp_path / "relay"), **extra)


def tree(root):
    """{relative path: link target or content} of everything under root."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            found[os.path.relpath(path, str(root))] = (os.readlink(path) if os.path.islink(path) else
                                                       open(path, "rb").read() if os.path.isfile(path) else "dir")
    return found


def test_in_a_relay_the_weights_arrive_whole_and_wait_for_the_next_node(module_runner, local_ssh, tmp_path):
    snapshot = hf_cache(tmp_path / "src")
    result, failed = relay(module_runner, tmp_path, relay_to_next=True)
    assert not failed, result
    assert result["changed"] and result["transport"] == "stream" and result["export"] == "files"
    assert result["relay"] == {"from": None, "fell_back": None, "to_next": True} and result["files_checked"] == 8
    assert result["checksum"].startswith("hmac-sha256:") and result["files_transferred"] == 5
    source = dict((path, value) for path, value in tree(tmp_path / "src").items() if "other" not in path)
    assert tree(tmp_path / "dst") == source  # links stay links, no staging directory left behind
    dest_snapshot = tmp_path / "dst" / snapshot.relative_to(tmp_path / "src")
    assert (dest_snapshot / "model.safetensors").read_bytes() == (snapshot / "model.safetensors").read_bytes()
    # no next node opened the spool: it went, and a next node that comes is told to read this node's files
    assert sorted(os.listdir(str(tmp_path / "relay"))) == ["relay0001.done", "relay0001.held"]
    again, failed = relay(module_runner, tmp_path, relay_to_next=True)
    assert not failed and again["changed"] is False and again["files_checked"] == 8 and again["bytes_sent"] == 0


def test_a_relay_whose_node_before_failed_copies_from_the_source_and_says_so(module_runner, local_ssh, tmp_path):
    hf_cache(tmp_path / "src")
    (tmp_path / "relay").mkdir(mode=0o700)
    (tmp_path / "relay" / "relay0001.failed").write_text('{"reason": "docker load failed (disk full)"}')
    result, failed = relay(module_runner, tmp_path, relay_from="127.0.0.2")
    assert not failed, result
    assert "its own copy failed: docker load failed (disk full)" in result["relay"]["fell_back"]
    assert result["export"] == "files" and "the relay from 127.0.0.2 failed" in result["warnings"][0]
    assert not _weights.check_files(str(tmp_path / "dst"), _weights.manifest(str(tmp_path / "src"),
                                                                             "models--org--tiny")[1])


def test_a_relay_cut_short_leaves_the_destination_as_it_was_and_tells_the_next_node(module_runner, local_ssh,
                                                                                    tmp_path):
    hf_cache(tmp_path / "src")
    old = tmp_path / "dst" / "models--org--tiny" / "refs"
    old.mkdir(parents=True)
    (old / "main").write_text("an older revision")
    before = tree(tmp_path / "dst")
    # the source's tar dies after 100 kB of the archive (a disk error, a killed process)
    real_tar = shutil.which("tar")
    (tmp_path / "bin" / "tar").write_text("#!/bin/sh\nif [ \"$1\" = -c ]; then %s \"$@\" | head -c 100000; exit 2; fi\n"
                                          "exec %s \"$@\"\n" % (real_tar, real_tar))
    (tmp_path / "bin" / "tar").chmod(0o755)
    result, failed = relay(module_runner, tmp_path, relay_to_next=True)
    assert failed and "Nothing was moved into" in result["msg"] and "tar of" in result["msg"], result
    assert tree(tmp_path / "dst") == before  # nothing half-copied, no staging directory
    assert os.listdir(str(tmp_path / "relay")) == ["relay0001.failed"]  # the next node copies from the source
