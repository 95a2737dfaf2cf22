"""semaphore_configure.yml (the semaphore_object module) against the Semaphore API double on this host
(lab/semaphore_api_double.py): what it creates, that a second run changes nothing, that --check writes nothing,
where the secrets go, and that bad settings are refused before Semaphore is contacted. Request shapes only."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ROOT / "tests" / "fixtures" / "semaphore" / "api-fields-semaphore-d4a27137.txt"
sys.path.insert(0, str(ROOT / "lab"))
from labkit import VENV_BIN, ansible_env  # noqa: E402

HF_TOKEN = "hf_semaphoreDoubleToken0123"
TOKEN = "semaphore-double-token"
SERVING = sorted(yaml.safe_load((ROOT / "roles/model_serving/files/catalog.yml").read_text()))


class Semaphore:
    def __init__(self, tmp_path):
        self.log, self.state = tmp_path / "requests.jsonl", tmp_path / "state.json"
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "lab" / "semaphore_api_double.py"), "--fields", str(FIELDS), "--project-dir",
             str(ROOT), "--token", TOKEN, "--log", str(self.log), "--state", str(self.state)],
            stdout=subprocess.PIPE, text=True)
        self.url = "http://127.0.0.1:%s" % self.process.stdout.readline().strip()
        self.key = tmp_path / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        self.hf_file = tmp_path / "hf_token"
        self.hf_file.write_text(HF_TOKEN + "\n")

    def configure(self, *args, url=None, login=None):
        env = ansible_env(SEMAPHORE_URL=url or self.url, **(login or {"SEMAPHORE_TOKEN": TOKEN}))
        argv = [str(VENV_BIN / "ansible-playbook"), str(ROOT / "playbooks" / "semaphore_configure.yml"),
                "-e", "semaphore_configure_git_url=https://git.example/dgx_spark.git",
                "-e", "semaphore_configure_ssh_key_file=%s" % self.key,
                "-e", "semaphore_configure_hf_token_file=%s" % self.hf_file]
        return subprocess.run(argv + list(args), cwd=str(ROOT), capture_output=True, text=True, env=env, timeout=300,
                              check=False)

    def objects(self, kind):
        return json.loads(self.state.read_text())["objects"][kind]

    def requests(self):
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def semaphore(tmp_path):
    double = Semaphore(tmp_path)
    yield double
    double.process.terminate()
    double.process.wait(10)


def test_everything_from_the_catalogs_secrets_in_key_and_environment_only_then_nothing_changes(semaphore):
    check = semaphore.configure("--check")
    assert check.returncode == 0, check.stdout[-3000:]
    assert semaphore.requests() == [] and "would create in the new project:" in check.stdout
    out = semaphore.configure("-e", json.dumps({"semaphore_configure_models": ["my-inventory-model"]}),
                              login={"SEMAPHORE_USER": "admin", "SEMAPHORE_PASSWORD": "password"})
    assert out.returncode == 0, out.stdout[-4000:]
    keys = dict((key["name"], key) for key in semaphore.objects("keys"))
    [repository] = semaphore.objects("repositories")
    [inventory] = semaphore.objects("inventory")
    [environment] = semaphore.objects("environment")
    assert keys["DGX Spark - SSH"]["ssh"]["login"] == "nvidia" and keys["DGX Spark - none"]["type"] == "none"
    assert (repository["git_url"], repository["ssh_key_id"]) == ("https://git.example/dgx_spark.git",
                                                                 keys["DGX Spark - none"]["id"])
    assert (inventory["type"], inventory["inventory"], inventory["repository_id"], inventory["ssh_key_id"]) == (
        "file", "inventory/sparks.yml", repository["id"], keys["DGX Spark - SSH"]["id"])
    templates = dict((template["name"], template) for template in semaphore.objects("templates"))
    assert len(templates) == 15
    launch = templates["DGX Spark - launch model"]
    assert (launch["inventory_id"], launch["repository_id"], launch["environment_id"]) == (
        inventory["id"], repository["id"], environment["id"])
    [model] = launch["survey_vars"]
    assert (model["name"], model["type"]) == ("model", "enum")
    assert [value["value"] for value in model["values"]] == sorted(SERVING + ["my-inventory-model"])
    # the token: only in the environment's creation, as a secret environment variable; never in the output
    assert HF_TOKEN not in out.stdout + out.stderr
    carrying = [request for request in semaphore.requests() if HF_TOKEN in json.dumps(request)]
    assert [(request["method"], request["path"]) for request in carrying] == [("POST", "/api/project/1/environment")]
    [secret] = carrying[0]["body"]["secrets"]
    assert (secret["type"], secret["name"], secret["operation"]) == ("env", "HF_TOKEN", "create")
    writes = len(semaphore.requests())
    again = semaphore.configure("-e", json.dumps({"semaphore_configure_models": ["my-inventory-model"]}))
    assert re.search(r"localhost +: ok=\d+ +changed=0 ", again.stdout), again.stdout[-2000:]
    check = semaphore.configure("--check", "-e", json.dumps({"semaphore_configure_models": ["new-model"]}))
    assert "changed: [localhost] => (item=DGX Spark - launch model)" in check.stdout, check.stdout[-2000:]
    assert len(semaphore.requests()) == writes


def test_bad_settings_are_refused_before_semaphore_is_contacted(semaphore):
    out = semaphore.configure("-e", "semaphore_configure_inventory_file=/etc/passwd", url="http://192.0.2.1:9")
    assert out.returncode != 0
    assert "semaphore_configure_inventory_file '/etc/passwd' is not allowed" in out.stdout, out.stdout[-3000:]
    assert "did not answer" not in out.stdout and semaphore.requests() == []


def test_the_double_refuses_what_semaphore_does_not_read(semaphore):
    import urllib.error
    import urllib.request
    headers = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
    create = urllib.request.Request(semaphore.url + "/api/projects", data=b'{"name": "p"}', headers=headers,
                                    method="POST")
    project = json.loads(urllib.request.urlopen(create).read())
    bad = urllib.request.Request(semaphore.url + "/api/project/%d/templates" % project["id"], method="POST",
                                 headers=headers, data=json.dumps({"project_id": project["id"], "name": "t",
                                                                   "playbook": "nope.yml", "extra_vars": "{}"}).encode())
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(bad)
    text = error.value.read().decode()
    assert "extra_vars: not a field Semaphore reads" in text and "playbook: nope.yml is not a file" in text
