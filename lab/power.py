"""The lab nodes' power: what a Spark's firmware and NIC do when it sleeps and when a magic packet arrives.

`systemctl suspend` on a lab node runs systemd's real path (logind, suspend.target, systemd-suspend.service); the
lab's drop-in for that service (lab.sh install_power) writes a request under the node's /run and waits. This
program, on the lab host, sees the request, takes the node's links down (a sleeping box answers nothing: no ARP, no
TCP handshake) and freezes every process of the node (podman pause). It listens on the lab's management bridge for
frames carrying a Wake-on-LAN magic pattern (six 0xff bytes, then a MAC sixteen times, anywhere in the frame: UDP
or EtherType 0x0842, as a NIC matches it) and thaws the sleeping node whose management NIC has that MAC, but only
when that NIC is armed (`ethtool -s <nic> wol g`, kept by the ethtool double under the node's /run, so a reboot
disarms it as on real hardware).

  power.py serve STATE_DIR BRIDGE NODE...   the listener (lab.sh up starts it, lab.sh down stops it)
  power.py thaw STATE_DIR NODE              wake a node without a packet (test cleanup)
"""

import json
import os
import select
import socket
import subprocess
import sys
import time

PREFIX = os.environ.get("DGX_SPARK_LAB_PREFIX", "dgxspark-lab") + "-"  # the nodes' containers (lab.sh)
REQUEST = "run/dgx-spark-lab/power/request"
WOL_DIR = "run/dgx-spark-lab/wol"
MAGIC_SYNC = b"\xff" * 6
ETH_P_ALL = 0x0003


def log(message):
    sys.stdout.write("%s %s\n" % (time.strftime("%H:%M:%S"), message))
    sys.stdout.flush()


def podman(*args):
    return subprocess.run(["podman"] + list(args), capture_output=True, text=True, check=False)


def container_pid(node):
    done = podman("inspect", "-f", "{{.State.Pid}}", PREFIX + node)
    pid = done.stdout.strip()
    return int(pid) if done.returncode == 0 and pid.isdigit() and pid != "0" else None


def in_node(pid, relpath):
    return "/proc/%d/root/%s" % (pid, relpath)


def node_links(pid):
    """The node's interfaces but lo: [(name, mac)]."""
    done = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-j", "link", "show"], capture_output=True,
                          text=True, check=True)
    return [(link["ifname"], link.get("address", "")) for link in json.loads(done.stdout) if link["ifname"] != "lo"]


def set_links(pid, links, state):
    for name, _mac in links:
        subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "link", "set", "dev", name, state], check=False)


def magic_macs(frame):
    """Every MAC whose magic pattern the frame carries."""
    found, start = set(), frame.find(MAGIC_SYNC)
    while start >= 0:
        body = frame[start + 6:start + 6 + 96]
        if len(body) == 96 and body == body[:6] * 16:
            found.add(":".join("%02x" % byte for byte in body[:6]))
        start = frame.find(MAGIC_SYNC, start + 1)
    return found


class Power:
    def __init__(self, state_dir, nodes):
        self.state_dir, self.nodes, self.pids = state_dir, nodes, {}
        os.makedirs(state_dir, exist_ok=True)

    def pid(self, node):
        """The node's init pid, asked of podman again only when that process is gone or every 10 s (a restart)."""
        pid, asked = self.pids.get(node, (None, 0))
        if pid is None or not os.path.exists("/proc/%d" % pid) or time.time() - asked > 10:
            pid = container_pid(node)
            self.pids[node] = (pid, time.time())
        return pid

    def record(self, node):
        return os.path.join(self.state_dir, "%s.json" % node)

    def asleep(self, node):
        try:
            with open(self.record(node)) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def suspend(self, node, pid):
        links = node_links(pid)
        with open(self.record(node), "w") as handle:
            json.dump({"pid": pid, "links": links, "since": time.time()}, handle)
        set_links(pid, links, "down")
        done = podman("pause", PREFIX + node)
        log("%s suspended (links %s down, processes frozen: %s)" % (
            node, ",".join(link[0] for link in links), "ok" if done.returncode == 0 else done.stderr.strip()))

    def thaw(self, node, why):
        sleeping = self.asleep(node)
        if sleeping is None:
            return
        podman("unpause", PREFIX + node)
        set_links(sleeping["pid"], sleeping["links"], "up")
        try:
            os.unlink(in_node(sleeping["pid"], REQUEST))
        except OSError:
            pass
        os.unlink(self.record(node))
        log("%s woke (%s)" % (node, why))

    def armed(self, pid, nic):
        try:
            with open(in_node(pid, os.path.join(WOL_DIR, nic))) as handle:
                return "g" in handle.read().strip()
        except OSError:
            return False

    def packet(self, frame):
        for mac in magic_macs(frame):
            for node in self.nodes:
                sleeping = self.asleep(node)
                if not sleeping:
                    continue
                nic = next((name for name, address in sleeping["links"] if address == mac), None)
                if nic is None:
                    continue
                if self.armed(sleeping["pid"], nic):
                    self.thaw(node, "magic packet for %s on %s" % (mac, nic))
                else:
                    log("%s: magic packet for %s ignored, Wake-on-LAN is not armed on %s" % (node, mac, nic))

    def watch(self):
        for node in self.nodes:
            if self.asleep(node):
                continue
            pid = self.pid(node)
            if pid and os.path.exists(in_node(pid, REQUEST)):
                self.suspend(node, pid)


def serve(state_dir, bridge, nodes):
    power = Power(state_dir, nodes)
    listener = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    listener.bind((bridge, 0))
    log("listening for magic packets on %s for %s" % (bridge, ", ".join(nodes)))
    while True:
        if select.select([listener], [], [], 0.2)[0]:
            power.packet(listener.recv(65535))
        power.watch()


def main(argv):
    if len(argv) >= 4 and argv[0] == "serve":
        serve(argv[1], argv[2], argv[3:])
    elif len(argv) == 3 and argv[0] == "thaw":
        Power(argv[1], [argv[2]]).thaw(argv[2], "thawed by the lab")
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
