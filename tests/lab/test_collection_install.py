"""collections/requirements.yml installs into an empty collections path as AWX's project sync installs it, from a
fresh copy of the project, with the collection's dependencies from a Galaxy server (lab/galaxy_api_double.py serving
the collections the `ansible` package installed); every playbook then resolves against that path alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GALAXY = ROOT / "lab" / "galaxy_api_double.py"


@pytest.fixture
def galaxy(tmp_path):
    log = tmp_path / "galaxy.jsonl"
    server = subprocess.Popen([sys.executable, str(GALAXY), "--log", str(log)], stdout=subprocess.PIPE, text=True)
    yield "http://127.0.0.1:%s/" % server.stdout.readline().strip(), log
    server.kill()
    server.wait()


def fresh_project(target):
    """The project's files as a checkout has them (tracked and new, nothing ignored)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
            (target / name).chmod(source.stat().st_mode)
    return target


def test_requirements_install_the_collection_and_its_dependencies_into_an_empty_path(tmp_path, galaxy):
    server, log = galaxy
    project = fresh_project(tmp_path / "project")
    collections = tmp_path / "collections"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               ANSIBLE_GALAXY_SERVER=server, ANSIBLE_GALAXY_CACHE_DIR=str(tmp_path / "galaxy-cache"),
               ANSIBLE_CONFIG=str(tmp_path / "none.cfg"), ANSIBLE_NOCOLOR="1")
    run = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "-r", "collections/requirements.yml"],
                         cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr

    galaxy_yml = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    wanted = {"dgx_spark.cluster": galaxy_yml["version"]}
    downloaded = {json.loads(line)["path"] for line in log.read_text().splitlines()}
    for name in galaxy_yml["dependencies"]:
        namespace, short = name.split(".")
        assert any(p.startswith("/download/%s-%s-" % (namespace, short)) for p in downloaded), name
        wanted[name] = None
    found = {}
    for manifest in collections.glob("ansible_collections/*/*/MANIFEST.json"):
        info = json.loads(manifest.read_text())["collection_info"]
        found["%s.%s" % (info["namespace"], info["name"])] = info["version"]
    assert set(found) == set(wanted)
    assert found["dgx_spark.cluster"] == galaxy_yml["version"]
    assert not (collections / "ansible_collections/dgx_spark/cluster/lab/cache").exists()  # build_ignore holds

    # Every module, role and module_defaults group the playbooks name resolves from that path alone.
    playbooks = sorted(str(p.relative_to(project)) for p in (project / "playbooks").glob("*.yml"))
    check = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory/sparks.yml"] + playbooks,
                           cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
