"""fabric_ip's logic: twin detection from sysfs and ibdev2netdev, address plans, the netplan file it owns."""

from __future__ import annotations

import os

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _fabric
from ansible_collections.dgx_spark.cluster.plugins.module_utils._tool_output import ibdev2netdev

from ansible_collections.dgx_spark.cluster.tests.unit.recorded import fixture_body


def make_netdev(sys_net, name, driver=None, pci=None, carrier=True, mtu=1500):
    """A /sys/class/net/<name> entry shaped like the kernel's (device and driver are symlinks)."""
    base = sys_net / name
    base.mkdir(parents=True)
    (base / "carrier").write_text("1\n" if carrier else "0\n")
    (base / "operstate").write_text("up\n" if carrier else "down\n")
    (base / "mtu").write_text("%d\n" % mtu)
    if pci:
        device = sys_net.parent.parent / "devices" / pci
        (device / "driver_dir").mkdir(parents=True)
        drivers = sys_net.parent.parent / "bus" / "pci" / "drivers" / driver
        drivers.mkdir(parents=True, exist_ok=True)
        os.symlink(drivers, device / "driver")
        os.symlink(device, base / "device")


@pytest.fixture
def spark_sysfs(tmp_path):
    """A DGX Spark's netdevs: cable in the outer port, so the f1 twins have carrier (ibdev2netdev eugr layout)."""
    sys_net = tmp_path / "sys" / "class" / "net"
    sys_net.mkdir(parents=True)
    make_netdev(sys_net, "lo")
    make_netdev(sys_net, "enP7s7", driver="r8127", pci="0007:01:00.0")
    make_netdev(sys_net, "enp1s0f0np0", "mlx5_core", "0000:01:00.0", carrier=False)
    make_netdev(sys_net, "enp1s0f1np1", "mlx5_core", "0000:01:00.1")
    make_netdev(sys_net, "enP2p1s0f0np0", "mlx5_core", "0002:01:00.0", carrier=False)
    make_netdev(sys_net, "enP2p1s0f1np1", "mlx5_core", "0002:01:00.1")
    return str(sys_net)


def test_detects_the_twins_with_carrier_in_pci_order(spark_sysfs):
    links = ibdev2netdev(fixture_body("rdma/ibdev2netdev_spark_eugr_networking.txt"))
    candidates = _fabric.fabric_candidates(spark_sysfs, links)
    assert [c["name"] for c in candidates] == ["enp1s0f0np0", "enp1s0f1np1", "enP2p1s0f0np0", "enP2p1s0f1np1"]
    first, why = _fabric.choose_twin(candidates, 0)
    second = _fabric.choose_twin(candidates, 1)[0]
    assert (first["name"], second["name"]) == ("enp1s0f1np1", "enP2p1s0f1np1")
    assert first["rdma_dev"] == "rocep1s0f1"
    assert "driver mlx5_core in sysfs" in why and "rocep1s0f1 port 1 in ibdev2netdev (Up)" in why
    assert "enP7s7" not in [c["name"] for c in candidates]  # the Realtek management NIC is never a fabric twin


def test_detects_from_sysfs_alone_without_ibdev2netdev(spark_sysfs):
    chosen, why = _fabric.choose_twin(_fabric.fabric_candidates(spark_sysfs, []), 0)
    assert chosen["name"] == "enp1s0f1np1" and "ibdev2netdev" not in why


def test_detects_from_ibdev2netdev_alone_like_the_lab(tmp_path):
    # the lab's twins are podman interfaces without a PCI device: only ibdev2netdev names them
    sys_net = tmp_path / "net"
    for name in ("eth0", "enp1s0f1np1", "enP2p1s0f1np1"):
        make_netdev(sys_net, name)
    links = [{"rdma_dev": "rocep1s0f1", "port": 1, "netdev": "enp1s0f1np1", "up": True},
             {"rdma_dev": "roceP2p1s0f1", "port": 1, "netdev": "enP2p1s0f1np1", "up": True}]
    candidates = _fabric.fabric_candidates(str(sys_net), links)
    assert [c["name"] for c in _fabric.choose_twin(candidates, 1)[:1]] == ["enP2p1s0f1np1"]


def test_detection_fails_with_the_cable_hint_when_no_carrier(tmp_path):
    sys_net = tmp_path / "sys" / "class" / "net"
    make_netdev(sys_net, "enp1s0f1np1", "mlx5_core", "0000:01:00.1", carrier=False)
    chosen, why = _fabric.choose_twin(_fabric.fabric_candidates(str(sys_net), []), 0)
    assert chosen is None and "only 0 with carrier up" in why and "QSFP cable" in why


def test_detection_fails_when_no_connectx(tmp_path):
    sys_net = tmp_path / "net"
    make_netdev(sys_net, "eth0")
    chosen, why = _fabric.choose_twin(_fabric.fabric_candidates(str(sys_net), []), 0)
    assert chosen is None and "no ConnectX fabric interface found" in why


@pytest.mark.parametrize("text, error", [
    ("10.10.10.1", "prefix length"),
    ("10.10.10.0/24", "network or broadcast"),
    ("10.10.10.255/24", "network or broadcast"),
    ("10.10.10.1/33", "netmask"),
    ("fe80::1/64", "octets"),
    ("10.10.10.1/24; reboot", "netmask"),
])
def test_address_validation(text, error):
    with pytest.raises(ValueError, match=error):
        _fabric.parse_interface_address(text)


@pytest.mark.parametrize("name, ok", [("enp1s0f1np1", True), ("enP2p1s0f1np1", True), ("eth0.100", True),
                                      ("", False), ("-x", False), ("a b", False), ("x" * 16, False),
                                      ("..", False), ("en;rm", False)])
def test_netdev_names(name, ok):
    assert _fabric.valid_netdev(name) is ok


def test_render_netplan_matches_the_guides_shape():
    text = _fabric.render_netplan("enp1s0f1np1", ["10.10.10.1/24"], 9000)
    import yaml
    data = yaml.safe_load(text)
    assert data == {"network": {"version": 2, "ethernets": {"enp1s0f1np1": {
        "dhcp4": False, "dhcp6": False, "link-local": [], "addresses": ["10.10.10.1/24"], "mtu": 9000}}}}
    assert _fabric.owned_addresses(text) == ["10.10.10.1/24"]


def test_a_foreign_netplan_file_owns_nothing():
    foreign = "network:\n  ethernets:\n    enp1s0f1np1:\n      addresses:\n        - 192.168.100.10/24\n"
    assert _fabric.owned_addresses(foreign) == [] and _fabric.owned_addresses(None) == []


@pytest.mark.parametrize("current, owned, state, purge, expected", [
    ([], [], "present", False, (["10.10.10.1/24"], [])),
    (["10.10.10.1/24"], ["10.10.10.1/24"], "present", False, ([], [])),
    # someone else's address stays; ours is added beside it
    (["192.168.1.5/24"], [], "present", False, (["10.10.10.1/24"], [])),
    (["192.168.1.5/24"], [], "present", True, (["10.10.10.1/24"], ["192.168.1.5/24"])),
    # our old address (changed inventory) goes, the new one comes
    (["10.10.10.9/24"], ["10.10.10.9/24"], "present", False, (["10.10.10.1/24"], ["10.10.10.9/24"])),
    # absent removes only ours
    (["10.10.10.1/24", "192.168.1.5/24"], ["10.10.10.1/24"], "absent", False, ([], ["10.10.10.1/24"])),
    (["192.168.1.5/24"], [], "absent", False, ([], [])),
])
def test_address_plan(current, owned, state, purge, expected):
    wanted = "10.10.10.1/24" if state == "present" else None
    assert _fabric.address_plan(current, wanted, owned, state, purge) == expected


def test_ip_json_parsing():
    addr = '[{"ifname":"enp1s0f1np1","addr_info":[{"family":"inet","local":"10.10.10.1","prefixlen":24},' \
           '{"family":"inet6","local":"fe80::1","prefixlen":64}]}]'
    assert _fabric.ip_addresses(addr) == ["10.10.10.1/24"]
    link = '[{"ifname":"enp1s0f1np1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":9000,' \
           '"operstate":"UP"}]'
    assert _fabric.ip_link(link) == {"mtu": 9000, "admin_up": True, "operstate": "UP"}


def test_networkmanager_helpers():
    devices = "enp1s0f1np1:connected\nenP2p1s0f1np1:unmanaged\nlo:connected (externally)\n"
    assert _fabric.nm_device_managed(devices, "enp1s0f1np1") is True
    assert _fabric.nm_device_managed(devices, "enP2p1s0f1np1") is False
    assert _fabric.nm_device_managed(devices, "missing") is False
    argv = _fabric.nm_connection_argv("/usr/bin/nmcli", "add", "dgx-spark-enp1s0f1np1", "enp1s0f1np1",
                                      ["10.10.10.1/24"], 9000)
    assert argv[:9] == ["/usr/bin/nmcli", "connection", "add", "type", "ethernet", "ifname", "enp1s0f1np1",
                        "con-name", "dgx-spark-enp1s0f1np1"]
    assert argv[argv.index("ipv4.addresses") + 1] == "10.10.10.1/24"
    assert argv[argv.index("802-3-ethernet.mtu") + 1] == "9000"
    profile = _fabric.nm_profile("ipv4.addresses:10.10.10.1/24\n802-3-ethernet.mtu:9000\n")
    assert profile == {"addresses": ["10.10.10.1/24"], "mtu": 9000}


def test_routes_in_the_netplan_file_are_read_back_as_the_modules_own():
    routes = [{"to": "10.10.12.2/32", "via": "10.10.14.1"}, {"to": "10.10.13.2/32", "via": "10.10.14.1"}]
    text = _fabric.render_netplan("enp1s0f0np0", ["10.10.14.2/24"], 9000, routes)
    import yaml
    assert yaml.safe_load(text)["network"]["ethernets"]["enp1s0f0np0"]["routes"] == routes
    assert _fabric.owned_routes(text) == routes
    assert _fabric.owned_addresses(text) == ["10.10.14.2/24"]
    assert _fabric.owned_routes(text.replace(_fabric.MANAGED_BY, "someone else")) == []


def test_ip_route_json_keeps_routes_through_a_gateway():
    shown = ('[{"dst":"10.10.14.0/24","protocol":"kernel","scope":"link","prefsrc":"10.10.14.2","flags":[]},'
             '{"dst":"10.10.12.2","gateway":"10.10.14.1","flags":[]},{"dst":"default","gateway":"10.59.63.1"}]')
    assert _fabric.ip_routes(shown) == [{"to": "10.10.12.2/32", "via": "10.10.14.1"}]


@pytest.mark.parametrize("current, owned, state, expected", [
    ([], [], "present", ([{"to": "10.0.0.1/32", "via": "10.1.0.2"}], [])),
    ([{"to": "10.0.0.1/32", "via": "10.1.0.2"}], [], "present", ([], [])),
    # ours changed gateway: the old one goes; someone else's stays
    ([{"to": "10.0.0.1/32", "via": "10.1.0.9"}, {"to": "10.9.0.0/16", "via": "10.1.0.7"}],
     [{"to": "10.0.0.1/32", "via": "10.1.0.9"}], "present",
     ([{"to": "10.0.0.1/32", "via": "10.1.0.2"}], [{"to": "10.0.0.1/32", "via": "10.1.0.9"}])),
    ([{"to": "10.0.0.1/32", "via": "10.1.0.2"}, {"to": "10.9.0.0/16", "via": "10.1.0.7"}],
     [{"to": "10.0.0.1/32", "via": "10.1.0.2"}], "absent", ([], [{"to": "10.0.0.1/32", "via": "10.1.0.2"}])),
])
def test_route_plan(current, owned, state, expected):
    wanted = [{"to": "10.0.0.1/32", "via": "10.1.0.2"}] if state == "present" else []
    assert _fabric.route_plan(current, wanted, owned, state) == expected


@pytest.mark.parametrize("value", ["10.0.0.1/32 10.1.0.2, 10.0.0.3/32 10.1.0.2",
                                   "{ ip = 10.0.0.1/32, nh = 10.1.0.2 }; { ip = 10.0.0.3/32, nh = 10.1.0.2 }"])
def test_networkmanager_routes_in_either_notation(value):
    profile = _fabric.nm_profile("ipv4.addresses:10.1.0.1/24\nipv4.routes:%s\n802-3-ethernet.mtu:9000\n" % value)
    assert profile["routes"] == [{"to": "10.0.0.1/32", "via": "10.1.0.2"}, {"to": "10.0.0.3/32", "via": "10.1.0.2"}]
    argv = _fabric.nm_connection_argv("nmcli", "modify", "p", "x", ["10.1.0.1/24"], 9000, profile["routes"])
    assert argv[argv.index("ipv4.routes") + 1] == "10.0.0.1/32 10.1.0.2,10.0.0.3/32 10.1.0.2"


@pytest.mark.parametrize("route", [{"to": "10.0.0.1/24", "via": "10.1.0.2"}, {"to": "10.0.0.1/32"},
                                   {"to": "10.0.0.1/32", "via": "10.1.0.2; reboot"}])
def test_a_route_that_is_not_one_is_refused(route):
    with pytest.raises(ValueError):
        _fabric.parse_route(route)
