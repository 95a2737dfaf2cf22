"""The execution environment built as `make ee` builds it (lab/lab.sh ee: the Debian base, the Galaxy double) runs a
playbook the way AWX runs a job: ansible-navigator starts the EE container, the inventory and the SSH key mounted,
in a directory with no checkout, so the collection can only come from the image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml
from labkit import KEY, LAB, NODES, ROOT, VENV_BIN, lab

IMAGE = "localhost/dgx-spark-ee:latest"
INSTALLED = "/usr/share/ansible/collections/ansible_collections/"


@pytest.fixture(scope="module")
def podman_env():
    """The environment podman runs with on this host (lab/host_prep.sh), with the EE built from this checkout
    (scripts/test.sh builds it during its lab warm-up and says so)."""
    conf = subprocess.run([str(LAB.parent / "host_prep.sh")], capture_output=True, text=True, check=True)
    if os.environ.get("DGX_SPARK_EE_BUILT") != "1":
        lab("ee")
    lab("up")
    # ansible-navigator hands the controller's ANSIBLE_* variables to the EE: a job has none of this checkout's
    # (scripts/test.sh points ANSIBLE_COLLECTIONS_PATH at it, which would hide the image's collections)
    environment = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_"))
    return dict(environment, CONTAINERS_CONF=conf.stdout.strip())


def test_the_image_holds_the_collection_its_dependencies_and_the_controller_tools(podman_env):
    out = subprocess.run(["podman", "run", "--rm", IMAGE, "bash", "-c",
                          "ansible-galaxy collection list --format json && ssh -V && ansible-runner --version"],
                         capture_output=True, text=True, env=podman_env, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    listed = json.JSONDecoder().raw_decode(out.stdout)[0]
    collections = {name: info["version"] for path in listed.values() for name, info in path.items()}
    galaxy_yml = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert collections["dgx_spark.cluster"] == galaxy_yml["version"]
    assert set(galaxy_yml["dependencies"]) <= set(collections)
    assert "OpenSSH" in out.stderr


def test_a_playbook_runs_inside_the_execution_environment_against_the_lab(tmp_path, podman_env):
    state = tmp_path / "state"
    (state / "cp").mkdir(parents=True)
    shutil.copy(KEY, state / "id_ed25519")
    inventory = yaml.safe_load((ROOT / "inventory" / "lab.yml").read_text())
    node_vars = inventory["all"]["children"]["sparks"]["vars"]
    node_vars.update(ansible_ssh_private_key_file=str(state / "id_ed25519"), ansible_control_path_dir=str(state / "cp"))
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    artifact = tmp_path / "preflight-artifact.json"
    run = subprocess.run(
        [str(VENV_BIN / "ansible-navigator"), "run", "dgx_spark.cluster.preflight", "-i", "inventory.yml",
         "--ee", "true", "--ce", "podman", "--eei", IMAGE, "--pp", "never", "-m", "stdout",
         "--pae", "true", "--pas", str(artifact), "--lf", str(tmp_path / "navigator.log"),
         "--co=--network=host", "--eev", "%s:%s" % (state, state)],
        cwd=tmp_path, capture_output=True, text=True, env=podman_env, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    result = json.loads(artifact.read_text())
    assert result["status"] == "successful"
    tasks = [task for play in result["plays"] for task in play["tasks"]]
    assert {task["host"] for task in tasks} == set(NODES)
    assert all(task["task_path"].startswith(INSTALLED + "dgx_spark/cluster/") for task in tasks
               if task["task_path"]), {task["task_path"] for task in tasks}
    stats = [task["res"]["ansible_stats"]["data"] for task in tasks if task["task_action"].endswith("set_stats")]
    assert stats == [{"preflight": {"ready": True, "problems": {node: [] for node in NODES}}}]
