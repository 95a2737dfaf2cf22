"""What a rank's unit waits with at boot (roles/model_serving/files/wait_for_peers.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

PROGRAM = Path(__file__).resolve().parents[3] / "roles" / "model_serving" / "files" / "wait_for_peers.py"


def run(peers, timeout):
    env = dict(os.environ, PEERS=peers, PEERS_TIMEOUT=str(timeout))
    return subprocess.run([sys.executable, str(PROGRAM)], env=env, capture_output=True, text=True, timeout=30,
                          check=False)


def test_it_goes_on_once_every_peer_listens_and_fails_naming_the_ones_that_never_did():
    with socket.socket() as listener, socket.socket() as closed:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        up, down = "127.0.0.1:%d" % listener.getsockname()[1], "127.0.0.1:%d" % closed.getsockname()[1]
        assert run("", 1).returncode == 0
        assert run(up, 5).returncode == 0
        failed = run("%s %s" % (up, down), 1)
    assert failed.returncode == 1 and failed.stderr == "these ranks did not listen in time: %s\n" % down
