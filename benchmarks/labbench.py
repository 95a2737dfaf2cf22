"""Timing helpers shared by the lab benchmarks (they print figures; nothing here asserts)."""

import subprocess
import time

from labkit import KEY, NODES, ssh

HEAD, WORKER, WORKER_FABRIC = "spark-2959", "spark-ba63", "10.10.10.2"


def timed(node, command):
    start = time.monotonic()
    ssh(node, command, timeout=3600)
    return time.monotonic() - start


def wait_listening(node, port):
    for attempt in range(100):
        if ":%d " % port in ssh(node, "ss -Hltn").stdout:
            return
        time.sleep(0.1)
    raise RuntimeError("listener on %s:%d never came up after %d checks" % (node, port, attempt + 1))


def piped(listen_cmd, send_cmd, port):
    """Receiver on the worker (background), confirmed listening, then the sender on the head; both must end."""
    receiver = subprocess.Popen(["ssh", "-i", str(KEY), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                                 "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                                 "spark@" + NODES[WORKER], listen_cmd])
    wait_listening(WORKER, port)
    start = time.monotonic()
    ssh(HEAD, send_cmd, timeout=3600)
    if receiver.wait(timeout=3600) != 0:
        raise RuntimeError("receiver failed: %s" % listen_cmd)
    return time.monotonic() - start
