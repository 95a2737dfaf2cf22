# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for Kubernetes on the Sparks: kubectl and kubeadm output, the cluster's verdict, the rules of its plan."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _k8s


def _text(name, text):
    if isinstance(text, dict) and "stdout" in text:  # a registered command result
        text = text.get("stdout", "")
    if not isinstance(text, str):
        raise AnsibleFilterError("%s expects the tool's output as text (or a registered result), got %s"
                                 % (name, type(text).__name__))
    return text


def kubectl_nodes(text):
    return _k8s.kubectl_nodes(_text("kubectl_nodes", text))


def kubeadm_join_command(text):
    return _k8s.kubeadm_join_command(_text("kubeadm_join_command", text))


def kubeadm_join_failure(text):
    return _k8s.kubeadm_join_failure(_text("kubeadm_join_failure", text))


def kubectl_drain_changed(output):
    """A drain's output -> whether it cordoned the node or evicted a pod."""
    return _k8s.drain_changed(_text("kubectl_drain_changed", output))


def kubectl_drain_blockers(output, pdbs_json="", pods_json=""):
    """A drain's output (stdout and stderr joined) -> the lines that name each pod it could not evict and why."""
    return _k8s.drain_summary(_k8s.drain_blockers(_text("kubectl_drain_blockers", output), pdbs_json, pods_json))


class FilterModule(object):
    """dgx_spark.cluster Kubernetes filters."""

    def filters(self):
        return {"kubectl_nodes": kubectl_nodes, "kubeadm_join_command": kubeadm_join_command,
                "kubeadm_join_failure": kubeadm_join_failure, "kubectl_drain_blockers": kubectl_drain_blockers,
                "kubectl_drain_changed": kubectl_drain_changed,
                "k8s_cluster_checks": _k8s.cluster_checks,
                "k8s_gpu_operator_problem": _k8s.gpu_operator_problem,
                "k8s_network_problems": _k8s.network_problems,
                "containerd_config_problems": _k8s.containerd_config_problems,
                "k8s_artifacts_plan": _k8s.artifacts_plan, "k8s_settings_problems": _k8s.settings_problems,
                "k8s_has_pod": _k8s.has_pod, "k8s_pod_running": _k8s.pod_running,
                "k8s_unready_pods": _k8s.unready_pods, "k8s_not_ready_nodes": _k8s.not_ready_nodes, "k8s_smoke_pending": _k8s.smoke_pending,
                "k8s_smoke_result": _k8s.smoke_result}
