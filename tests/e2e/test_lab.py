"""The lab itself, end to end: two simulated Sparks up, reachable, fabric at MTU 9000, docker, doubles (its clean
down: test_lab_teardown.py, the last test).

Runs as root with podman (make test brings the lab up here).
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from labkit import KEY, NODES, TWINS, fabric, lab, lab_container_ids, ssh


@pytest.fixture(scope="module", autouse=True)
def lab_up():
    lab("up")
    yield
    for node in NODES:
        lab("scenario", node, "healthy", check=False)


def test_admin_user_has_ssh_and_passwordless_sudo():
    for node in NODES:
        assert ssh(node, "hostname; sudo -n true && echo sudo-ok").stdout.split() == [node, "sudo-ok"]


def test_second_user_has_no_passwordless_sudo():
    result = ssh("spark-ba63", "sudo -n true", user="nosudo", check=False)
    assert result.returncode != 0 and "password is required" in result.stderr


def test_fabric_twins_have_real_names_mtu_9000_and_own_subnets():
    for index, node in enumerate(NODES):
        links = {link["ifname"]: link for link in json.loads(ssh(node, "ip -j addr show").stdout)}
        for twin, addresses in TWINS.items():
            assert links[twin]["mtu"] == 9000
            v4 = [(a["local"], a["prefixlen"]) for a in links[twin]["addr_info"] if a["family"] == "inet"]
            assert v4 == [(addresses[index], 24)]


@pytest.mark.parametrize("twin", TWINS)
def test_jumbo_ping_does_not_fragment_in_both_directions(twin):
    for index, node in enumerate(NODES):
        peer = TWINS[twin][1 - index]
        ssh(node, "ping -c 2 -W 2 -M do -s 8972 %s" % peer)
        too_big = ssh(node, "ping -c 1 -W 2 -M do -s 8973 %s" % peer, check=False)
        assert too_big.returncode != 0  # the path MTU is exactly 9000


def test_docker_runs_with_host_network_on_each_node():
    for index, node in enumerate(NODES):
        out = ssh(node, "docker run --rm --network host lab/busybox ip -o -4 addr").stdout
        assert TWINS["enp1s0f1np1"][index] + "/24" in out


def _ib_write_bw(twin, device, port):
    server_ip = TWINS[twin][0]
    server = subprocess.Popen(
        ["ssh", "-i", str(KEY), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
         "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "spark@" + NODES["spark-2959"],
         "timeout 30 ib_write_bw -d %s -p %d --report_gbits" % (device, port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = [server.stdout.readline() for line in range(3)]
        assert "Waiting for client to connect" in "".join(banner)
        client = ssh("spark-ba63", "ib_write_bw -d %s -p %d --report_gbits %s" % (device, port, server_ip))
    finally:
        server.wait(timeout=30)
    row = re.search(r"^ 65536\s+\d+\s+([\d.]+)\s+([\d.]+)", client.stdout, re.M)
    return float(row.group(2))


def test_ib_write_bw_crosses_the_real_fabric_and_follows_the_scenario():
    assert _ib_write_bw("enp1s0f1np1", "rocep1s0f1", 18515) > 92
    assert _ib_write_bw("enP2p1s0f1np1", "roceP2p1s0f1", 18516) > 92
    lab("scenario", "spark-ba63", "degraded_link")
    assert 40 < _ib_write_bw("enp1s0f1np1", "rocep1s0f1", 18517) < 50
    assert "Speed: 100000Mb/s" in ssh("spark-ba63", "ethtool enp1s0f1np1").stdout
    lab("scenario", "spark-ba63", "healthy")


def test_ib_write_bw_to_the_other_twins_subnet_is_refused():
    result = ssh("spark-ba63", fabric("ib_write_bw -d rocep1s0f1 --report_gbits 10.10.11.1"), check=False)
    assert result.returncode == 1 and "has no address on the subnet" in result.stderr


def test_doubles_see_a_twin_going_down():
    ssh("spark-ba63", "sudo ip link set enP2p1s0f1np1 down")
    try:
        out = ssh("spark-ba63", "ibdev2netdev").stdout
        assert "roceP2p1s0f1 port 1 ==> enP2p1s0f1np1 (Down)" in out
        assert "rocep1s0f1 port 1 ==> enp1s0f1np1 (Up)" in out
    finally:
        ssh("spark-ba63", "sudo ip link set enP2p1s0f1np1 up")


def test_scenario_switch_per_node():
    lab("scenario", "spark-ba63", "no_gpu")
    assert ssh("spark-ba63", "nvidia-smi -L", check=False).returncode == 9
    assert "NVIDIA GB10" in ssh("spark-2959", "nvidia-smi -L").stdout
    lab("scenario", "spark-ba63", "healthy")
    assert "NVIDIA GB10" in ssh("spark-ba63", "nvidia-smi -L").stdout
    bad = lab("scenario", "spark-ba63", "on_fire", check=False)
    assert bad.returncode != 0 and "unknown scenario 'on_fire'" in bad.stderr


def test_up_again_keeps_the_running_nodes():
    before = sorted(lab_container_ids())
    lab("up")
    assert sorted(lab_container_ids()) == before and len(before) == 2
