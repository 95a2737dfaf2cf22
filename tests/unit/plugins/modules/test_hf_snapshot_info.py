"""hf_snapshot_info against the lab's Hub double: a cache entry laid out as the Hub's client lays it out is whole;
a missing file, a short blob, a blob of other content, an interrupted download each make it not whole."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.dgx_spark.cluster.plugins.modules import hf_snapshot_info

ROOT = Path(__file__).resolve().parents[4]
HUB = ROOT / "lab" / "hf_hub_double.py"
sys.path.insert(0, str(ROOT / "lab"))
import hf_hub_double  # noqa: E402

FILES = {"config.json": b'{"architectures": ["LlamaForCausalLM"]}', "model.safetensors": os.urandom(4096)}


@pytest.fixture
def hub(tmp_path):
    repo = tmp_path / "repos" / "lab-org" / "tiny"
    repo.mkdir(parents=True)
    for name, data in FILES.items():
        (repo / name).write_bytes(data)
    (tmp_path / "token").write_text("hf_secret")
    server = subprocess.Popen([sys.executable, str(HUB), "--root", str(tmp_path / "repos"), "--token-file",
                               str(tmp_path / "token")], stdout=subprocess.PIPE, text=True)
    port = server.stdout.readline().strip()
    yield "http://127.0.0.1:%s" % port, repo
    server.kill()
    server.wait()


def lay_out(cache, repo_dir):
    """The cache entry the Hub's client writes: blobs named by their etag (SHA-256 for LFS files), the snapshot's
    files links to them, refs/main the commit."""
    files = hf_hub_double.listing(str(repo_dir))
    commit = hf_hub_double.commit_of(files)
    entry = cache / "models--lab-org--tiny"
    (entry / "blobs").mkdir(parents=True)
    (entry / "snapshots" / commit).mkdir(parents=True)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit)
    for item in files:
        blob = item["lfs"]["oid"] if "lfs" in item else item["oid"]
        (entry / "blobs" / blob).write_bytes((repo_dir / item["path"]).read_bytes())
        (entry / "snapshots" / commit / item["path"]).symlink_to("../../blobs/" + blob)
    return entry, commit


def check(module_runner, endpoint, cache, **extra):
    return module_runner(hf_snapshot_info.main, dict({"repo": "lab-org/tiny", "cache": str(cache), "endpoint": endpoint,
                                                      "token_file": str(cache.parent / "token")}, **extra))


def test_a_whole_entry_is_complete(module_runner, hub, tmp_path):
    endpoint, repo = hub
    entry, commit = lay_out(tmp_path / "cache", repo)
    result, failed = check(module_runner, endpoint, tmp_path / "cache")
    assert not failed and result["complete"] and result["commit"] == commit and result["hub_reachable"]
    assert result["files"] == 2 and result["bytes"] == sum(len(data) for data in FILES.values())
    sha, failed = check(module_runner, endpoint, tmp_path / "cache", verify="sha256")
    assert sha["complete"]


def test_what_a_broken_download_leaves_is_named(module_runner, hub, tmp_path):
    endpoint, repo = hub
    entry, commit = lay_out(tmp_path / "cache", repo)
    (entry / "snapshots" / commit / "config.json").unlink()
    lfs = hashlib.sha256(FILES["model.safetensors"]).hexdigest()
    with open(entry / "blobs" / lfs, "r+b") as blob:
        blob.truncate(1000)
    result, failed = check(module_runner, endpoint, tmp_path / "cache")
    assert not failed and not result["complete"]
    assert result["missing"] == ["config.json"]
    assert result["mismatched"] == ["model.safetensors: 1000 bytes, the Hub lists 4096"]


def test_a_blob_of_other_content_is_caught_by_its_name_and_by_its_hash(module_runner, hub, tmp_path):
    endpoint, repo = hub
    entry, commit = lay_out(tmp_path / "cache", repo)
    lfs = hashlib.sha256(FILES["model.safetensors"]).hexdigest()
    (entry / "blobs" / lfs).write_bytes(os.urandom(4096))  # same name and size, other bytes
    result, _failed = check(module_runner, endpoint, tmp_path / "cache")
    assert result["complete"]  # the name and size are what the Hub's client checks as it goes
    hashed, _failed = check(module_runner, endpoint, tmp_path / "cache", verify="sha256")
    assert not hashed["complete"] and "its SHA-256 is not the Hub's" in hashed["mismatched"][0]


def test_without_the_hub_the_cache_is_judged_by_itself(module_runner, hub, tmp_path):
    _endpoint, repo = hub
    entry, commit = lay_out(tmp_path / "cache", repo)
    unreachable = "http://127.0.0.1:9"
    result, failed = check(module_runner, unreachable, tmp_path / "cache")
    assert not failed and result["complete"] and result["hub_reachable"] is False and result["commit"] == commit
    (entry / "blobs" / "abc.incomplete").write_bytes(b"half")
    result, _failed = check(module_runner, unreachable, tmp_path / "cache")
    assert not result["complete"] and "an interrupted download" in result["mismatched"][0]


def test_an_unknown_repository_and_a_wrong_token_are_named(module_runner, hub, tmp_path):
    endpoint, _repo = hub
    (tmp_path / "cache").mkdir()
    result, failed = check(module_runner, endpoint, tmp_path / "cache", repo="lab-org/absent")
    assert failed and "answered 404 for lab-org/absent@main: no such repository or revision" in result["msg"]
    (tmp_path / "token").write_text("hf_wrong")
    result, failed = check(module_runner, endpoint, tmp_path / "cache")
    assert failed and "no access: a gated or private repository needs a token" in result["msg"]
    assert "hf_wrong" not in str(result)
