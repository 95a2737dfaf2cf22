"""The tool-output filters on every recorded file in fixtures/perftest, nccl, rdma and ray, plus derived failures."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.dgx_spark.cluster.plugins.filter.parsers import FilterModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _k8s, _tool_output as parse

from ansible_collections.dgx_spark.cluster.tests.unit.recorded import fixture_body, fixture_files

FILTERS = FilterModule().filters()

# ------------------------------------------------------------------ perftest
BW_EXPECTED = {
    "perftest/ib_write_bw_q4_dell_gb10_trevorsquillario.txt":
        dict(bw_avg_gbps=111.61, bw_peak_gbps=111.62, msg_size_bytes=65536, unit="Gb/sec", qps=4, samples=1),
    "perftest/ib_write_bw_spark_eugr_q4_rdmacm.txt":
        dict(bw_avg_gbps=111.71, bw_peak_gbps=111.72, msg_size_bytes=65536, unit="Gb/sec", qps=4, samples=1),
    # MB/sec without --report_gbits: 11032.34 MB/s = 88.259 Gb/s
    "perftest/ib_write_bw_spark_mbsec_gid3_elizabetht.txt":
        dict(bw_avg_gbps=88.259, bw_peak_gbps=88.261, unit="MB/sec", gid_index=3, link_type="Ethernet", samples=1),
    # --run_infinitely: peak printed as 0.00 (not measured), rows averaged
    "perftest/ib_write_bw_spark_playbook_run_infinitely_rail1.txt":
        dict(bw_avg_gbps=92.568, bw_peak_gbps=None, device="rocep1s0f0", samples=5),
    "perftest/ib_write_bw_spark_playbook_run_infinitely_rail2.txt":
        dict(bw_avg_gbps=97.282, bw_peak_gbps=None, device="roceP2p1s0f0", samples=6),
}


def test_every_perftest_fixture_is_covered():
    expected = set(BW_EXPECTED) | {"perftest/ib_write_bw_server_waiting_dell_gb10_trevorsquillario.txt",
                                   "perftest/ib_write_lat_spark_eugr.txt"}
    assert set(fixture_files("perftest")) == expected


@pytest.mark.parametrize("relpath", sorted(BW_EXPECTED))
def test_ib_write_bw_results(relpath):
    result = FILTERS["ib_write_bw_results"](fixture_body(relpath))
    assert result["ok"] is True
    for key, value in BW_EXPECTED[relpath].items():
        assert result[key] == (pytest.approx(value, abs=0.001) if isinstance(value, float) else value), key


@pytest.mark.parametrize("relpath", ["perftest/ib_write_bw_server_waiting_dell_gb10_trevorsquillario.txt",
                                     "perftest/ib_write_lat_spark_eugr.txt"])
def test_ib_write_bw_results_without_a_bandwidth_table_is_not_ok(relpath):
    result = parse.ib_write_bw_results(fixture_body(relpath))
    assert result["ok"] is False and result["bw_avg_gbps"] is None


def test_ib_write_bw_results_cut_off_before_the_table_is_not_ok():
    # derived: the eugr client run, truncated after the address exchange (a client killed by its timeout)
    text = fixture_body("perftest/ib_write_bw_spark_eugr_q4_rdmacm.txt").split(" #bytes")[0]
    assert parse.ib_write_bw_results(text)["ok"] is False


def test_ib_write_lat_results():
    result = FILTERS["ib_write_lat_results"](fixture_body("perftest/ib_write_lat_spark_eugr.txt"))
    assert result["ok"] is True
    assert (result["msg_size_bytes"], result["iterations"]) == (2, 1000)
    assert (result["t_min_us"], result["t_typical_us"], result["p99_9_us"]) == (1.42, 1.47, 1.93)


def test_ib_write_lat_results_on_bandwidth_output_is_not_ok():
    assert parse.ib_write_lat_results(fixture_body("perftest/ib_write_bw_spark_eugr_q4_rdmacm.txt"))["ok"] is False


# ------------------------------------------------------------------ nccl
NCCL_EXPECTED = {
    "nccl/all_gather_perf_16G_dell_gb10_trevorsquillario.txt":
        dict(test="all_gather_perf", sizes=[17179869184], avg=22.9611, first_busbw=22.98, hosts=2),
    "nccl/all_gather_perf_1G-4G_via_qsfp_switch_spark_mprg.txt":
        dict(test="all_gather_perf", sizes=[1 << 30, 1 << 31, 1 << 32], avg=21.4033, first_busbw=20.80, hosts=2),
    "nccl/all_gather_perf_512M-16G_merged_nics_spark_hugoblog.txt":
        dict(test="all_gather_perf", sizes=[1 << n for n in range(29, 35)], avg=22.1205, first_busbw=19.48, hosts=2),
    "derived/all_reduce_perf_2x_spark_from_hugoblog.txt":
        dict(test="all_reduce_perf", sizes=[1 << n for n in range(29, 35)], avg=22.1205, first_busbw=19.48, hosts=2),
}


def test_every_nccl_fixture_is_covered():
    assert set(fixture_files("nccl")) == {p for p in NCCL_EXPECTED if p.startswith("nccl/")} | {
        "nccl/nccl_failure_net_ib_status12_bond_gx10.txt"}


@pytest.mark.parametrize("relpath", sorted(NCCL_EXPECTED))
def test_nccl_results(relpath):
    expected = NCCL_EXPECTED[relpath]
    result = FILTERS["nccl_results"](fixture_body(relpath))
    assert result["ok"] is True and result["out_of_bounds"] == 0
    assert result["test"] == expected["test"]
    assert [row["size_bytes"] for row in result["rows"]] == expected["sizes"]
    assert result["avg_busbw_gbps"] == expected["avg"]
    assert result["rows"][0]["busbw_gbps"] == expected["first_busbw"]
    assert all(row["wrong"] == 0 for row in result["rows"])
    assert len(result["ranks"]) == expected["hosts"] and result["warnings"] == []


def test_nccl_results_ignore_mpirun_noise_lines():
    text = fixture_body("nccl/all_gather_perf_1G-4G_via_qsfp_switch_spark_mprg.txt")
    assert "Authorization required" in text
    assert len(parse.nccl_results(text)["rows"]) == 3


def test_nccl_failure_surfaces_the_joined_warn_line():
    result = parse.nccl_results(fixture_body("nccl/nccl_failure_net_ib_status12_bond_gx10.txt"))
    assert result["ok"] is False and result["rows"] == []
    assert len(result["warnings"]) == 1
    assert "NET/IB: Got completion from peer 10.77.0.1<35162> with status=12" in result["warnings"][0]
    assert result["warnings"][0].endswith("hca roceP2p1s0f0")
    assert len(result["failures"]) == 2


def test_nccl_results_wrong_values_are_not_ok():
    # derived: the 16G run with 3 wrong elements in-place and the summary nccl-tests prints then
    text = fixture_body("nccl/all_gather_perf_16G_dell_gb10_trevorsquillario.txt")
    text = text.replace("22.98       0", "22.98       3")
    text = text.replace("# Out of bounds values : 0 OK", "# Out of bounds values : 3 FAILED")
    result = parse.nccl_results(text)
    assert result["ok"] is False and result["out_of_bounds"] == 3 and result["rows"][0]["wrong"] == 3


def test_nccl_results_hung_run_has_no_rows():
    # derived: a run killed by the timeout after the header (what a hung collective leaves)
    text = fixture_body("derived/all_reduce_perf_2x_spark_from_hugoblog.txt").split("   536870912")[0]
    result = parse.nccl_results(text)
    assert result["ok"] is False and result["rows"] == [] and result["avg_busbw_gbps"] is None
    assert result["test"] == "all_reduce_perf"


# ------------------------------------------------------------------ rdma
IBDEV_EXPECTED = {
    "rdma/ibdev2netdev_port0_up_gb10_sean.txt": {
        "enp1s0f0np0": True, "enp1s0f1np1": False, "enP2p1s0f0np0": True, "enP2p1s0f1np1": False},
    "rdma/ibdev2netdev_spark_eugr_networking.txt": {
        "enp1s0f0np0": False, "enp1s0f1np1": True, "enP2p1s0f0np0": False, "enP2p1s0f1np1": True},
    "rdma/ibdev2netdev_spark_playbook_connect_two_sparks.txt": {
        "enP2p1s0f0np0": False, "enP2p1s0f1np1": True, "enp1s0f0np0": False, "enp1s0f1np1": True},
}


@pytest.mark.parametrize("relpath", sorted(IBDEV_EXPECTED))
def test_ibdev2netdev(relpath):
    links = FILTERS["ibdev2netdev"](fixture_body(relpath))
    assert {link["netdev"]: link["up"] for link in links} == IBDEV_EXPECTED[relpath]
    assert list({link["netdev"]: 0 for link in links}) == list(IBDEV_EXPECTED[relpath])  # printed order kept
    assert {link["netdev"]: link["rdma_dev"] for link in links}["enP2p1s0f1np1"] == "roceP2p1s0f1"
    assert all(link["port"] == 1 for link in links)


def test_ibdev2netdev_two_hosts_in_one_paste():
    links = parse.ibdev2netdev(fixture_body("rdma/ibdev2netdev_spark_port0_playbook_perfguide.txt"))
    assert len(links) == 8 and [link["up"] for link in links[:4]] == [True, False, True, False]


def test_ibdev2netdev_accepts_a_registered_result():
    text = fixture_body("rdma/ibdev2netdev_spark_eugr_networking.txt")
    assert FILTERS["ibdev2netdev"]({"stdout": text, "rc": 0}) == parse.ibdev2netdev(text)


def test_filters_reject_non_text():
    with pytest.raises(AnsibleFilterError, match="expects the tool's output as text"):
        FILTERS["nccl_results"](["not", "text"])


@pytest.mark.parametrize("relpath, active", [
    ("rdma/rdma_link_2active_2down_gb10_sean.txt",
     {"rocep1s0f0": True, "rocep1s0f1": False, "roceP2p1s0f0": True, "roceP2p1s0f1": False}),
    ("rdma/rdma_link_all_active_padded_ibv_devices_gx10.txt",
     {"rocep1s0f0": True, "rocep1s0f1": True, "roceP2p1s0f0": True, "roceP2p1s0f1": True}),
])
def test_rdma_link(relpath, active):
    links = FILTERS["rdma_link"](fixture_body(relpath))
    assert {link["rdma_dev"]: link["active"] for link in links} == active
    assert {link["rdma_dev"]: link["netdev"] for link in links}["roceP2p1s0f1"] == "enP2p1s0f1np1"


def test_show_gids():
    gids = FILTERS["show_gids"](fixture_body("rdma/show_gids_gb10_sean.txt"))
    assert len(gids) == 12
    v2_ipv4 = [(g["rdma_dev"], g["index"], g["ipv4"]) for g in gids if g["version"] == "v2" and g["ipv4"]]
    assert v2_ipv4 == [("rocep1s0f0", 3, "192.168.100.10"), ("roceP2p1s0f0", 3, "192.168.100.14")]
    assert gids[0]["gid"].startswith("fe80") and gids[0]["ipv4"] is None


def test_ibv_devinfo():
    devices = FILTERS["ibv_devinfo"](fixture_body("rdma/ibv_devinfo_spark_4hca_elizabetht.txt"))
    assert sorted(devices) == sorted(["rocep1s0f0", "rocep1s0f1", "roceP2p1s0f0", "roceP2p1s0f1"])
    port = devices["roceP2p1s0f1"]["ports"][1]
    assert port == {"state": "PORT_ACTIVE", "max_mtu": 4096, "active_mtu": 1024, "link_layer": "Ethernet"}
    assert devices["rocep1s0f0"]["fw_ver"] == "28.45.4028"


@pytest.mark.parametrize("relpath, speed", [
    ("rdma/ethtool_grep_speed_100G_degraded_playbook_switch.txt", 100000),
    ("rdma/ethtool_grep_speed_200G_playbook_switch.txt", 200000),
    ("rdma/ethtool_speed_sysfs_rate_lspci_hp_zgx_blog.txt", 200000),
])
def test_ethtool_speed(relpath, speed):
    assert FILTERS["ethtool_speed_mbps"](fixture_body(relpath)) == speed


def test_ethtool_speed_unknown_when_link_down():
    assert parse.ethtool_speed_mbps("Settings for enp1s0f1np1:\n\tSpeed: Unknown!\n\tLink detected: no\n") is None


def test_ip_outputs_hold_no_perf_tables():
    # the ip(8) fixtures are fed to the other parsers by mistake in no role; prove they do not parse as links
    for relpath in [p for p in fixture_files("rdma") if p.startswith("rdma/ip_")]:
        text = fixture_body(relpath)
        assert parse.ibdev2netdev(text) == [] and parse.rdma_link(text) == [], relpath


# ------------------------------------------------------------------ ray
@pytest.mark.parametrize("relpath", fixture_files("ray"))
def test_ray_status(relpath):
    result = FILTERS["ray_status"](fixture_body(relpath))
    assert result["ok"] is True
    assert (result["nodes_active"], result["nodes_pending"]) == (2, 0)
    assert (result["gpus_used"], result["gpus_total"], result["cpus_total"]) == (0.0, 2.0, 40.0)
    assert result["failures"] == []


def test_ray_status_one_node_missing():
    # derived: the mprg capture with the worker gone (one Active node, one GPU)
    text = fixture_body("ray/ray_status_2node_spark_mprg.txt")
    text = text.replace(" 1 node_09617c712f01827029c992ee84fd56531d7f205b7a25c704cdadb6cf\n", "")
    text = text.replace("0.0/2.0 GPU", "0.0/1.0 GPU")
    result = parse.ray_status(text)
    assert (result["nodes_active"], result["gpus_total"]) == (1, 1.0)


def test_ray_status_older_usage_layout():
    # derived: Ray < 2.10 printed "Usage:" instead of "Total Usage:"
    text = fixture_body("ray/ray_status_total_constraints_variant_dougbtv.txt").replace("Total Usage:", "Usage:")
    result = parse.ray_status(text)
    assert (result["gpus_used"], result["gpus_total"]) == (0.0, 2.0)


def test_ray_status_not_running():
    assert parse.ray_status("ConnectionError: Could not find any running Ray instance.")["ok"] is False


# ------------------------------------------------------------------ command_output
@pytest.mark.parametrize("result, text", [
    ({"stdout": "out 1\nout 2", "stderr": "err 1"}, "out 1\nout 2\nerr 1"),
    ({"stdout": "", "stderr": "err 1"}, "err 1"),
    ({"stdout": "out", "stderr": ""}, "out"),
    ({"skipped": True}, ""),
    ({}, ""),
    ("as it is", "as it is"),
])
def test_command_output_joins_a_registered_results_streams_with_a_real_newline(result, text):
    assert FILTERS["command_output"](result) == text


def test_a_join_failure_on_stderr_is_found_on_its_own_line_once_the_streams_are_joined():
    joined = FILTERS["command_output"]({"stdout": "[preflight] Running pre-flight checks",
                                        "stderr": "error execution phase preflight: [ERROR FileAvailable]: exists"})
    failure = _k8s.kubeadm_join_failure(joined)
    assert failure["cause"] == "preflight"
    assert failure["detail"] == "error execution phase preflight: [ERROR FileAvailable]: exists"
