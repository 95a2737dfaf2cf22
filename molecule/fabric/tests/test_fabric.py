"""What the fabric role left on each lab node: addresses, MTU, its netplan files, SSH trust, jumbo frames."""

import json

import yaml

LAYOUT = {  # inventory/lab.yml
    "spark-2959": {"enp1s0f1np1": "10.10.10.1/24", "enP2p1s0f1np1": "10.10.11.1/24"},
    "spark-ba63": {"enp1s0f1np1": "10.10.10.2/24", "enP2p1s0f1np1": "10.10.11.2/24"},
}
PEER = {"spark-2959": "spark-ba63", "spark-ba63": "spark-2959"}


def _name(host):
    return host.backend.get_hostname()


def _link(host, netdev):
    return json.loads(host.check_output("ip -j address show dev %s" % netdev))[0]


def test_both_twins_have_their_address_and_mtu_9000(host):
    for netdev, address in LAYOUT[_name(host)].items():
        link = _link(host, netdev)
        ipv4 = ["%s/%s" % (a["local"], a["prefixlen"]) for a in link["addr_info"] if a["family"] == "inet"]
        assert ipv4 == [address], netdev
        assert link["mtu"] == 9000, netdev


def test_netplan_files_are_private_and_static(host):
    for netdev, address in LAYOUT[_name(host)].items():
        path = host.file("/etc/netplan/40-dgx-spark-%s.yaml" % netdev)
        assert path.exists and path.mode == 0o600 and path.user == "root"
        config = yaml.safe_load(host.check_output("sudo cat %s" % path.path))["network"]["ethernets"][netdev]
        assert config == {"dhcp4": False, "dhcp6": False, "link-local": [], "addresses": [address], "mtu": 9000}


def test_netplan_accepts_the_files(host):
    # the real netplan parser, as the box would run it at boot
    assert host.run("sudo netplan generate").rc == 0


def test_jumbo_frames_cross_each_twin_without_fragmenting(host):
    for netdev, address in LAYOUT[PEER[_name(host)]].items():
        peer_ip = address.split("/")[0]
        ok = host.run("ping -M do -s 8972 -c 2 -W 2 -I %s %s" % (netdev, peer_ip))
        assert ok.rc == 0, ok.stdout + ok.stderr
        too_big = host.run("ping -M do -s 8973 -c 1 -W 2 -I %s %s" % (netdev, peer_ip))
        assert too_big.rc != 0  # proves don't-fragment is in force at MTU 9000


def test_ssh_to_the_peer_over_both_twins_needs_no_prompt(host):
    for address in LAYOUT[PEER[_name(host)]].values():
        peer_ip = address.split("/")[0]
        out = host.run("sudo -u spark ssh -o BatchMode=yes -o ConnectTimeout=5 %s hostname" % peer_ip)
        assert out.rc == 0 and out.stdout.strip() == PEER[_name(host)], out.stderr


def test_the_fabric_key_is_accepted_only_from_the_peers_fabric_addresses(host):
    peer_ips = sorted(address.split("/")[0] for address in LAYOUT[PEER[_name(host)]].values())
    line = [k for k in host.run("sudo cat ~spark/.ssh/authorized_keys").stdout.splitlines() if "dgx-spark fabric" in k]
    assert len(line) == 1 and line[0].startswith('from="%s" ' % ",".join(peer_ips)), line
    # over the management network (the peer's ansible_host in inventory/lab.yml) the same key is refused
    management = {"spark-2959": "10.59.63.11", "spark-ba63": "10.59.63.12"}[PEER[_name(host)]]
    # (ssh's own 255 is reported by echo: testinfra takes a 255 of the command it runs for its own SSH failing)
    out = host.run("sudo -u spark ssh -o BatchMode=yes -o ConnectTimeout=5 -o IdentitiesOnly=yes "
                   "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                   "-i ~spark/.ssh/id_ed25519_dgx_spark %s hostname; echo rc=$?" % management)
    assert "rc=255" in out.stdout and "Permission denied (publickey)" in out.stderr, out.stdout + out.stderr
