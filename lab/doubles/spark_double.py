"""Test doubles for the DGX Spark tools the lab lacks hardware for.

One program, run by the `spark-double` wrapper installed under each tool's name (nvidia-smi, ibdev2netdev, ibv_devinfo, show_gids, ethtool, rdma, ib_write_bw,
ib_write_lat, mpirun, all_reduce_perf, all_gather_perf). Each replays recorded outputs of the real
tool (tests/fixtures, mounted at $DGX_LAB_FIXTURES) for the argument forms the roles use, and exits
non-zero with a message for any other form. Link state, addresses and reachability are the lab's real ones
(sysfs, real TCP between the nodes, real ssh), so a double fails where the real tool would.

The node's scenario (healthy, degraded_link, no_gpu, nccl_slow, nccl_hang, k8s_api_down, wol_unsupported) is read from $DGX_LAB_SCENARIO_FILE.
"""

import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import time

FIXTURES = os.environ.get("DGX_LAB_FIXTURES", "/opt/dgx-spark-lab/fixtures")
SCENARIO_FILE = os.environ.get("DGX_LAB_SCENARIO_FILE", "/etc/dgx-spark-lab/scenario")
SYS_NET = os.environ.get("DGX_LAB_SYS_NET", "/sys/class/net")
SCENARIOS = ("healthy", "degraded_link", "no_gpu", "nccl_slow", "nccl_hang", "k8s_api_down", "wol_unsupported")

# The four ConnectX-7 functions of a Spark: RDMA device -> netdev (order as ibdev2netdev prints it).
RDMA_DEVICES = (
    ("rocep1s0f0", "enp1s0f0np0"),
    ("rocep1s0f1", "enp1s0f1np1"),
    ("roceP2p1s0f0", "enP2p1s0f0np0"),
    ("roceP2p1s0f1", "enP2p1s0f1np1"),
)
FABRIC_LINK_MBPS = {"healthy": 200000, "degraded_link": 100000}
PERFTEST_PORT = 18515


class Refused(Exception):
    """An argument form the double does not answer; the real tool might, the roles must not use it."""


def scenario():
    try:
        with open(SCENARIO_FILE) as handle:
            name = handle.read().strip() or "healthy"
    except OSError:
        return "healthy"
    if name not in SCENARIOS:
        die("lab double: unknown scenario %r in %s (known: %s)" % (name, SCENARIO_FILE, ", ".join(SCENARIOS)), 3)
    return name


def die(msg, rc=1):
    sys.stderr.write(msg.rstrip("\n") + "\n")
    sys.exit(rc)


def fixture(relpath):
    """A recorded output: the file's text below its `# ---` header, prompt lines dropped."""
    with open(os.path.join(FIXTURES, relpath)) as handle:
        body = handle.read().split("\n# ---\n", 1)[1]
    return "".join(line for line in body.splitlines(True) if not re.match(r"^\S+@\S+:.*[$#] ", line))


def link_up(netdev):
    try:
        with open(os.path.join(SYS_NET, netdev, "operstate")) as handle:
            return handle.read().strip() == "up"
    except OSError:
        return False


def netdev_ipv4(netdev):
    """IPv4 interfaces (address/prefix) on netdev, from `ip -o -4 addr show dev`."""
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", netdev], capture_output=True, text=True,
                             check=False).stdout
    except OSError:
        return []
    return [ipaddress.ip_interface(m) for m in re.findall(r"inet (\S+)", out)]


# ---------------------------------------------------------------- nvidia-smi
def gb10_values():
    """Field -> value of the GB10 the lab plays, from the recorded and derived query outputs."""
    fields = ("index", "name", "uuid", "pci.bus_id", "driver_version", "compute_cap",
              "memory.total", "memory.used", "memory.free")
    row = [cell.strip() for cell in fixture("derived/nvidia_smi_gb10_module_query.txt").strip().split(",")]
    values = dict(zip(fields, row))
    # temperature and power as in nvidia-smi/gb10_query_csv_header_partial_curriculum_audit.txt
    values.update({"temperature.gpu": ("39", ""), "power.draw": ("3.74", " W"), "utilization.gpu": ("0", " %"),
                   "utilization.memory": ("0", " %")})
    return values


HEADER_UNITS = {"memory.total": " [MiB]", "memory.used": " [MiB]", "memory.free": " [MiB]",
                "power.draw": " [W]", "utilization.gpu": " [%]", "utilization.memory": " [%]"}


def nvidia_smi(args):
    if scenario() == "no_gpu":
        sys.stdout.write(fixture("derived/nvidia_smi_driver_not_loaded.txt"))
        sys.exit(9)
    if not args:
        sys.stdout.write(fixture("nvidia-smi/gb10_table_arctictraining_pr345.txt"))
        return
    if args == ["-L"]:
        values = gb10_values()
        print("GPU 0: %s (UUID: %s)" % (values["name"], values["uuid"]))
        return
    opts = dict(arg.split("=", 1) for arg in args if arg.startswith("--") and "=" in arg)
    if len(opts) != len(args) or "--format" not in opts or not opts["--format"].startswith("csv"):
        raise Refused("nvidia-smi " + " ".join(args))
    fmt = opts["--format"].split(",")
    if set(fmt) - {"csv", "noheader", "nounits"}:
        die('"%s" is not a valid format.' % opts["--format"], 2)
    if "--query-compute-apps" in opts:
        if "noheader" not in fmt:
            print(", ".join(opts["--query-compute-apps"].split(",")))
        return  # no process holds the GPU in the lab
    if "--query-gpu" not in opts or len(opts) != 2:
        raise Refused("nvidia-smi " + " ".join(args))
    values = gb10_values()
    fields = opts["--query-gpu"].split(",")
    for field in fields:
        if field not in values:
            die('Field "%s" is not a valid field to query.' % field, 2)
    if "noheader" not in fmt:
        print(", ".join(f + ("" if "nounits" in fmt else HEADER_UNITS.get(f, "")) for f in fields))
    cells = []
    for field in fields:
        value = values[field]
        if isinstance(value, tuple):
            value = value[0] + ("" if "nounits" in fmt else value[1])
        cells.append(value)
    print(", ".join(cells))


# ---------------------------------------------------------------- link state tools
def ibdev2netdev(args):
    if args:
        raise Refused("ibdev2netdev " + " ".join(args))
    for rdma_dev, netdev in RDMA_DEVICES:
        print("%s port 1 ==> %s (%s)" % (rdma_dev, netdev, "Up" if link_up(netdev) else "Down"))


def rdma(args):
    if args not in (["link"], ["link", "show"]):
        raise Refused("rdma " + " ".join(args))
    for rdma_dev, netdev in RDMA_DEVICES:
        up = link_up(netdev)
        print("link %-15s state %s physical_state %s netdev %s"
              % (rdma_dev + "/1", "ACTIVE" if up else "DOWN", "LINK_UP" if up else "DISABLED", netdev))


def ethtool(args):
    if len(args) == 4 and args[0] == "-s" and args[2] == "wol":
        return ethtool_set_wol(args[1], args[3])
    if len(args) != 1 or args[0].startswith("-"):
        raise Refused("ethtool " + " ".join(args))
    netdev = args[0]
    if not os.path.isdir(os.path.join(SYS_NET, netdev)):
        die("netlink error: no device matches name (offset 24)\nnetlink error: No such device", 75)
    if netdev not in dict((n, d) for d, n in RDMA_DEVICES):
        return ethtool_lan(netdev)
    up = link_up(netdev)
    speed = "%dMb/s" % FABRIC_LINK_MBPS.get(scenario(), 200000) if up else "Unknown!"
    print("Settings for %s:" % netdev)
    print("\tSupported ports: [ FIBRE ]")
    print("\tSpeed: %s" % speed)
    print("\tDuplex: %s" % ("Full" if up else "Unknown! (255)"))
    print("\tPort: Direct Attach Copper")
    print("\tAuto-negotiation: on")
    print("\tLink detected: %s" % ("yes" if up else "no"))


# A LAN NIC's Wake-on-LAN: armed modes live under /run (a reboot disarms them, as the NIC's driver does) unless the
# boot applies them again (a systemd .link WakeOnLan=, which lab-link-wol does in the lab as udev does).
WOL_DIR = os.environ.get("DGX_LAB_WOL_DIR", "/run/dgx-spark-lab/wol")
WOL_SUPPORTED = "power/ethtool-realtek-rtl8126-wake-on-g.txt"  # Supports Wake-on: pumbg
WOL_UNSUPPORTED = "power/ethtool-no-wake-on-lines.txt"  # the wired block: no Wake-on lines at all


def wol_armed(netdev):
    try:
        with open(os.path.join(WOL_DIR, netdev)) as handle:
            return handle.read().strip() or "d"
    except OSError:
        return "d"


def ethtool_lan(netdev):
    """The recorded block of a NIC with Wake-on-LAN (Wake-on: the armed modes), or, in the wol_unsupported
    scenario, of one without any Wake-on lines; both under this NIC's name, link as the lab's."""
    if scenario() == "wol_unsupported":
        block = fixture(WOL_UNSUPPORTED).split("$ sudo ethtool enp4s0\n", 1)[1].replace("enp4s0", netdev)
    else:
        block = re.sub(r"(\n\s*Wake-on: )\w+", lambda m: m.group(1) + wol_armed(netdev),
                       fixture(WOL_SUPPORTED).replace("enp14s0", netdev))
    link = "yes" if link_up(netdev) else "no"
    sys.stdout.write(re.sub(r"Link detected: \w+", "Link detected: " + link, block))


def ethtool_set_wol(netdev, modes):
    problem = set_wol(netdev, modes)
    if problem:
        die(*problem)


def set_wol(netdev, modes):
    """Arm the modes on the NIC; (message, exit code) when the real ethtool would refuse."""
    if not os.path.isdir(os.path.join(SYS_NET, netdev)):
        return "netlink error: no device matches name (offset 24)\nnetlink error: No such device", 75
    if not re.match(r"^[pumbgsafd]+$", modes):
        return "ethtool: bad command line argument(s)\nFor more information run ethtool -h", 1
    supported = "" if scenario() == "wol_unsupported" or netdev in dict((n, d) for d, n in RDMA_DEVICES) else "pumbg"
    if modes != "d" and any(mode not in supported for mode in modes):
        return "netlink error: Operation not supported", 75
    os.makedirs(WOL_DIR, exist_ok=True)
    with open(os.path.join(WOL_DIR, netdev), "w") as handle:
        handle.write(modes + "\n")
    return None


def lab_link_wol(args):
    """At boot, what udev does with systemd .link files: the first file (by name, over /etc, /run, /usr/lib) whose
    [Match] fits a NIC (MACAddress=, OriginalName=) applies its [Link] WakeOnLan= (magic -> g)."""
    import configparser
    import glob
    if args:
        raise Refused("lab-link-wol " + " ".join(args))
    files = {}
    dirs = os.environ.get("DGX_LAB_NETWORK_DIRS", "/usr/lib/systemd/network:/run/systemd/network:/etc/systemd/network")
    for directory in dirs.split(":"):
        for found in glob.glob(os.path.join(directory, "*.link")):
            files[os.path.basename(found)] = found  # /etc overrides /run overrides /usr/lib, by name
    for netdev in sorted(os.listdir(SYS_NET)):
        mac = netdev_sysfs(netdev, "address", "")
        for name in sorted(files):
            link = configparser.ConfigParser(strict=False, interpolation=None)
            link.optionxform = str
            link.read(files[name])
            match = dict(link.items("Match")) if link.has_section("Match") else {}
            if match.get("MACAddress", mac).lower() != mac or match.get("OriginalName", netdev) != netdev:
                continue
            wake = link.get("Link", "WakeOnLan", fallback="")
            if wake:
                problem = set_wol(netdev, "g" if wake == "magic" else "d")
                print("%s: WakeOnLan=%s from %s%s" % (netdev, wake, files[name],
                                                      ": " + problem[0] if problem else ""))
            break


def netdev_sysfs(netdev, name, default=None):
    try:
        with open(os.path.join(SYS_NET, netdev, name)) as handle:
            return handle.read().strip()
    except OSError:
        return default


def roce_active_mtu(netdev_mtu):
    """The RoCE path MTU the kernel derives from the netdev MTU (iboe_get_mtu: minus 96 bytes of headers)."""
    payload = netdev_mtu - 96
    return next((mtu for mtu in (4096, 2048, 1024, 512, 256) if payload >= mtu), 256)


IB_MTU_ENUM = {256: 1, 512: 2, 1024: 3, 2048: 4, 4096: 5}


def ibv_devinfo(args):
    """`ibv_devinfo [-d DEV]` in the layout of rdma/ibv_devinfo_spark_4hca_elizabetht.txt, from the node's links."""
    if args and (len(args) != 2 or args[0] not in ("-d", "--ib-dev")):
        raise Refused("ibv_devinfo " + " ".join(args))
    devices = [(d, n) for d, n in RDMA_DEVICES if not args or d == args[1]]
    if not devices:
        die("libibverbs: Warning: couldn't open device %s\nIB device '%s' wasn't found" % (args[1], args[1]), 255)
    blocks = fixture("rdma/ibv_devinfo_spark_4hca_elizabetht.txt").split("\n\n")
    recorded = dict((block.split("\t", 1)[1].split("\n", 1)[0].strip(), block) for block in blocks if block.strip())
    out = []
    for rdma_dev, netdev in devices:
        block = recorded[rdma_dev]
        up = link_up(netdev)
        mtu = roce_active_mtu(int(netdev_sysfs(netdev, "mtu", "1500")))
        block = re.sub(r"state:(\s+)PORT_ACTIVE \(4\)", r"state:\g<1>%s" % ("PORT_ACTIVE (4)" if up else "PORT_DOWN (1)"),
                       block)
        block = re.sub(r"active_mtu:(\s+)\d+ \(\d\)", r"active_mtu:\g<1>%d (%d)" % (mtu, IB_MTU_ENUM[mtu]), block)
        out.append(block.rstrip("\n"))
    print("\n\n".join(out) + "\n")


def show_gids(args):
    """`show_gids [DEV]` in the layout of rdma/show_gids_gb10_sean.txt: link-local GIDs at 0/1 (v1/v2), then each
    IPv4 address of the netdev as an IPv4-mapped GID at 2/3, 4/5, ... as the kernel's RoCE GID table holds them."""
    if len(args) > 1:
        raise Refused("show_gids " + " ".join(args))
    devices = [(d, n) for d, n in RDMA_DEVICES if not args or d == args[0]]
    print("DEV\tPORT\tINDEX\tGID\t\t\t\t\tIPv4  \t\tVER\tDEV")
    print("---\t----\t-----\t---\t\t\t\t\t------------  \t---\t---")
    count = 0
    for rdma_dev, netdev in devices:
        if not os.path.isdir(os.path.join(SYS_NET, netdev)):
            continue
        mac = netdev_sysfs(netdev, "address", "00:00:00:00:00:00").split(":")
        eui = "%02x%s:%sff:fe%s:%s%s" % (int(mac[0], 16) ^ 2, mac[1], mac[2], mac[3], mac[4], mac[5])
        rows = [("fe80:0000:0000:0000:%s" % eui, "")] * 2
        for iface in netdev_ipv4(netdev):
            packed = iface.ip.packed
            mapped = "0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x" % tuple(bytearray(packed))
            rows += [(mapped, str(iface.ip))] * 2
        for index, (gid, ipv4) in enumerate(rows):
            print("%s\t1\t%d\t%s\t%s\t\tv%d\t%s" % (rdma_dev, index, gid, ipv4, 1 + index % 2, netdev))
            count += 1
    print("n_gids_found=%d" % count)


# ---------------------------------------------------------------- perftest
PERFTEST_FLAGS_WITH_VALUE = {"-d", "-x", "-q", "-p", "-D", "-s", "-n", "-i", "-m", "--force-link", "--ib-dev",
                             "--gid-index", "--qp", "--port", "--duration", "--size", "--iters", "--ib-port",
                             "--mtu"}
PERFTEST_FLAGS = {"--report_gbits", "-R", "-F", "--rdma_cm", "--CPU-freq", "-a", "--all"}


def parse_perftest(tool, args):
    opts, positional = {}, []
    items = iter(args)
    for arg in items:
        if arg in PERFTEST_FLAGS_WITH_VALUE:
            try:
                opts[arg] = next(items)
            except StopIteration:
                die("%s: option %s requires an argument" % (tool, arg), 1)
        elif arg in PERFTEST_FLAGS:
            opts[arg] = True
        elif arg.startswith("-"):
            raise Refused("%s %s" % (tool, " ".join(args)))
        else:
            positional.append(arg)
    if len(positional) > 1:
        raise Refused("%s %s" % (tool, " ".join(args)))
    device = opts.get("-d") or opts.get("--ib-dev")
    if device is None:
        raise Refused("%s without -d <device> (the lab answers only runs pinned to a twin)" % tool)
    netdevs = dict(RDMA_DEVICES)
    if device not in netdevs:
        die(" Couldn't find device %s\n Unable to find the Infiniband/RoCE device" % device, 1)
    port = int(opts.get("-p") or opts.get("--port") or PERFTEST_PORT)
    return opts, (positional[0] if positional else None), device, netdevs[device], port


def perftest_result_text(tool, opts, device, peer_scenario="healthy"):
    """The recorded client output for this tool, scaled to the scenario and in the unit asked for.

    A link is as slow as its slower end: degraded_link on either node halves the figure."""
    if tool == "ib_write_lat":
        return fixture("perftest/ib_write_lat_spark_eugr.txt")
    text = fixture("perftest/ib_write_bw_spark_eugr_q4_rdmacm.txt").replace("rocep1s0f1", device)
    factor = 0.5 if "degraded_link" in (scenario(), peer_scenario) else 1.0
    # healthy per-twin figure: the ~92.6 Gb/s of the NVIDIA guide's single-rail run
    # (perftest/ib_write_bw_spark_playbook_run_infinitely_rail1.txt); degraded: half of it (link at 100G).
    peak, average = 92.58 * factor, 92.57 * factor
    gbits = bool(opts.get("--report_gbits"))
    unit = "Gb/sec" if gbits else "MB/sec"
    scale = 1.0 if gbits else 1e9 / 8 / 1e6

    def row(match):
        return " %-10s %-16s %-18.2f %-20.2f %s" % (
            match.group(1), match.group(2), peak * scale, average * scale, match.group(3))
    text = re.sub(r"^ (65536)\s+(\d+)\s+[\d.]+\s+[\d.]+\s+([\d.]+)$", row, text, flags=re.M)
    return text.replace("Gb/sec", unit)


def perftest(tool, args):
    opts, server_ip, device, netdev, port = parse_perftest(tool, args)
    if not link_up(netdev):
        die(" Port number 1 state is Down\n Couldn't set up %s: link of %s is down" % (device, netdev), 1)
    if server_ip is None:
        return perftest_server(tool, opts, device, netdev, port)
    return perftest_client(tool, opts, device, netdev, server_ip, port)


def perftest_server(tool, opts, device, netdev, port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("0.0.0.0", port))
    except OSError as exc:
        die(" Couldn't bind to port %d: %s\n Unable to open file descriptor for socket connection" % (port, exc), 1)
    listener.listen(1)
    sys.stdout.write(fixture("perftest/ib_write_bw_server_waiting_dell_gb10_trevorsquillario.txt"))
    sys.stdout.flush()
    conn, peer = listener.accept()
    with conn:
        # the client's queue pair reaches this device only from the twin's own subnet (a ring's links differ)
        if not any(ipaddress.ip_address(peer[0]) in iface.network for iface in netdev_ipv4(netdev)):
            conn.sendall(b"refused\n")
            die(" Failed to exchange data between server and clients\n %s (%s) has no address on the subnet of the "
                "client %s" % (device, netdev, peer[0]), 1)
        conn.sendall(b"%s %s\n" % (tool.encode(), device.encode()))
        request = conn.makefile().readline().split()
        if not request or request[0] != tool:
            die(" Client is not a %s client: %r" % (tool, request), 1)
        conn.sendall(b"done %s\n" % scenario().encode())
    sys.stdout.write(perftest_result_text(tool, opts, device, request[2] if len(request) > 2 else "healthy"))


def perftest_client(tool, opts, device, netdev, server_ip, port):
    try:
        target = ipaddress.ip_address(server_ip)
    except ValueError:
        die(" Couldn't resolve %s" % server_ip, 1)
    # RoCE reaches the peer through the device's own GID: the server must be on this twin's subnet.
    if not any(target in iface.network for iface in netdev_ipv4(netdev)):
        die(" Couldn't connect to %s:%d\n %s (%s) has no address on the subnet of %s"
            % (server_ip, port, device, netdev, server_ip), 1)
    deadline = time.monotonic() + 5
    while True:
        try:
            conn = socket.create_connection((server_ip, port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                die(" Couldn't connect to %s:%d\n Unable to open file descriptor for socket connection"
                    % (server_ip, port), 1)
            time.sleep(0.2)
    with conn:
        reader = conn.makefile()
        banner = reader.readline().split()
        if not banner or banner[0] != tool:
            die(" Server at %s:%d is not a %s server" % (server_ip, port, tool), 1)
        conn.sendall(b"%s %s %s\n" % (tool.encode(), device.encode(), scenario().encode()))
        done = reader.readline().split()
    sys.stdout.write(perftest_result_text(tool, opts, device, done[1] if len(done) > 1 else "healthy"))


# ---------------------------------------------------------------- mpirun + nccl-tests
NCCL_TESTS = {"all_reduce_perf": "derived/all_reduce_perf_2x_spark_from_hugoblog.txt",
              "all_gather_perf": "nccl/all_gather_perf_512M-16G_merged_nics_spark_hugoblog.txt"}
MPIRUN_FLAGS_WITH_VALUE = {"-np", "-n", "-H", "--host", "-x", "--bind-to", "--map-by", "--mca", "-mca",
                           "--timeout"}
MPIRUN_FLAGS = {"--allow-run-as-root", "--oversubscribe", "--tag-output", "--report-bindings"}
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text):
    match = re.match(r"^(\d+)([KMG]?)$", text)
    if not match:
        die("nccl-tests: invalid size %r" % text, 1)
    return int(match.group(1)) * SIZE_UNITS[match.group(2)]


def parse_mpirun(args):
    opts = {"-x": [], "--mca": []}
    items = iter(args)
    for arg in items:
        if arg in MPIRUN_FLAGS_WITH_VALUE:
            value = next(items, None)
            if value is None:
                die("mpirun: option %s requires an argument" % arg, 1)
            if arg in ("-x", "--mca", "-mca"):
                opts["--mca" if arg == "-mca" else arg].append(value if arg == "-x" else (value, next(items, "")))
            else:
                opts[arg] = value
        elif arg in MPIRUN_FLAGS:
            opts[arg] = True
        elif arg.startswith("-"):
            raise Refused("mpirun " + " ".join(args))
        else:
            program = arg
            return opts, program, list(items)
    die("mpirun: no executable given", 1)


def mpirun(args):
    opts, program, program_args = parse_mpirun(args)
    name = os.path.basename(program)
    if name not in NCCL_TESTS:
        raise Refused("mpirun of %s (the lab runs nccl-tests only)" % program)
    hosts = [entry.split(":")[0] for entry in (opts.get("-H") or opts.get("--host") or "").split(",") if entry]
    nprocs = int(opts.get("-np") or opts.get("-n") or 0)
    if not hosts or nprocs != len(hosts):
        raise Refused("mpirun with -np %s and -H %s (the roles run one rank per node)" % (nprocs, hosts))
    sizes = parse_nccl_args(name, program_args)
    local = {str(iface.ip) for netdev in os.listdir(SYS_NET) for iface in netdev_ipv4(netdev)}
    ranks = []
    for host in hosts:
        argv = [program, "--lab-rank"] if host in local else \
            ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", "ConnectTimeout=5",
             host, program, "--lab-rank"]
        # A rank lives until its stdin closes: through ssh, that is when this mpirun ends its session.
        ranks.append((host, subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True)))

    def stop(signum, frame):
        for rank in ranks:
            rank[1].terminate()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ready, modes = [], []
    for host, proc in ranks:
        line = proc.stdout.readline().strip()
        if line.split()[:1] == ["rank-ready"]:
            modes += line.split()[1:]
        else:
            proc.wait()
            die("--------------------------------------------------------------------------\n"
                "ORTE was unable to reliably start one or more daemons.\n"
                "host %s: %s\n"
                "--------------------------------------------------------------------------"
                % (host, (proc.stderr.read() or line).strip()), 1)
        ready.append(proc)
    # a collective runs at its slowest rank's pace, and hangs when one rank hangs
    print_nccl_result(name, sizes, next((m for m in ("nccl_hang", "nccl_slow") if m in modes), "healthy"))
    for proc in ready:
        proc.stdin.close()
    for proc in ready:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.terminate()


def parse_nccl_args(name, args):
    opts = dict(zip(args[::2], args[1::2]))
    known = {"-b", "-e", "-f", "-g", "-n", "-w", "-c", "-t", "-d", "-o"}
    if len(args) % 2 or set(opts) - known:
        raise Refused("%s %s" % (name, " ".join(args)))
    low, high = parse_size(opts.get("-b", "32M")), parse_size(opts.get("-e", "32M"))
    if opts.get("-g", "1") != "1":
        die("%s: the lab nodes have one GPU each (-g %s)" % (name, opts["-g"]), 1)
    return low, high


def print_nccl_result(name, sizes, mode):
    low, high = sizes
    text = fixture(NCCL_TESTS[name])
    if mode == "nccl_hang":
        head = text.split("#       size", maxsplit=1)[0]
        sys.stdout.write(head)
        sys.stdout.flush()
        while True:  # a hung collective: only a timeout ends it
            time.sleep(3600)
    factor = 0.5 if mode == "nccl_slow" else 1.0
    kept, busbws = [], []
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0].isdigit() and len(cells) >= 13:
            size = int(cells[0])
            if not low <= size <= high:
                continue
            for col in (6, 7, 10, 11):
                cells[col] = "%.2f" % (float(cells[col]) * factor)
            busbws += [float(cells[7]), float(cells[11])]
            line = "%12s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s" % tuple(cells[:13])
            kept.append(line)
        elif line.startswith("# Avg bus bandwidth"):
            if not kept:
                die("lab double: %s has no recorded row between %d and %d bytes" % (name, low, high), 2)
            kept.append("# Avg bus bandwidth    : %.4f " % (sum(busbws) / len(busbws)))
        else:
            kept.append(line)
    print("\n".join(kept))


def nccl_rank(name, args):
    if args != ["--lab-rank"]:
        raise Refused("%s run outside mpirun (the lab runs nccl-tests through mpirun only)" % name)
    print("rank-ready", scenario(), flush=True)
    sys.stdin.read()  # until mpirun (or its ssh session) goes away


TOOLS = {
    "nvidia-smi": nvidia_smi,
    "ibdev2netdev": ibdev2netdev,
    "rdma": rdma,
    "ethtool": ethtool,
    "lab-link-wol": lab_link_wol,
    "ibv_devinfo": ibv_devinfo,
    "show_gids": show_gids,
    "ib_write_bw": lambda args: perftest("ib_write_bw", args),
    "ib_write_lat": lambda args: perftest("ib_write_lat", args),
    "mpirun": mpirun,
    "all_reduce_perf": lambda args: nccl_rank("all_reduce_perf", args),
    "all_gather_perf": lambda args: nccl_rank("all_gather_perf", args),
}


def main(argv):
    """argv: [program, tool name, tool arguments...] (the wrapper passes the name it was called by)."""
    if len(argv) < 2:
        die("usage: spark_double.py TOOL [ARGS...]", 2)
    tool = os.path.basename(argv[1])
    if tool not in TOOLS:
        die("lab double: no double named %s (known: %s)" % (tool, ", ".join(sorted(TOOLS))), 2)
    try:
        TOOLS[tool](argv[2:])
    except Refused as exc:
        die("lab double: %s: this argument form is not answered by the lab's %s double "
            "(it replays recorded outputs for the forms the roles use; see docs/lab.md)" % (exc, tool), 64)


if __name__ == "__main__":
    main(sys.argv)
