# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for Kubernetes on the Sparks: kubectl and kubeadm output, the cluster's verdict, the rules of its plan."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _lazy

_k8s = _lazy.Module("_k8s")


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
                "k8s_cluster_checks": _k8s.later("cluster_checks"),
                "k8s_gpu_operator_problem": _k8s.later("gpu_operator_problem"),
                "k8s_network_problems": _k8s.later("network_problems"),
                "containerd_config_problems": _k8s.later("containerd_config_problems"),
                "k8s_artifacts_plan": _k8s.later("artifacts_plan"),
                "k8s_settings_problems": _k8s.later("settings_problems"),
                "k8s_has_pod": _k8s.later("has_pod"), "k8s_pod_running": _k8s.later("pod_running"),
                "k8s_unready_pods": _k8s.later("unready_pods"), "k8s_not_ready_nodes": _k8s.later("not_ready_nodes"),
                "k8s_smoke_pending": _k8s.later("smoke_pending"), "k8s_smoke_result": _k8s.later("smoke_result")}
