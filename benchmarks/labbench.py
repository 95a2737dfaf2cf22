"""Timing helpers shared by the lab benchmarks (they print figures; nothing here asserts)."""

import statistics
import subprocess
import time

from labkit import KEY, NODES, ssh

HEAD, WORKER, WORKER_FABRIC = "spark-2959", "spark-ba63", "10.10.10.2"


# a command timed on its node, so the SSH from this machine is not part of its figure: the clock before it, its
# rc kept, the clock after it
STARTED, ENDED = "echo started_ns $(date +%s%N); ", "( %s ) || exit $?; echo ended_ns $(date +%%s%%N)"


def clock(output, mark):
    return int(output.split(mark)[-1].split()[0]) / 1e9


def timed(node, command):
    out = ssh(node, STARTED + ENDED % command, timeout=3600).stdout
    return clock(out, "ended_ns") - clock(out, "started_ns")


def in_turn(repeat, measures):
    """Each of measures (name: a call returning seconds) repeat times, all of them in each round, so the machine's
    drift falls on all alike: (medians, (least, most) by name)."""
    samples = {name: [] for name in measures}
    for _round in range(repeat):
        for name, measure in measures.items():
            samples[name].append(measure())
    return ({name: statistics.median(values) for name, values in samples.items()},
            {name: (min(values), max(values)) for name, values in samples.items()})


def wait_listening(node, port):
    for attempt in range(100):
        if ":%d " % port in ssh(node, "ss -Hltn").stdout:
            return
        time.sleep(0.1)
    raise RuntimeError("listener on %s:%d never came up after %d checks" % (node, port, attempt + 1))


def piped(listen_cmd, send_cmd, port):
    """Receiver on the worker (background), confirmed listening, then the sender on the head; both must end.
    From the sender's start on the head to the receiver's end on the worker (the lab nodes share this machine's
    clock; on two Sparks, their synchronised clocks)."""
    receiver = subprocess.Popen(["ssh", "-i", str(KEY), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                                 "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                                 "spark@" + NODES[WORKER], ENDED % listen_cmd], stdout=subprocess.PIPE, text=True)
    wait_listening(WORKER, port)
    started = clock(ssh(HEAD, STARTED + send_cmd, timeout=3600).stdout, "started_ns")
    ended = receiver.communicate(timeout=3600)[0]
    if receiver.returncode != 0:
        raise RuntimeError("receiver failed: %s" % listen_cmd)
    return clock(ended, "ended_ns") - started
