"""The playbooks on the lab: preflight, fabric, and the RoCE and NCCL gates in healthy and failing scenarios."""

from __future__ import annotations

import json
import time

import pytest
from labkit import (NODES, REPORTS, TWINS, async_job_files, fabric, lab, playbook, recap, rejected_before_connecting,
                    runner, ssh)


@pytest.fixture(scope="module", autouse=True)
def lab_with_fabric():
    lab("up")
    out = playbook("fabric.yml")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    yield
    for node in NODES:
        lab("scenario", node, "healthy", check=False)


@pytest.fixture
def scenario():
    def switch(name, nodes=tuple(NODES)):
        for node in nodes:
            lab("scenario", node, name)
    yield switch
    switch("healthy")


def test_preflight_passes_on_a_ready_lab_and_hands_its_findings_to_ansible_runner(tmp_path):
    out = runner(tmp_path, "preflight.yml")
    assert out.rc == 0, out.stdout[-3000:]
    for node in NODES:
        assert "%s: READY" % node in out.stdout
    assert all(c["changed"] == 0 for c in recap(out.stdout).values())
    assert out.stats["preflight"] == {"ready": True, "problems": {node: [] for node in NODES}}


def test_preflight_without_passwordless_sudo_names_host_user_and_fix():
    out = playbook("preflight.yml", "-e", "ansible_user=nosudo")
    assert out.returncode != 0
    assert "spark-2959: user 'nosudo' has no passwordless sudo" in out.stdout
    assert "NOPASSWD" in out.stdout and "Nothing was changed" in out.stdout
    assert all(c["changed"] == 0 for c in recap(out.stdout).values())


def test_fabric_is_idempotent_and_hands_its_layout_to_ansible_runner(tmp_path):
    out = runner(tmp_path, "fabric.yml")
    assert out.rc == 0, out.stdout[-3000:]
    assert {node: c["changed"] for node, c in recap(out.stdout).items()} == {node: 0 for node in NODES}
    fabric = out.stats["fabric"]
    assert fabric["mtu"] == 9000 and sorted(fabric["nodes"]) == sorted(NODES)
    for index, node in enumerate(sorted(NODES)):
        expected = {twin: "%s/24" % addresses[index] for twin, addresses in TWINS.items()}
        assert fabric["nodes"][node] == {"twins": expected, "jumbo_pings_failed": []}, fabric["nodes"][node]


def test_fabric_rejects_twins_on_one_subnet_before_contacting_hosts():
    rejected_before_connecting("fabric.yml", [fabric("fabric_twin_address=10.10.10.9/24")], "fabric layout rejected",
                               "two different subnets")


def roce_report():
    return json.loads((REPORTS / "roce_check.json").read_text())


def test_roce_gate_passes_when_healthy():
    jobs_before = {node: async_job_files(node) for node in NODES}
    out = playbook("roce_check.yml", "-e", "roce_check_latency=true")
    assert out.returncode == 0, out.stdout[-4000:]
    # the servers and clients ran as async jobs: none leaves its status file behind
    assert {node: async_job_files(node) for node in NODES} == jobs_before
    report = roce_report()
    assert report["passed"] is True and report["failed_checks"] == 0
    both = [c for c in report["checks"] if c["check"] == "ib_write_bw_both_gbps"][0]
    assert both["value"] > 170 and both["verdict"] == "pass"
    latency = [c for c in report["checks"] if c["check"] == "ib_write_lat_typical_us"][0]
    assert latency["value"] == 1.47 and latency["verdict"] == "pass"
    per_node = [c for c in report["checks"] if c["node"] in NODES]
    assert {c["check"] for c in per_node} == {"rdma_map", "port_state", "active_mtu", "roce_v2_gid",
                                              "link_speed_mbps", "link_mtu"}
    assert len(per_node) == 2 * 2 * 6


def test_roce_gate_fails_on_a_100g_link_with_the_cause(scenario):
    scenario("degraded_link", ["spark-ba63"])
    out = playbook("roce_check.yml")
    assert out.returncode != 0
    assert "RoCE gate failed" in out.stdout and "link at 100G" in out.stdout
    failed = {(c["node"], c["check"]) for c in roce_report()["checks"] if c["verdict"] == "fail"}
    assert ("spark-ba63", "link_speed_mbps") in failed and ("spark-2959 <-> spark-ba63", "ib_write_bw_gbps") in failed
    assert ("spark-2959", "link_speed_mbps") not in failed


def test_roce_gate_fails_on_mtu_1500_with_the_cause():
    ssh("spark-2959", "sudo ip link set dev enP2p1s0f1np1 mtu 1500")
    try:
        out = playbook("check_roce.yml", "-e", "roce_check_bandwidth=false")  # the deprecated name still runs the gate
    finally:
        ssh("spark-2959", "sudo ip link set dev enP2p1s0f1np1 mtu 9000")
    assert out.returncode != 0
    failed = [c for c in roce_report()["checks"] if c["verdict"] == "fail"]
    assert {(c["node"], c["twin"], c["check"]) for c in failed} == {
        ("spark-2959", 1, "active_mtu"), ("spark-2959", 1, "link_mtu")}
    assert "set 9000 on both nodes" in out.stdout


def nccl_report():
    return json.loads((REPORTS / "nccl_test.json").read_text())


def test_nccl_gate_passes_when_healthy_and_hands_its_verdict_to_ansible_runner(tmp_path):
    run = runner(tmp_path, "nccl_test.yml")
    assert (run.status, run.rc) == ("successful", 0), run.stdout[-3000:]
    report = nccl_report()
    assert report["passed"] is True and report["avg_busbw_gbps"] >= 21.875
    assert [row["size_bytes"] for row in report["rows"]] == [1 << 30, 1 << 31, 1 << 32]
    verdict = run.stats["nccl_test"]  # set_stats: AWX job artifacts too
    assert verdict["passed"] is True and verdict["failed_checks"] == [] and verdict["report"].endswith("nccl_test.json")


def test_nccl_gate_fails_when_slow(scenario):
    scenario("nccl_slow")
    out = playbook("nccl_test.yml")
    assert out.returncode != 0
    assert "NCCL gate failed" in out.stdout and "nccl_avg_busbw_gbps=11." in out.stdout
    assert nccl_report()["passed"] is False


def test_nccl_hang_is_killed_on_both_nodes(scenario):
    scenario("nccl_hang")
    start = time.monotonic()
    out = playbook("nccl_test.yml", "-e", "nccl_test_timeout=15")
    assert time.monotonic() - start < 120
    assert out.returncode != 0
    assert "run killed after 15 s on every node" in out.stdout and "no result table" in out.stdout
    assert nccl_report()["timed_out"] is True
    for node in NODES:
        assert ssh(node, "pgrep -f all_reduce_perf", check=False).returncode == 1, node


def test_roce_refuses_a_pair_outside_the_play_before_contacting_hosts():
    rejected_before_connecting("roce_check.yml", ['{"roce_check_pairs": [["spark-2959", "spark-9999"]]}'],
                               "roce_check_pairs: ['spark-2959', 'spark-9999'] is not two different hosts of the play")


def test_nccl_refuses_16g_buffers_before_contacting_hosts():
    rejected_before_connecting("nccl_test.yml", ["nccl_test_max_bytes=16G"], "16G buffers freeze a Spark")
