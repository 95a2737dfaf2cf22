"""The gate reports the converge left on the controller, judged against the nodes they describe."""

import json
import os
from pathlib import Path

REPORTS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def _report(name):
    return json.loads((REPORTS / name).read_text())


def test_roce_report_passes_every_check_on_both_nodes_and_twins(host):
    report = _report("roce_check.json")
    assert report["passed"] is True and report["failed_checks"] == 0
    name = host.backend.get_hostname()
    mine = [c for c in report["checks"] if c["node"] == name]
    assert {(c["twin"], c["check"]) for c in mine} == {
        (twin, check) for twin in (0, 1)
        for check in ("rdma_map", "port_state", "active_mtu", "roce_v2_gid", "link_speed_mbps", "link_mtu")}
    mtu = [c["value"] for c in mine if c["check"] == "link_mtu"]
    assert mtu == [int(host.file("/sys/class/net/%s/mtu" % n).content_string) for n in ("enp1s0f1np1", "enP2p1s0f1np1")]


def test_roce_bandwidth_runs_per_twin_and_both(host):
    report = _report("roce_check.json")
    checks = {(c["check"], c["twin"]): c for c in report["checks"] if c["node"] == " <-> ".join(report["nodes"])}
    assert set(checks) == {("ib_write_bw_gbps", 0), ("ib_write_bw_gbps", 1), ("ib_write_bw_both_gbps", "both")}
    assert checks[("ib_write_bw_both_gbps", "both")]["value"] >= 170


def test_nccl_report_gates_the_bus_bandwidth(host):
    report = _report("nccl_test.json")
    assert report["passed"] is True and report["timed_out"] is False
    assert report["avg_busbw_gbps"] >= 21.875 and report["warnings"] == []
    assert max(row["size_bytes"] for row in report["rows"]) <= 4 << 30  # bounded buffers by default


def test_no_rank_or_perftest_left_running(host):
    for program in ("all_reduce_perf", "ib_write_bw", "mpirun"):
        assert host.run("pgrep -f %s" % program).rc == 1, program
