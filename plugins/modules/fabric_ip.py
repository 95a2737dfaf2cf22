#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fabric_ip
short_description: Ensure an IPv4 address and MTU on a ConnectX fabric twin, now and across reboots
version_added: 0.1.0
description:
  - Puts an IPv4 address (CIDR) and an MTU on a fabric interface, named with O(interface) or detected. ConnectX twins
    are netdevs bound to C(mlx5_core) in sysfs and/or listed by C(ibdev2netdev); of those with carrier up, O(twin)
    picks the first or second in PCI order. The choice and the reason are returned.
  - The running state is changed with C(ip) (C(ip address add/del), C(ip link set mtu/up)); nothing else on the host
    is restarted, so the management network and SSH are never disturbed.
  - Persistence goes to a netplan file of the module's own (mode 0600, C(dhcp4/dhcp6) off, C(link-local []), the
    MTU), validated with C(netplan generate) into a scratch root when netplan is installed; or, when NetworkManager
    manages the device, to a NetworkManager connection profile named C(dgx-spark-<interface>).
  - Addresses the module did not add (not in its own file) are left alone unless O(purge_other_addresses=true).
    O(state=absent) removes only the module's own addresses, routes and file; the MTU is left as it is.
  - O(routes) are host routes through a neighbour on this interface's link (a ring's nodes reach each other's other
    addresses this way, docs/topologies.md); set with C(ip route replace) and kept in the same file or profile. Routes
    the module added earlier and no longer given are removed; routes it did not add are left alone.
  - Warns when another interface already holds an address in the same subnet (ConnectX twins must sit on different
    subnets, or RoCE and NCCL route both twins' traffic through one of them).
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  interface:
    description:
      - The fabric netdev, for example C(enp1s0f1np1). When omitted, the module detects it (see O(twin)).
    type: str
  address:
    description:
      - IPv4 address with prefix length, for example C(10.10.10.1/24). Required with O(state=present).
      - With O(state=absent), also removed when given and present on the interface.
    type: str
  mtu:
    description:
      - MTU to set on the interface (jumbo frames for RoCE and NCCL).
    type: int
    default: 9000
  state:
    description:
      - V(present) ensures the address and MTU; V(absent) removes the module's own addresses and persistence.
    type: str
    choices: [present, absent]
    default: present
  twin:
    description:
      - When detecting, which of the fabric interfaces with carrier up to take, in PCI order (V(0) the first twin,
        for example C(enp1s0f1np1); V(1) the second, for example C(enP2p1s0f1np1)).
    type: int
    default: 0
  persist:
    description:
      - V(auto) uses NetworkManager when it manages the device and a netplan file otherwise; V(none) changes only the
        running state.
    type: str
    choices: [auto, netplan, networkmanager, none]
    default: auto
  netplan_path:
    description:
      - The netplan file the module owns. Default C(/etc/netplan/40-dgx-spark-<interface>.yaml).
    type: path
  routes:
    description:
      - Routes on this interface, each through a gateway on the interface's own subnet. The module's file or profile
        keeps exactly these; an empty list removes the ones it added before.
    type: list
    elements: dict
    default: []
    suboptions:
      to:
        description: The destination network, for example C(10.10.12.1/32).
        type: str
        required: true
      via:
        description: The gateway, an address of O(address)'s subnet, for example C(10.10.10.2).
        type: str
        required: true
  purge_other_addresses:
    description:
      - Also remove IPv4 addresses on the interface that the module did not add.
    type: bool
    default: false
  sysfs_net_path:
    description:
      - Where the kernel lists network devices; changed only by tests.
    type: path
    default: /sys/class/net
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
notes:
  - Needs root (become) to change addresses and write under C(/etc/netplan).
  - The module never runs C(netplan apply), which would reconfigure every interface. The file takes effect at boot or
    on your next C(netplan apply).
seealso:
  - name: NVIDIA DGX Spark, connect two Sparks
    description: The playbook this module automates (netplan file with a static fabric address and MTU 9000).
    link: https://build.nvidia.com/spark/connect-two-sparks
"""

EXAMPLES = r"""
- name: Primary twin on the head, named
  dgx_spark.cluster.fabric_ip:
    interface: enp1s0f1np1
    address: 10.10.10.1/24
  become: true

- name: Second twin, detected, on its own subnet
  dgx_spark.cluster.fabric_ip:
    twin: 1
    address: 10.10.11.1/24
  become: true

- name: Port 0 of a ring's head, with the routes to the next node's far addresses (docs/topologies.md)
  dgx_spark.cluster.fabric_ip:
    interface: enp1s0f0np0
    address: 10.10.14.2/24
    routes:
      - {to: 10.10.12.2/32, via: 10.10.14.1}
  become: true

- name: Remove what the module added on a twin
  dgx_spark.cluster.fabric_ip:
    interface: enP2p1s0f1np1
    state: absent
  become: true
"""

RETURN = r"""
interface:
  description: The interface acted on.
  returned: always
  type: str
  sample: enp1s0f1np1
detected:
  description: Whether the interface was detected rather than named.
  returned: always
  type: bool
detection:
  description: When detected, why this interface, and every candidate seen (name, driver, carrier, rdma_dev, reasons).
  returned: when detected
  type: dict
  sample: {"reason": "twin 0 of the fabric interfaces with carrier up (enp1s0f1np1, enP2p1s0f1np1): ...",
           "candidates": [{"name": "enp1s0f1np1", "carrier": true, "driver": "mlx5_core"}]}
addresses:
  description: IPv4 addresses on the interface after the task (as they would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["10.10.10.1/24"]
added:
  description: Addresses added.
  returned: always
  type: list
  elements: str
removed:
  description: Addresses removed.
  returned: always
  type: list
  elements: str
routes:
  description: The module's routes on the interface after the task (as they would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{"to": "10.10.12.2/32", "via": "10.10.14.1"}]
routes_added:
  description: Routes added.
  returned: always
  type: list
  elements: dict
routes_removed:
  description: Routes removed.
  returned: always
  type: list
  elements: dict
mtu:
  description: The MTU after the task.
  returned: always
  type: int
  sample: 9000
mtu_before:
  description: The MTU before the task.
  returned: always
  type: int
  sample: 1500
persist:
  description: How the configuration was persisted (netplan, networkmanager or none).
  returned: always
  type: str
netplan_path:
  description: The module's netplan file.
  returned: when persist is netplan
  type: str
  sample: /etc/netplan/40-dgx-spark-enp1s0f1np1.yaml
commands:
  description: The commands run (or that would run, in check mode), as argv lists.
  returned: always
  type: list
  elements: list
warnings:
  description: Same-subnet addresses on other interfaces, a netplan file nothing will read, and the like.
  returned: when any
  type: list
  elements: str
"""

import ipaddress
import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _fabric
from ansible_collections.dgx_spark.cluster.plugins.module_utils._runner import CommandRunner
from ansible_collections.dgx_spark.cluster.plugins.module_utils._tool_output import ibdev2netdev

IP_HINT = "install iproute2"


class FabricIP:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.runner = CommandRunner(module)
        self.ip = self.runner.which("ip", IP_HINT)
        self.commands = []
        self.warnings = []

    # ---------------------------------------------------------------- inputs
    def validate(self):
        params = self.params
        if params["interface"] is not None and not _fabric.valid_netdev(params["interface"]):
            self.module.fail_json(msg="interface %r is not a network device name (letters, digits, '_.:-', at most "
                                      "15 characters)" % params["interface"])
        if not 68 <= params["mtu"] <= 9216:
            self.module.fail_json(msg="mtu %d is outside 68..9216 (ConnectX-7 supports up to 9216; the fabric uses "
                                      "9000)" % params["mtu"])
        if params["twin"] not in (0, 1):
            self.module.fail_json(msg="twin must be 0 (first twin) or 1 (second twin), got %d" % params["twin"])
        if params["address"] is None:
            return None
        try:
            return str(_fabric.parse_interface_address(params["address"]))
        except ValueError as exc:
            self.module.fail_json(msg="address %r: %s" % (params["address"], exc))

    def wanted_routes(self, wanted):
        """The routes asked for, normalised; each gateway must sit on the address's subnet (on the link)."""
        routes = []
        for route in self.params["routes"]:
            try:
                route = _fabric.parse_route(route)
            except ValueError as exc:
                self.module.fail_json(msg="route %r: %s" % (route, exc))
            if wanted and ipaddress.IPv4Address(route["via"]) not in _fabric.parse_interface_address(wanted).network:
                self.module.fail_json(msg="route to %s: the gateway %s is not on %s, this interface's subnet; a route "
                                          "goes through a neighbour on the same link"
                                          % (route["to"], route["via"], wanted))
            routes.append(route)
        return routes

    def detect(self):
        links, ibdev_note = [], None
        ibdev = self.module.get_bin_path("ibdev2netdev")
        if ibdev:
            rc, out, err = self.runner.run([ibdev], timeout=20)
            if rc == 0:
                links = ibdev2netdev(out)
            else:
                ibdev_note = "ibdev2netdev failed (rc=%s): %s" % (rc, (err or out).strip()[-200:])
        candidates = _fabric.fabric_candidates(self.params["sysfs_net_path"], links)
        chosen, reason = _fabric.choose_twin(candidates, self.params["twin"])
        detection = {"reason": reason, "candidates": candidates}
        if ibdev_note:
            detection["ibdev2netdev"] = ibdev_note
        if chosen is None:
            self.module.fail_json(msg="fabric interface detection: %s" % reason, detection=detection)
        return chosen["name"], detection

    # ---------------------------------------------------------------- running state
    def ip_json(self, argv, what):
        """`ip -j <argv>` output (JSON text); fails naming what was being done."""
        return self.runner.check([self.ip, "-j"] + argv, what)

    def link_state(self, interface):
        rc, out, err = self.runner.run([self.ip, "-j", "link", "show", "dev", interface])
        if rc != 0:
            present = sorted(os.listdir(self.params["sysfs_net_path"])) if os.path.isdir(
                self.params["sysfs_net_path"]) else []
            self.module.fail_json(msg="interface %s does not exist on this host (it has: %s); check the name, or "
                                      "leave interface unset to detect the ConnectX twin"
                                      % (interface, ", ".join(present)), rc=rc, stdout=out, stderr=err)
        return _fabric.ip_link(out)

    def same_subnet_elsewhere(self, interface, address):
        network = _fabric.parse_interface_address(address).network
        out = self.ip_json(["-4", "address", "show"], "listing IPv4 addresses")
        for link in json.loads(out or "[]"):
            if link.get("ifname") == interface:
                continue
            for info in link.get("addr_info", []):
                other = "%s/%s" % (info.get("local"), info.get("prefixlen"))
                if info.get("family") == "inet" and _fabric.parse_interface_address(other).network == network:
                    self.warnings.append(
                        "%s also has %s in %s: ConnectX twins must be on different subnets, or RoCE/NCCL send both "
                        "twins' traffic through one of them" % (link.get("ifname"), other, network))

    def run_change(self, argv, what):
        self.commands.append(argv)
        if not self.module.check_mode:
            self.runner.check(argv, what, hint="run the task with become: true (root is needed)")

    # ---------------------------------------------------------------- persistence
    def netplan(self, interface, path, content_after):
        before = None
        if os.path.exists(path):
            with open(path) as handle:
                before = handle.read()
        changed = before != content_after
        diff = {"before": before or "", "after": content_after or "", "before_header": path, "after_header": path}
        if changed and not self.module.check_mode:
            if content_after is None:
                os.remove(path)
            else:
                self.write_netplan(path, content_after)
        elif not changed and content_after is not None:
            mode = os.stat(path).st_mode & 0o777
            if mode != 0o600:  # netplan warns about (and newer versions refuse) world-readable files
                changed = True
                if not self.module.check_mode:
                    os.chmod(path, 0o600)
        return changed, diff

    def write_netplan(self, path, content):
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        netplan_bin = self.module.get_bin_path("netplan")
        if netplan_bin:
            self.validate_netplan(netplan_bin, os.path.basename(path), content)
        else:
            self.warnings.append("netplan is not installed: %s is written but nothing reads it at boot" % path)
        handle, tmp = tempfile.mkstemp(dir=directory, prefix=".fabric_ip.")
        with os.fdopen(handle, "w") as out:
            out.write(content)
        os.chmod(tmp, 0o600)
        self.module.atomic_move(tmp, path)
        os.chmod(path, 0o600)

    def validate_netplan(self, netplan_bin, name, content):
        root = tempfile.mkdtemp(prefix="fabric_ip_netplan.")
        try:
            os.makedirs(os.path.join(root, "etc", "netplan"))
            with open(os.path.join(root, "etc", "netplan", name), "w") as out:
                out.write(content)
            os.chmod(os.path.join(root, "etc", "netplan", name), 0o600)
            argv = [netplan_bin, "generate", "--root-dir", root]
            rc, out, err = self.runner.run(argv, timeout=60)
            if rc != 0:
                self.runner.fail("netplan rejected the rendered file %s; nothing was changed" % name, argv, rc, out,
                                 err, rendered=content)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def networkmanager(self, nmcli, interface, addresses, mtu, routes, present):
        name = "dgx-spark-%s" % interface
        show = [nmcli, "-t", "-f", "ipv4.addresses,ipv4.routes,802-3-ethernet.mtu", "connection", "show", name]
        rc, out, _err = self.runner.run(show)
        exists = rc == 0
        before = _fabric.nm_profile(out) if exists else None
        after = dict({"addresses": addresses, "mtu": mtu}, **({"routes": routes} if routes else {})) if present else None
        diff = {"before": "%s\n" % before if before else "", "after": "%s\n" % after if after else "",
                "before_header": "NetworkManager connection %s" % name,
                "after_header": "NetworkManager connection %s" % name}
        if before == after:
            return False, diff, before
        if present:
            action = "modify" if exists else "add"
            self.run_change(_fabric.nm_connection_argv(nmcli, action, name, interface, addresses, mtu, routes),
                            "nmcli connection %s %s" % (action, name))
            self.run_change([nmcli, "connection", "up", name], "nmcli connection up %s" % name)
        else:
            self.run_change([nmcli, "connection", "delete", name], "nmcli connection delete %s" % name)
        return True, diff, before

    def persist_method(self, interface):
        choice = self.params["persist"]
        if choice in ("netplan", "none"):
            return choice, None
        nmcli = self.module.get_bin_path("nmcli")
        if choice == "networkmanager":
            if not nmcli:
                self.module.fail_json(msg="persist=networkmanager but nmcli is not installed on this host")
            return choice, nmcli
        if nmcli:
            rc, out, _err = self.runner.run([nmcli, "-t", "-f", "DEVICE,STATE", "device"])
            if rc == 0 and _fabric.nm_device_managed(out, interface):
                return "networkmanager", nmcli
        return "netplan", None

    # ---------------------------------------------------------------- main flow
    def execute(self):
        params = self.params
        wanted = self.validate()
        wanted_routes = self.wanted_routes(wanted)
        result = {"changed": False, "detected": params["interface"] is None}
        interface = params["interface"]
        if interface is None:
            interface, result["detection"] = self.detect()
        result["interface"] = interface
        link = self.link_state(interface)
        current = _fabric.ip_addresses(self.ip_json(["-4", "address", "show", "dev", interface],
                                                    "listing the addresses of %s" % interface))
        present = params["state"] == "present"
        method, nmcli = self.persist_method(interface)
        result["persist"] = method
        path = params["netplan_path"] or "/etc/netplan/40-dgx-spark-%s.yaml" % interface
        current_routes = _fabric.ip_routes(self.ip_json(["-4", "route", "show", "dev", interface],
                                                        "listing the routes of %s" % interface))
        owned, owned_routes = [], []
        if method == "netplan":
            result["netplan_path"] = path
            if os.path.exists(path):
                with open(path) as handle:
                    text = handle.read()
                owned = _fabric.owned_addresses(text)
                owned_routes = [_fabric.parse_route(route) for route in _fabric.owned_routes(text)]
        add, remove = _fabric.address_plan(current, wanted, owned, params["state"], params["purge_other_addresses"])
        if present:
            self.same_subnet_elsewhere(interface, wanted)

        persisted, diff = False, None
        if method == "netplan":
            content = _fabric.render_netplan(interface, [wanted], params["mtu"], wanted_routes) if present else None
            persisted, diff = self.netplan(interface, path, content)
        elif method == "networkmanager":
            persisted, diff, profile = self.networkmanager(nmcli, interface, [wanted] if present else [],
                                                           params["mtu"], wanted_routes, present)
            owned_routes = (profile or {}).get("routes", [])
        add_routes, remove_routes = _fabric.route_plan(current_routes, wanted_routes, owned_routes,
                                                       params["state"])

        for route in remove_routes:
            self.run_change([self.ip, "route", "del", route["to"], "via", route["via"], "dev", interface],
                            "removing the route to %s from %s" % (route["to"], interface))
        for address in remove:
            self.run_change([self.ip, "address", "del", address, "dev", interface],
                            "removing %s from %s" % (address, interface))
        mtu_after = link["mtu"]
        if present and link["mtu"] != params["mtu"]:
            self.run_change([self.ip, "link", "set", "dev", interface, "mtu", str(params["mtu"])],
                            "setting MTU %d on %s" % (params["mtu"], interface))
            mtu_after = params["mtu"]
        if present and not link["admin_up"]:
            self.run_change([self.ip, "link", "set", "dev", interface, "up"], "bringing %s up" % interface)
        for address in add:
            self.run_change([self.ip, "address", "add", address, "dev", interface],
                            "adding %s to %s" % (address, interface))
        for route in add_routes:
            self.run_change([self.ip, "route", "replace", route["to"], "via", route["via"], "dev", interface],
                            "adding the route to %s via %s on %s" % (route["to"], route["via"], interface))

        result.update({
            "changed": bool(self.commands) or persisted,
            "addresses": [a for a in current if a not in remove] + add,
            "added": add, "removed": remove, "mtu": mtu_after, "mtu_before": link["mtu"],
            "routes": [r for r in current_routes if r not in remove_routes and (r in wanted_routes or r in owned_routes)]
            + add_routes,
            "routes_added": add_routes, "routes_removed": remove_routes,
            "commands": self.commands,
        })
        if diff is not None and self.module._diff:
            result["diff"] = diff
        if self.warnings:
            result["warnings"] = self.warnings
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interface=dict(type="str"),
            address=dict(type="str"),
            mtu=dict(type="int", default=9000),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            twin=dict(type="int", default=0),
            persist=dict(type="str", choices=["auto", "netplan", "networkmanager", "none"], default="auto"),
            netplan_path=dict(type="path"),
            routes=dict(type="list", elements="dict", default=[], options=dict(
                to=dict(type="str", required=True), via=dict(type="str", required=True))),
            purge_other_addresses=dict(type="bool", default=False),
            sysfs_net_path=dict(type="path", default="/sys/class/net"),
        ),
        required_if=[("state", "present", ["address"])],
        supports_check_mode=True,
    )
    module.exit_json(**FabricIP(module).execute())


if __name__ == "__main__":
    main()
