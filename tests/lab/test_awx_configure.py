"""awx_configure.yml (the real awx.awx modules) against the AWX API double on this host (lab/awx_api_double.py):
what it creates, that a second run changes nothing, that --check writes nothing, where the secrets go, and that bad
settings are refused before the controller is contacted. Request shapes only: no real AWX runs here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ROOT / "tests" / "fixtures" / "awx" / "api-v2-fields-awx-e21dd0a093.txt"
sys.path.insert(0, str(ROOT / "lab"))
from labkit import VENV_BIN, ansible_env  # noqa: E402

HF_TOKEN = "hf_awxDoubleToken0123456789"
SERVING = sorted(yaml.safe_load((ROOT / "roles/model_serving/files/catalog.yml").read_text()))
TRAINING = sorted(yaml.safe_load((ROOT / "roles/train_launch/files/jobs.yml").read_text()))


class Controller:
    def __init__(self, tmp_path):
        self.log, self.state = tmp_path / "requests.jsonl", tmp_path / "state.json"
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "lab" / "awx_api_double.py"), "--fields", str(FIELDS), "--project-dir",
             str(ROOT), "--log", str(self.log), "--state", str(self.state)], stdout=subprocess.PIPE, text=True)
        self.url = "http://127.0.0.1:%s" % self.process.stdout.readline().strip()
        self.key = tmp_path / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        self.hf_file = tmp_path / "hf_token"
        self.hf_file.write_text(HF_TOKEN + "\n")

    def configure(self, *args, host=None):
        env = ansible_env(CONTROLLER_HOST=host or self.url, CONTROLLER_USERNAME="admin", CONTROLLER_PASSWORD="password")
        argv = [str(VENV_BIN / "ansible-playbook"), str(ROOT / "playbooks" / "awx_configure.yml"),
                "-e", "awx_configure_scm_url=https://git.example/dgx_spark.git",
                "-e", "awx_configure_ssh_key_file=%s" % self.key, "-e", "awx_configure_hf_token_file=%s" % self.hf_file]
        return subprocess.run(argv + list(args), cwd=str(ROOT), capture_output=True, text=True, env=env, timeout=300,
                              check=False)

    def objects(self, collection):
        return json.loads(self.state.read_text())["objects"][collection]

    def surveys(self):
        return json.loads(self.state.read_text())["surveys"]

    def requests(self):
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def controller(tmp_path):
    double = Controller(tmp_path)
    yield double
    double.process.terminate()
    double.process.wait(10)


def by_name(items):
    return dict((item["name"], item) for item in items)


def test_everything_from_the_catalogs_secrets_in_credentials_only_then_nothing_changes_and_check_writes_nothing(controller):
    settings = json.dumps({"awx_configure_models": ["my-inventory-model"],
                           "awx_configure_execution_environment": "registry.example/dgx-spark-ee:0.1.0"})
    out = controller.configure("-e", settings)
    assert out.returncode == 0, out.stdout[-4000:]
    project = by_name(controller.objects("projects"))["DGX Spark"]
    assert (project["scm_type"], project["scm_url"], project["scm_branch"]) == (
        "git", "https://git.example/dgx_spark.git", "main")
    [source] = controller.objects("inventory_sources")
    assert (source["source"], source["source_path"], source["source_project"]) == (
        "scm", "inventory/sparks.yml", project["id"])
    templates = by_name(controller.objects("job_templates"))
    assert len(templates) == 15 and all(Path(ROOT, item["playbook"]).is_file() for item in templates.values())
    [environment] = controller.objects("execution_environments")
    assert environment["image"] == "registry.example/dgx-spark-ee:0.1.0"
    assert all(item["execution_environment"] == environment["id"] for item in templates.values())
    launch, train = templates["DGX Spark - launch model"], templates["DGX Spark - train"]
    [model] = controller.surveys()["job_templates/%d" % launch["id"]]["spec"]
    assert (model["variable"], model["type"], model["required"]) == ("model", "multiplechoice", True)
    assert model["choices"] == sorted(SERVING + ["my-inventory-model"])
    train_spec = dict((item["variable"], item) for item in controller.surveys()["job_templates/%d" % train["id"]]["spec"])
    assert train_spec["job"]["choices"] == TRAINING and train_spec["train_skip_gate"]["choices"] == ["false", "true"]
    credentials = by_name(controller.objects("credentials"))
    assert credentials["DGX Spark - SSH"]["inputs"] == {"username": "nvidia", "ssh_key_data": "$encrypted$"}
    links = json.loads(controller.state.read_text())["links"]
    assert sorted(links["job_templates/%d/credentials" % launch["id"]]) == sorted(
        credentials[name]["id"] for name in ("DGX Spark - SSH", "DGX Spark - Hugging Face token"))
    [site] = controller.objects("workflow_job_templates")
    nodes = dict((node["identifier"], node) for node in controller.objects("workflow_job_template_nodes"))
    order = ["preflight", "fabric", "RoCE gate", "NCCL gate", "Kubernetes up", "launch model"]
    for before, after in zip(order, order[1:]):
        assert nodes[before]["success_nodes"] == [nodes[after]["id"]]
    assert nodes["launch model"]["unified_job_template"] == launch["id"]
    assert controller.surveys()["workflow_job_templates/%d" % site["id"]]["spec"][0]["variable"] == "model"
    # the secrets: only in the body that creates their credential, injected as the job's environment
    assert HF_TOKEN not in out.stdout + out.stderr
    carrying = [request for request in controller.requests() if HF_TOKEN in json.dumps(request)]
    assert [(request["method"], request["path"]) for request in carrying] == [("POST", "/api/v2/credentials/")]
    assert all(not item.get("extra_vars") or HF_TOKEN not in item["extra_vars"] for item in templates.values())
    hf_type = by_name(controller.objects("credential_types"))["DGX Spark - Hugging Face token"]
    assert hf_type["injectors"] == {"env": {"HF_TOKEN": "{{ hf_token }}"}}
    assert hf_type["inputs"]["fields"][0]["secret"] is True
    writes = len(controller.requests())
    again = controller.configure("-e", settings)
    assert again.returncode == 0, again.stdout[-3000:]
    assert re.search(r"localhost +: ok=\d+ +changed=0 ", again.stdout), again.stdout[-2000:]
    assert len(controller.requests()) == writes
    # --check on the configured controller: the launch survey would offer a new model; nothing is written
    check = controller.configure("--check", "-e", json.dumps({"awx_configure_models": ["new-model"],
                                                              "awx_configure_execution_environment": "registry.example/dgx-spark-ee:0.1.0"}))
    assert check.returncode == 0, check.stdout[-3000:]
    assert "changed: [localhost] => (item=DGX Spark - launch model)" in check.stdout
    assert len(controller.requests()) == writes


def test_check_mode_on_a_new_controller_writes_nothing_and_names_what_it_would_create(controller):
    out = controller.configure("--check")
    assert out.returncode == 0, out.stdout[-4000:]
    assert controller.requests() == []
    assert "would create after the project and the inventory:" in out.stdout and "DGX Spark - train stop" in out.stdout


@pytest.mark.parametrize("setting, message", [
    ("awx_configure_scm_url=file:///etc", "awx_configure_scm_url 'file:///etc' is not allowed"),
    ("awx_configure_prefix=x;y", "awx_configure_prefix 'x;y' is not allowed: must be 1 to 41 letters"),
    ("awx_configure_inventory_file=../x.yml", "awx_configure_inventory_file '../x.yml' is not allowed: must be a relative"),
])
def test_bad_settings_are_refused_before_the_controller_is_contacted(controller, setting, message):
    out = controller.configure("-e", setting, host="http://192.0.2.1:9")
    assert out.returncode != 0 and message in out.stdout, out.stdout[-3000:]
    assert "network error" not in out.stdout and controller.requests() == []


def test_the_double_refuses_what_awx_documents_no_field_for(controller):
    import urllib.error
    import urllib.request
    token_request = urllib.request.Request(controller.url + "/api/v2/tokens/", data=b"{}", method="POST",
                                           headers={"Authorization": "Basic YWRtaW46cGFzc3dvcmQ=",
                                                    "Content-Type": "application/json"})
    token = json.loads(urllib.request.urlopen(token_request).read())["token"]
    request = urllib.request.Request(controller.url + "/api/v2/projects/", method="POST",
                                     data=json.dumps({"name": "p", "organization": 1, "scm_url": "x",
                                                      "survey_spec": {}}).encode(),
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request)
    assert error.value.code == 400 and "survey_spec: not a field of AWX's projects" in error.value.read().decode()
