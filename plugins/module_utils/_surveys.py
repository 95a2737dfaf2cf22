# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The job templates an automation platform (AWX / Automation Controller, Semaphore) gets for this collection, from
one source: each playbook, what it asks for when launched, and the "site" workflow that chains them.

A question's variable is the extra variable its playbook reads (`-e model=...`); its choices come from the catalogs
(every key of the serving or training catalog) or are fixed (true/false). The AWX survey specification follows
AWX's rules for a survey (awx/api/views: name, description, spec; each question's type, question_name, variable,
required; a multiplechoice's choices and a default among them). Semaphore's survey variables follow its template
API (db/Template.go SurveyVar: name, title, description, required, type "" / "int" / "enum" with values).
"""

from __future__ import annotations

BOOLEAN = ["false", "true"]

# name (after the prefix), playbook, description, questions: (variable, question, kind, required, default)
# kind: "models" (serving catalog keys), "jobs" (training catalog keys), "boolean", "text"
TEMPLATES = (
    ("preflight", "playbooks/preflight.yml", "SSH, sudo, tools, disk, GPU facts and fabric carrier on every Spark", ()),
    ("fabric", "playbooks/fabric.yml", "Both twins addressed, MTU 9000, SSH trust over the fabric, jumbo ping", ()),
    ("RoCE gate", "playbooks/roce_check.yml", "ib_write_bw per twin and both, gated", ()),
    ("NCCL gate", "playbooks/nccl_test.yml", "nccl-tests across the Sparks, gated at 21.875 GB/s", ()),
    ("Kubernetes up", "playbooks/k8s_up.yml", "Kubernetes with kubeadm, Calico, MetalLB, the GPU Operator", ()),
    ("Kubernetes check", "playbooks/k8s_check.yml", "The cluster's health and a GPU smoke pod per node", ()),
    ("Kubernetes repair", "playbooks/k8s_repair.yml", "After a reboot or a power cut: only what needs it", ()),
    ("launch model", "playbooks/launch_model.yml", "Serve a catalog model (make before break)",
     (("model", "Model (serving catalog key)", "models", True, None),)),
    ("model status", "playbooks/model_status.yml", "Every rank and a real completion", ()),
    ("stop model", "playbooks/stop_model.yml", "Stop serving on every node", ()),
    ("sleep", "playbooks/sleep.yml", "Wake-on-LAN armed, serving stopped, workers drained, suspend", ()),
    ("wake", "playbooks/wake.yml", "Magic packets, SSH, kubelet Ready, uncordon",
     (("wake_relaunch", "Serve again the model that served before sleep", "boolean", False, "false"),)),
    ("train", "playbooks/train.yml", "A distributed torchrun job: NCCL gate, ranks, start window, watcher",
     (("job", "Training job (training catalog key)", "jobs", True, None),
      ("train_skip_gate", "Start without the NCCL gate", "boolean", False, "false"),
      ("train_follow", "Follow the run until it ends", "boolean", False, "false"))),
    ("train status", "playbooks/train_status.yml", "A training run's ranks, steps, losses and stragglers",
     (("job", "Run id, or a job key for its latest run", "text", True, None),)),
    ("train stop", "playbooks/train_stop.yml", "Every rank of a training run stopped",
     (("job", "Run id, or a job key for its latest run", "text", True, None),)),
)
# The "site" workflow: each template after the previous one succeeded (site.yml's phases as separate jobs).
SITE = ("preflight", "fabric", "RoCE gate", "NCCL gate", "Kubernetes up", "launch model")


def _choices(kind, models, jobs):
    return {"models": sorted(models), "jobs": sorted(jobs), "boolean": BOOLEAN}.get(kind)


def templates(prefix, models, jobs):
    """Every job template: {name, playbook, description, questions: [{variable, question, kind, required, default,
    choices (None for free text)}]}."""
    out = []
    for name, playbook, description, questions in TEMPLATES:
        out.append({"name": "%s - %s" % (prefix, name), "playbook": playbook, "description": description,
                    "questions": [{"variable": variable, "question": question, "kind": kind, "required": required,
                                   "default": default, "choices": _choices(kind, models, jobs)}
                                  for variable, question, kind, required, default in questions]})
    return out


def awx_survey_spec(template):
    """AWX's survey specification of a template ({} when it asks nothing)."""
    if not template["questions"]:
        return {}
    spec = []
    for question in template["questions"]:
        item = {"question_name": question["question"], "question_description": question["question"],
                "variable": question["variable"], "required": question["required"],
                "type": "multiplechoice" if question["choices"] is not None else "text"}
        if question["choices"] is not None:
            item["choices"] = question["choices"]
        if question["default"] is not None:
            item["default"] = question["default"]
        spec.append(item)
    return {"name": template["name"], "description": template["description"], "spec": spec}


def awx_workflow_nodes(prefix):
    """The site workflow's nodes for awx.awx.workflow_job_template: each a job template, the next on success."""
    names = ["%s - %s" % (prefix, name) for name in SITE]
    nodes = []
    for index, name in enumerate(names):
        node = {"identifier": SITE[index], "unified_job_template": {"name": name, "type": "job_template"}}
        if index + 1 < len(names):
            node["related"] = {"success_nodes": [{"identifier": SITE[index + 1]}]}
        nodes.append(node)
    return nodes


def awx_site_survey(prefix, models):
    """The site workflow's survey: the model its last node launches."""
    launch = next(template for template in templates(prefix, models, [])
                  if template["playbook"] == "playbooks/launch_model.yml")
    return dict(awx_survey_spec(launch), name="%s - site" % prefix,
                description="Preflight, fabric, the RoCE and NCCL gates, Kubernetes, then the model")


def semaphore_survey_vars(template):
    """Semaphore's survey variables of a template (its template API's survey_vars)."""
    out = []
    for question in template["questions"]:
        item = {"name": question["variable"], "title": question["question"], "description": question["question"],
                "required": question["required"], "type": "enum" if question["choices"] is not None else ""}
        if question["choices"] is not None:
            item["values"] = [{"name": choice, "value": choice} for choice in question["choices"]]
        out.append(item)
    return out
