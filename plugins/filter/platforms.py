# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for configuring automation platforms (AWX / Automation Controller) with this collection's job templates."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _lazy

_surveys = _lazy.Module("_surveys")


def awx_job_templates(prefix, models, jobs):
    out = []
    for template in _surveys.templates(prefix, list(models), list(jobs)):
        spec = _surveys.awx_survey_spec(template)
        out.append({"name": template["name"], "playbook": template["playbook"], "description": template["description"],
                    "survey_enabled": bool(spec), "survey_spec": spec})
    return out


def semaphore_templates(prefix, models, jobs):
    return [{"name": template["name"], "playbook": template["playbook"], "description": template["description"],
             "survey_vars": _surveys.semaphore_survey_vars(template)}
            for template in _surveys.templates(prefix, list(models), list(jobs))]


class FilterModule(object):
    """dgx_spark.cluster automation platform filters."""

    def filters(self):
        return {"awx_job_templates": awx_job_templates,
                "awx_workflow_nodes": _surveys.later("awx_workflow_nodes"),
                "awx_site_survey": _surveys.later("awx_site_survey"), "semaphore_templates": semaphore_templates}
