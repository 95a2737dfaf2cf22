"""The job templates and surveys for AWX, from one source: every catalog key offered, every survey variable read by
the playbook it launches, every survey accepted by AWX's rules (the AWX API double applies the recorded ones), the
site workflow made of existing templates."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import yaml

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _surveys

from ansible_collections.dgx_spark.cluster.tests.unit.recorded import ROOT, fixture_body

SERVING = sorted(yaml.safe_load(Path(ROOT, "roles/model_serving/files/catalog.yml").read_text()))
TRAINING = sorted(yaml.safe_load(Path(ROOT, "roles/train_launch/files/jobs.yml").read_text()))
SPEC = importlib.util.spec_from_file_location("awx_api_double", Path(ROOT, "lab", "awx_api_double.py"))
double = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(double)
RULES = json.loads(fixture_body("awx/api-v2-fields-awx-e21dd0a093.txt"))


def templates():
    return _surveys.templates("DGX Spark", SERVING + ["extra"], TRAINING)


def test_every_template_runs_a_playbook_of_the_collection():
    assert all(Path(ROOT, template["playbook"]).is_file() for template in templates())
    assert len(set(template["name"] for template in templates())) == len(templates())


def test_the_launch_and_train_surveys_offer_every_catalog_key():
    found = dict((template["playbook"], template) for template in templates())
    [model] = found["playbooks/launch_model.yml"]["questions"]
    assert model["choices"] == sorted(SERVING + ["extra"]) and model["required"] is True
    job = found["playbooks/train.yml"]["questions"][0]
    assert (job["variable"], job["choices"]) == ("job", TRAINING)


def test_every_survey_variable_is_read_by_the_playbook_or_its_role():
    """A survey's answer arrives as an extra variable: the role behind the playbook must read that name."""
    files = list(Path(ROOT, "roles").glob("*/defaults/main.yml")) + list(Path(ROOT, "playbooks").glob("*.yml"))
    sources = "\n".join(path.read_text() for path in files)
    for template in templates():
        for question in template["questions"]:
            assert re.search(r"\{\{ *%s *\|" % question["variable"], sources), (template["name"], question["variable"])


def test_every_survey_passes_awx_rules():
    store = double.Store(RULES["fields"], RULES["survey"], "", "")
    specs = [_surveys.awx_survey_spec(template) for template in templates()]
    specs.append(_surveys.awx_site_survey("DGX Spark", SERVING))
    for spec in specs:
        if spec:
            assert store.survey_problem(spec) is None, spec
    booleans = [question for template in templates() for question in template["questions"]
                if question["kind"] == "boolean"]
    assert booleans and all(question["default"] in question["choices"] for question in booleans)


def test_the_double_refuses_what_awx_refuses():
    store = double.Store(RULES["fields"], RULES["survey"], "", "")
    question = {"type": "multiplechoice", "question_name": "q", "variable": "v", "required": True,
                "choices": ["a", "b"], "default": "c"}
    assert store.survey_problem({"name": "s", "description": "", "spec": [question]}) == \
        "Default choice must be answered from the choices listed."
    assert store.survey_problem({"name": "s", "description": "", "spec": []}) == "'spec' doesn't contain any items."
    assert store.survey_problem({"name": "s", "description": "", "spec": [dict(question, type="bool")]}) == (
        "'bool' in survey question 0 is not one of 'text, textarea, password, multiplechoice, multiselect, integer, "
        "float' allowed question types.")


def test_the_site_workflow_chains_existing_templates_in_site_order():
    names = set(template["name"] for template in templates())
    nodes = _surveys.awx_workflow_nodes("DGX Spark")
    assert [node["unified_job_template"]["name"] for node in nodes] == [
        "DGX Spark - " + name for name in ("preflight", "fabric", "RoCE gate", "NCCL gate", "Kubernetes up",
                                           "launch model")]
    assert all(node["unified_job_template"]["name"] in names for node in nodes)
    assert [node.get("related", {}).get("success_nodes") for node in nodes[:-1]] == [
        [{"identifier": node["identifier"]}] for node in nodes[1:]]


def test_semaphore_survey_vars_offer_the_same_choices():
    found = dict((template["playbook"], template) for template in templates())
    [model] = _surveys.semaphore_survey_vars(found["playbooks/launch_model.yml"])
    assert (model["name"], model["type"], model["required"]) == ("model", "enum", True)
    assert [value["value"] for value in model["values"]] == sorted(SERVING + ["extra"])
    status = _surveys.semaphore_survey_vars(found["playbooks/train_status.yml"])
    assert status == [{"name": "job", "title": "Run id, or a job key for its latest run",
                       "description": "Run id, or a job key for its latest run", "required": True, "type": ""}]
