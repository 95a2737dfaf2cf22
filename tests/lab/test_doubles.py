"""The lab's test doubles, run on this host: recorded outputs, refusals, scenarios, real sysfs state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOUBLE = ROOT / "lab" / "doubles" / "spark-double"
TOOLS = ("nvidia-smi", "ibdev2netdev", "ibv_devinfo", "show_gids", "rdma", "ethtool", "ib_write_bw", "ib_write_lat", "mpirun",
         "all_reduce_perf", "all_gather_perf", "lab-link-wol")
TWINS = ("enp1s0f1np1", "enP2p1s0f1np1")

sys.path.insert(0, str(ROOT / ".collections"))
from ansible_collections.dgx_spark.cluster.plugins.module_utils._nvidia_smi import (  # noqa: E402
    GPU_QUERY_FIELDS, gpu_record, parse_query_csv)
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _tool_output  # noqa: E402


class Node:
    """A fake node root: tool links on PATH, a scenario file and a sysfs net directory."""

    def __init__(self, tmp_path):
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for tool in TOOLS:
            (self.bin / tool).symlink_to(DOUBLE)
        self.scenario_file = tmp_path / "scenario"
        self.sys_net = tmp_path / "net"
        self.sys_net.mkdir()
        (self.sys_net / "lo").mkdir()
        self.set_links(up=TWINS)

    def set_links(self, up=(), down=(), mtu=9000):
        for name, state in [(n, "up") for n in up] + [(n, "down") for n in down]:
            (self.sys_net / name).mkdir(exist_ok=True)
            (self.sys_net / name / "operstate").write_text(state + "\n")
            (self.sys_net / name / "mtu").write_text("%d\n" % mtu)
            (self.sys_net / name / "address").write_text("02:42:0a:0a:0a:01\n")

    def scenario(self, name):
        self.scenario_file.write_text(name + "\n")

    def env(self):
        return dict(os.environ, PATH="%s:%s" % (self.bin, os.environ["PATH"]),
                    DGX_LAB_FIXTURES=str(ROOT / "tests" / "fixtures"),
                    DGX_LAB_SCENARIO_FILE=str(self.scenario_file), DGX_LAB_SYS_NET=str(self.sys_net),
                    DGX_LAB_WOL_DIR=str(self.sys_net.parent / "wol"),
                    DGX_LAB_NETWORK_DIRS=str(self.sys_net.parent / "network"))

    def command(self, *argv):
        """argv with its tool taken from the node's bin."""
        return [str(self.bin / argv[0])] + list(argv[1:])

    def run(self, *argv, timeout=30):
        return subprocess.run(self.command(*argv), capture_output=True, text=True, env=self.env(), timeout=timeout,
                              check=False)


@pytest.fixture
def node(tmp_path):
    return Node(tmp_path)


UNKNOWN_FORMS = {
    "nvidia-smi": ["--list-gpus-verbose"],
    "ibdev2netdev": ["-v"],
    "ibv_devinfo": ["-v"],
    "show_gids": ["rocep1s0f1", "extra"],
    "rdma": ["dev", "show"],
    "ethtool": ["-S", "enp1s0f1np1"],
    "lab-link-wol": ["--now"],
    "ib_write_bw": ["--bidirectional", "10.10.10.2"],
    "ib_write_lat": ["10.10.10.2"],
    "mpirun": ["-np", "2", "-H", "a:1,b:1", "hostname"],
    "all_reduce_perf": ["-b", "1G"],
    "all_gather_perf": [],
}


@pytest.mark.parametrize("tool", TOOLS)
def test_each_double_refuses_an_unknown_form(node, tool):
    result = node.run(tool, *UNKNOWN_FORMS[tool])
    assert result.returncode == 64
    assert "not answered by the lab's %s double" % tool in result.stderr


def test_unknown_scenario_is_an_error(node):
    node.scenario("on_fire")
    result = node.run("nvidia-smi", "-L")
    assert result.returncode == 3 and "unknown scenario 'on_fire'" in result.stderr


def test_nvidia_smi_query_parses_like_the_real_gb10(node):
    fields = ",".join(GPU_QUERY_FIELDS)
    result = node.run("nvidia-smi", "--query-gpu=" + fields, "--format=csv,noheader,nounits")
    assert result.returncode == 0, result.stderr
    [gpu] = [gpu_record(row) for row in parse_query_csv(result.stdout, GPU_QUERY_FIELDS)]
    assert gpu["name"] == "NVIDIA GB10" and gpu["unified_memory"] is True and gpu["compute_cap"] == "12.1"


def test_nvidia_smi_header_and_units_follow_the_format(node):
    result = node.run("nvidia-smi", "--query-gpu=name,memory.total,power.draw", "--format=csv")
    assert result.stdout.splitlines() == ["name, memory.total [MiB], power.draw [W]", "NVIDIA GB10, [N/A], 3.74 W"]


def test_nvidia_smi_rejects_an_invalid_field_like_the_real_one(node):
    result = node.run("nvidia-smi", "--query-gpu=name,vram", "--format=csv")
    assert result.returncode == 2 and result.stderr.strip() == 'Field "vram" is not a valid field to query.'


def test_no_gpu_scenario_fails_like_an_unloaded_driver(node):
    node.scenario("no_gpu")
    result = node.run("nvidia-smi", "--query-gpu=name", "--format=csv")
    assert result.returncode == 9 and "couldn't communicate with the NVIDIA driver" in result.stdout


def test_ibdev2netdev_reports_real_link_state(node):
    node.set_links(down=["enP2p1s0f1np1"])
    lines = node.run("ibdev2netdev").stdout.splitlines()
    assert "rocep1s0f1 port 1 ==> enp1s0f1np1 (Up)" in lines
    assert "roceP2p1s0f1 port 1 ==> enP2p1s0f1np1 (Down)" in lines
    assert "rocep1s0f0 port 1 ==> enp1s0f0np0 (Down)" in lines  # no cable in the other port


def test_rdma_link_follows_link_state(node):
    node.set_links(down=["enp1s0f1np1"])
    out = node.run("rdma", "link").stdout
    assert "link rocep1s0f1/1" in out and "state DOWN physical_state DISABLED netdev enp1s0f1np1" in out
    assert "state ACTIVE physical_state LINK_UP netdev enP2p1s0f1np1" in out


@pytest.mark.parametrize("scenario, speed", [("healthy", "200000Mb/s"), ("degraded_link", "100000Mb/s")])
def test_ethtool_speed_switches_with_the_scenario(node, scenario, speed):
    node.scenario(scenario)
    assert "\tSpeed: %s" % speed in node.run("ethtool", "enp1s0f1np1").stdout.splitlines()


def test_ethtool_unknown_interface(node):
    result = node.run("ethtool", "enp9s0")
    assert result.returncode == 75 and "No such device" in result.stderr


def test_ib_write_bw_client_off_the_twin_subnet_cannot_connect(node):
    # the fake node has no address on enp1s0f1np1, so 10.10.10.2 is not reachable through rocep1s0f1
    result = node.run("ib_write_bw", "-d", "rocep1s0f1", "--report_gbits", "10.10.10.2")
    assert result.returncode == 1 and "Couldn't connect to 10.10.10.2:18515" in result.stderr


def test_ib_write_bw_on_a_down_twin_fails(node):
    node.set_links(down=["enp1s0f1np1"])
    result = node.run("ib_write_bw", "-d", "rocep1s0f1")
    assert result.returncode == 1 and "state is Down" in result.stderr


def _mpirun_argv(node, test="all_reduce_perf"):
    return ["mpirun", "-np", "2", "-H", "127.0.0.1:1,127.0.0.1:1", "-x", "NCCL_IB_HCA=rocep1s0f1,roceP2p1s0f1",
            "--mca", "btl_tcp_if_include", "enp1s0f1np1", str(node.bin / test), "-b", "1G", "-e", "4G", "-f", "2",
            "-g", "1"]


def _mpirun(node, test="all_reduce_perf"):
    return node.run(*_mpirun_argv(node, test))


def _avg_busbw(text):
    return float(next(line for line in text.splitlines() if line.startswith("# Avg bus bandwidth")).split(":")[1])


def test_mpirun_replays_the_recorded_rows_in_range(node):
    result = _mpirun(node)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [int(r[0]) for r in rows] == [1 << 30, 1 << 31, 1 << 32]
    assert "# Out of bounds values : 0 OK" in result.stdout
    # average over the kept rows' out-of-place and in-place busbw
    assert _avg_busbw(result.stdout) == pytest.approx((19.93 + 21.00 + 21.80 + 22.95 + 22.93 + 23.62) / 6, abs=1e-3)


def test_nccl_slow_halves_bus_bandwidth(node):
    healthy = _avg_busbw(_mpirun(node, "all_gather_perf").stdout)
    node.scenario("nccl_slow")
    slow = _avg_busbw(_mpirun(node, "all_gather_perf").stdout)
    assert slow == pytest.approx(healthy / 2, abs=0.01)


def test_nccl_hang_never_finishes(node):
    """The header, then nothing: still running 3 s after the header (timed from it, so a loaded machine's slow start
    cannot fail the test)."""
    node.scenario("nccl_hang")
    run = subprocess.Popen(node.command(*_mpirun_argv(node)), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True, env=node.env())
    watchdog = threading.Timer(60, run.kill)  # no header within a minute: EOF below, and the test fails
    watchdog.start()
    try:
        lines = iter(run.stdout.readline, "")
        assert any(line.startswith("# Collective test starting") for line in lines), "ended without the header"
        with pytest.raises(subprocess.TimeoutExpired):
            run.wait(timeout=3)
    finally:
        watchdog.cancel()
        run.kill()
        run.wait()


def test_mpirun_without_reachable_rank_fails_like_orte(node):
    result = node.run("mpirun", "-np", "2", "-H", "127.0.0.1:1,127.0.0.2:1", str(node.bin / "all_reduce_perf"),
                      "-b", "1G", "-e", "1G", timeout=60)
    assert result.returncode == 1 and "ORTE was unable to reliably start one or more daemons" in result.stderr


@pytest.mark.parametrize("mtu, active", [(9000, 4096), (1500, 1024), (2200, 2048)])
def test_ibv_devinfo_active_mtu_follows_the_netdev_mtu(node, mtu, active):
    node.set_links(up=TWINS, mtu=mtu)
    out = node.run("ibv_devinfo", "-d", "roceP2p1s0f1")
    assert out.returncode == 0, out.stderr
    port = _tool_output.ibv_devinfo(out.stdout)["roceP2p1s0f1"]["ports"][1]
    assert port["state"] == "PORT_ACTIVE" and port["active_mtu"] == active and port["max_mtu"] == 4096


def test_ibv_devinfo_port_down_with_the_link(node):
    node.set_links(down=["enp1s0f1np1"])
    devices = _tool_output.ibv_devinfo(node.run("ibv_devinfo").stdout)
    assert devices["rocep1s0f1"]["ports"][1]["state"] == "PORT_DOWN"
    assert devices["roceP2p1s0f1"]["ports"][1]["state"] == "PORT_ACTIVE"
    missing = node.run("ibv_devinfo", "-d", "mlx5_9")
    assert missing.returncode != 0 and "wasn't found" in missing.stderr


def test_show_gids_lists_link_local_gids_in_the_real_layout(node):
    out = node.run("show_gids", "rocep1s0f1")
    assert out.returncode == 0, out.stderr
    gids = _tool_output.show_gids(out.stdout)
    # this host has no address on a netdev named enp1s0f1np1: only the link-local pair, v1 then v2
    assert [(g["index"], g["version"], g["ipv4"]) for g in gids] == [(0, "v1", None), (1, "v2", None)]
    assert gids[0]["gid"] == "fe80:0000:0000:0000:0042:0aff:fe0a:0a01"
    assert out.stdout.strip().endswith("n_gids_found=2")


def test_a_lan_nic_replays_the_recorded_wake_on_lines_and_keeps_what_was_armed(node):
    node.set_links(up=["eth0"])
    wol = _tool_output.ethtool_wake_on(node.run("ethtool", "eth0").stdout)
    assert wol == {"supports": "pumbg", "wake_on": "d", "magic": True, "armed": False}
    assert node.run("ethtool", "-s", "eth0", "wol", "g").returncode == 0
    shown = node.run("ethtool", "eth0").stdout
    assert shown.startswith("Settings for eth0:") and "Link detected: yes" in shown
    assert _tool_output.ethtool_wake_on(shown)["armed"]
    assert node.run("ethtool", "-s", "enp1s0f1np1", "wol", "g").stderr.strip() == "netlink error: Operation not supported"


def test_a_nic_without_wake_on_lan_prints_no_wake_on_lines_and_refuses_to_arm(node):
    node.set_links(up=["eth0"])
    node.scenario("wol_unsupported")
    shown = node.run("ethtool", "eth0").stdout
    assert shown.startswith("Settings for eth0:") and "Wake-on" not in shown
    refused = node.run("ethtool", "-s", "eth0", "wol", "g")
    assert refused.returncode == 75 and "Operation not supported" in refused.stderr
    assert not _tool_output.ethtool_wake_on(node.run("ethtool", "eth0").stdout)["armed"]


def test_a_boot_arms_only_what_a_matching_link_file_says(node):
    node.set_links(up=["eth0", "eth1"])
    network = node.sys_net.parent / "network"
    network.mkdir()
    (network / "50-dgx-spark-wol-eth0.link").write_text(
        "[Match]\nMACAddress=02:42:0a:0a:0a:01\n\n[Link]\nNamePolicy=keep kernel\nWakeOnLan=magic\n")
    (network / "10-first.link").write_text("[Match]\nOriginalName=eth1\n\n[Link]\nMTUBytes=9000\n")
    done = node.run("lab-link-wol")
    assert done.returncode == 0, done.stderr
    # eth1 matches the earlier file (and only that one); eth0 and eth1 share the test's MAC
    assert _tool_output.ethtool_wake_on(node.run("ethtool", "eth0").stdout)["armed"]
    assert not _tool_output.ethtool_wake_on(node.run("ethtool", "eth1").stdout)["armed"]


def test_the_lab_host_wakes_only_on_the_magic_pattern():
    sys.path.insert(0, str(ROOT / "lab"))
    import power
    mac = bytes.fromhex("723159bb4f0c")
    frame = b"\x00" * 42 + b"\xff" * 6 + mac * 16
    assert power.magic_macs(frame) == {"72:31:59:bb:4f:0c"}
    assert power.magic_macs(b"\xff" * 6 + mac * 15 + b"\x00" * 6) == set()
    assert power.magic_macs(b"\xff" * 9 + mac * 16) == {"72:31:59:bb:4f:0c"}  # the sync found anywhere


def test_the_trtllm_serve_double_ends_on_sigterm_as_the_real_server_does(tmp_path):
    """As a container's PID 1 a process without a SIGTERM handler ignores docker stop's signal for its whole grace;
    the real trtllm-serve (uvicorn) ends on it, so the double must too."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (model / "model.safetensors").write_bytes(b"\0")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = ("import sys; sys.path.insert(0, %r); import trtllm_double as d; d.STARTUP = %r; "
            "sys.exit(d.serve(['serve', %r, '--host', '127.0.0.1', '--port', '%d']))"
            % (str(ROOT / "lab" / "trtllm"), str(ROOT / "tests" / "fixtures" / "trtllm" /
                                                 "trtllm_serve_gptoss120b_startup_to_ready_spark.txt"), str(model), port))
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=5) == 0, server.stdout.read()
    finally:
        server.kill()
