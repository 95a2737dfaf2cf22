"""Gate verdicts and their likely causes, from recorded tool outputs (and labelled variants of them)."""

from __future__ import annotations

import json

from ansible_collections.dgx_spark.cluster.plugins.filter.gates import FilterModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _tool_output

from ansible_collections.dgx_spark.cluster.tests.unit.recorded import fixture_body

FILTERS = FilterModule().filters()
SETTINGS = {"gid_index": 3, "expected_speed_mbps": 200000, "expected_mtu": 9000, "min_active_mtu": 4096}
DEVINFO = fixture_body("rdma/ibv_devinfo_spark_4hca_elizabetht.txt")


def devinfo(active_mtu):
    return DEVINFO.replace("active_mtu:\t\t1024 (3)", "active_mtu:\t\t%d (5)" % active_mtu)


SPEED_200G = "rdma/ethtool_grep_speed_200G_playbook_switch.txt"


def node(ibdev_fixture="rdma/ibdev2netdev_spark_eugr_networking.txt", active_mtu=4096, speed_fixture=SPEED_200G,
         mtu=9000, gids=None):
    """One Spark cabled on port 1 (f1 twins), addresses 192.168.100.10 / .14 as in show_gids_gb10_sean.txt."""
    speed = fixture_body(speed_fixture).split("\n\n")[0]
    return {
        "host": "spark-2959",
        "twins": [{"netdev": "enp1s0f1np1", "rdma_device": "rocep1s0f1", "address": "192.168.100.10/24"},
                  {"netdev": "enP2p1s0f1np1", "rdma_device": "roceP2p1s0f1", "address": "192.168.100.14/24"}],
        "ibdev2netdev": fixture_body(ibdev_fixture),
        "ibv_devinfo": {"rocep1s0f1": devinfo(active_mtu), "roceP2p1s0f1": devinfo(active_mtu)},
        "show_gids": gids if gids is not None else fixture_body("rdma/show_gids_gb10_sean.txt").replace(
            "rocep1s0f0", "rocep1s0f1").replace("roceP2p1s0f0", "roceP2p1s0f1"),
        "ethtool": {"enp1s0f1np1": speed, "enP2p1s0f1np1": speed},
        "links": {n: json.dumps([{"ifname": n, "mtu": mtu}]) for n in ("enp1s0f1np1", "enP2p1s0f1np1")},
    }


def failed(checks):
    return {(c["twin"], c["check"]): c["cause"] for c in checks if c["verdict"] == "fail"}


def test_a_healthy_node_passes_every_check():
    checks = FILTERS["roce_node_checks"](node(), SETTINGS)
    assert len(checks) == 12 and failed(checks) == {}


def test_cable_in_the_other_port_is_named():
    checks = FILTERS["roce_node_checks"](node("rdma/ibdev2netdev_port0_up_gb10_sean.txt"), SETTINGS)
    causes = failed(checks)
    assert "the cable is in the other QSFP port" in causes[(0, "rdma_map")]
    assert "enp1s0f0np0" in causes[(0, "rdma_map")]


def test_mtu_1500_fails_active_and_link_mtu():
    causes = failed(FILTERS["roce_node_checks"](node(active_mtu=1024, mtu=1500), SETTINGS))
    assert set(causes) == {(0, "active_mtu"), (1, "active_mtu"), (0, "link_mtu"), (1, "link_mtu")}
    assert "set MTU 9000 on both nodes" in causes[(0, "active_mtu")]


def test_link_at_100g_is_named():
    causes = failed(FILTERS["roce_node_checks"](
        node(speed_fixture="rdma/ethtool_grep_speed_100G_degraded_playbook_switch.txt"), SETTINGS))
    assert set(causes) == {(0, "link_speed_mbps"), (1, "link_speed_mbps")}
    assert causes[(0, "link_speed_mbps")].startswith("link at 100G on enp1s0f1np1")


def test_gid_at_another_index_or_missing():
    shifted = fixture_body("rdma/show_gids_gb10_sean.txt").replace("rocep1s0f0", "rocep1s0f1").replace(
        "roceP2p1s0f0", "roceP2p1s0f1")
    causes = failed(FILTERS["roce_node_checks"](node(), dict(SETTINGS, gid_index=1)))
    assert "is at index 3, not 1" in causes[(0, "roce_v2_gid")]
    no_ipv4 = "\n".join(line for line in shifted.splitlines() if "192.168" not in line)
    causes = failed(FILTERS["roce_node_checks"](node(gids=no_ipv4), SETTINGS))
    assert "no RoCE v2 GID for 192.168.100.10" in causes[(0, "roce_v2_gid")]


def bw_text(gbps):
    text = fixture_body("perftest/ib_write_bw_spark_eugr_q4_rdmacm.txt")
    return text.replace("111.72             111.71", "%.2f             %.2f" % (gbps, gbps))


PAIR = {"client": "spark-2959", "server": "spark-ba63"}


def test_bandwidth_gates_and_causes():
    runs = [dict(PAIR, twins=[0], clients=[bw_text(92.5)]), dict(PAIR, twins=[1], clients=[bw_text(46.2)]),
            dict(PAIR, twins=[0, 1], clients=[bw_text(92.5), bw_text(46.2)])]
    settings = {"min_twin_gbps": 85.0, "min_both_gbps": 170.0}
    checks = FILTERS["roce_bandwidth_checks"](runs, settings, [])
    assert [(c["node"], c["twin"], c["value"], c["verdict"]) for c in checks] == [
        ("spark-2959 <-> spark-ba63", 0, 92.5, "pass"), ("spark-2959 <-> spark-ba63", 1, 46.2, "fail"),
        ("spark-2959 <-> spark-ba63", "both", 138.7, "fail")]
    assert "twins share a subnet" in checks[2]["cause"]
    slow = [{"node": "spark-ba63", "check": "link_speed_mbps", "verdict": "fail", "value": 100000}]
    assert FILTERS["roce_bandwidth_checks"](runs, settings, slow)[1]["cause"] == \
        "link at 100G on spark-ba63 (see link_speed_mbps)"
    # a slow link of a node outside the pair is not this pair's cause
    elsewhere = [dict(slow[0], node="spark-lab3")]
    assert "known ~92 Gb/s" in FILTERS["roce_bandwidth_checks"](runs, settings, elsewhere)[1]["cause"]


def test_the_matrix_names_each_link_with_its_figures_and_causes():
    def bw_runs(client, server, gbps):
        return [{"client": client, "server": server, "twins": twins, "clients": [bw_text(gbps)] * len(twins)}
                for twins in ([0], [1], [0, 1])]
    nodes = ["spark-2959", "spark-ba63", "spark-lab3"]
    slow = [{"node": "spark-lab3", "check": "link_speed_mbps", "verdict": "fail", "value": 100000}]
    runs = bw_runs("spark-ba63", "spark-lab3", 46.28) + bw_runs("spark-2959", "spark-ba63", 92.57) + \
        bw_runs("spark-2959", "spark-lab3", 46.28)
    checks = FILTERS["roce_bandwidth_checks"](runs, {"min_twin_gbps": 85.0, "min_both_gbps": 170.0}, slow)
    matrix = FILTERS["roce_matrix"](slow + checks, nodes)
    assert [(link["nodes"], link["twin0"], link["both"], link["verdict"]) for link in matrix["links"]] == [
        (["spark-2959", "spark-ba63"], 92.57, 185.14, "pass"), (["spark-2959", "spark-lab3"], 46.28, 92.56, "fail"),
        (["spark-ba63", "spark-lab3"], 46.28, 92.56, "fail")]
    assert matrix["table"]["spark-lab3"]["spark-2959"] is matrix["table"]["spark-2959"]["spark-lab3"]
    assert matrix["lines"][1:] == [
        "PASS spark-2959 <-> spark-ba63: 92.57 / 92.57 / 185.14",
        "FAIL spark-2959 <-> spark-lab3: 46.28 / 46.28 / 92.56 - link at 100G on spark-lab3 (see link_speed_mbps)",
        "FAIL spark-ba63 <-> spark-lab3: 46.28 / 46.28 / 92.56 - link at 100G on spark-lab3 (see link_speed_mbps)"]
    assert FILTERS["roce_matrix"](slow, nodes)["lines"] == []


def test_bandwidth_without_a_result_quotes_the_tool():
    runs = [{"client": "a", "server": "b", "twins": [0], "clients": [" Couldn't connect to 10.10.10.2:18515"], "rc": [1]}]
    [check] = FILTERS["roce_bandwidth_checks"](runs, {"min_twin_gbps": 85.0, "min_both_gbps": 170.0}, [])
    assert check["value"] is None and "Couldn't connect to 10.10.10.2:18515" in check["cause"]
    assert check["node"] == "a <-> b"


def test_latency_gate():
    runs = [{"twins": [0], "clients": [fixture_body("perftest/ib_write_lat_spark_eugr.txt")]}]
    [check] = FILTERS["roce_latency_checks"](runs, {"max_latency_us": 3.0})
    assert (check["value"], check["verdict"]) == (1.47, "pass")


def test_nccl_gate_passes_the_recorded_two_spark_run():
    result = _tool_output.nccl_results(fixture_body("nccl/all_gather_perf_16G_dell_gb10_trevorsquillario.txt"))
    report = FILTERS["gate_report"](FILTERS["nccl_checks"](result, {"min_busbw_gbps": 21.875}), {"tool": "nccl"})
    assert report["passed"] is True and report["tool"] == "nccl"


def test_nccl_gate_fails_below_the_pass_mark_via_a_switch():
    # the mprg run through a QSFP switch averages 21.40 GB/s, under the 21.875 pass mark
    result = _tool_output.nccl_results(fixture_body("nccl/all_gather_perf_1G-4G_via_qsfp_switch_spark_mprg.txt"))
    checks = FILTERS["nccl_checks"](result, {"min_busbw_gbps": 21.875})
    assert [c["verdict"] for c in checks] == ["pass", "fail"]
    assert "FAIL between nodes twin both nccl_avg_busbw_gbps=21.4033 (threshold 21.875)" in \
        FILTERS["check_line"](checks[1])


def test_nccl_warn_lines_reach_the_failure_cause():
    result = _tool_output.nccl_results(fixture_body("nccl/nccl_failure_net_ib_status12_bond_gx10.txt"))
    checks = FILTERS["nccl_checks"](result, {"min_busbw_gbps": 21.875})
    assert checks[0]["verdict"] == "fail" and "NCCL WARN" in checks[0]["cause"]
    assert "status=12" in checks[0]["cause"] and "remote process exited" in checks[0]["cause"]


def nccl_text(busbw):
    """The recorded two-Spark all_gather run with every bus bandwidth figure (and the average) set to busbw."""
    text = fixture_body("nccl/all_gather_perf_16G_dell_gb10_trevorsquillario.txt")
    rows = []
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0].isdigit() and len(cells) >= 13:
            cells[7] = cells[11] = "%.2f" % busbw
            line = "  ".join(cells)
        elif line.startswith("# Avg bus bandwidth"):
            line = "# Avg bus bandwidth    : %.4f" % busbw
        rows.append(line)
    return "\n".join(rows)


def test_the_nccl_gate_names_the_slowest_pair_in_a_slow_run_of_all_nodes():
    nodes = ["spark-2959", "spark-ba63", "spark-lab3"]
    runs = [{"hosts": nodes, "rc": 0, "stdout": nccl_text(11.0), "stderr": ""},
            {"hosts": nodes[:2], "rc": 0, "stdout": nccl_text(22.0), "stderr": ""},
            {"hosts": nodes[1:], "rc": 0, "stdout": nccl_text(11.5), "stderr": ""},
            {"hosts": [nodes[0], nodes[2]], "rc": 0, "stdout": nccl_text(11.0), "stderr": ""}]
    gate = FILTERS["nccl_gate"](runs, {"min_busbw_gbps": 21.875})
    assert gate["slowest_link"] == {"nodes": ["spark-2959", "spark-lab3"], "avg_busbw_gbps": 11.0}
    assert [(run["hosts"], run["avg_busbw_gbps"], run["passed"]) for run in gate["runs"]] == [
        (nodes, 11.0, False), (nodes[:2], 22.0, True), (nodes[1:], 11.5, False), ([nodes[0], nodes[2]], 11.0, False)]
    slow = [c for c in gate["checks"] if c["check"] == "nccl_avg_busbw_gbps"]
    assert slow[0]["node"] == "spark-2959 <-> spark-ba63 <-> spark-lab3"
    assert slow[0]["cause"].endswith("slowest link spark-2959 <-> spark-lab3 at 11.0 GB/s")
    # a pair that hung has no figure: it is the slowest
    runs[2] = dict(runs[2], rc=124, stdout="# nccl-tests header only")
    gate = FILTERS["nccl_gate"](runs, {"min_busbw_gbps": 21.875})
    assert gate["slowest_link"] == {"nodes": nodes[1:], "avg_busbw_gbps": None} and gate["runs"][2]["timed_out"]


def test_a_run_of_all_nodes_alone_says_how_to_find_the_slow_link_and_two_nodes_need_no_pairs():
    nodes = ["spark-2959", "spark-ba63", "spark-lab3"]
    gate = FILTERS["nccl_gate"]([{"hosts": nodes, "rc": 0, "stdout": nccl_text(11.0)}], {"min_busbw_gbps": 21.875})
    assert gate["slowest_link"] is None and "nccl_test_per_pair=true" in gate["checks"][1]["cause"]
    gate = FILTERS["nccl_gate"]([{"hosts": nodes[:2], "rc": 0, "stdout": nccl_text(22.0)}], {"min_busbw_gbps": 21.875})
    assert gate["slowest_link"] is None and [c["verdict"] for c in gate["checks"]] == ["pass", "pass"]
    assert gate["checks"][0]["node"] == "spark-2959 <-> spark-ba63"


def test_mpirun_argv_is_a_list_with_one_rank_per_node():
    argv = FILTERS["nccl_mpirun_argv"](
        ["10.10.10.1/24", "10.10.10.2/24"], {"NCCL_IB_HCA": "rocep1s0f1,roceP2p1s0f1", "NCCL_DEBUG": "WARN"},
        "/opt/nccl-tests/build/all_reduce_perf",
        {"timeout": 300, "min_bytes": "1G", "max_bytes": "4G", "step_factor": 2, "iters": 20, "warmup_iters": 5})
    assert argv[:9] == ["timeout", "--kill-after=10", "300", "mpirun", "-np", "2", "-H",
                        "10.10.10.1:1,10.10.10.2:1", "-x"]
    assert argv[8:12] == ["-x", "NCCL_DEBUG=WARN", "-x", "NCCL_IB_HCA=rocep1s0f1,roceP2p1s0f1"]
    assert argv[12:] == ["/opt/nccl-tests/build/all_reduce_perf", "-b", "1G", "-e", "4G", "-f", "2", "-g", "1",
                         "-n", "20", "-w", "5"]
