"""Wait until the serving ranks this one needs listen (ExecStartPre of dgx-spark-serving@.service).

PEERS is "address:port address:port ..." (empty: nothing to wait for), PEERS_TIMEOUT the seconds to wait in all.
Exits 0 once every peer accepts a TCP connection, 1 with the ones that did not when the time is up (the unit then
fails and says so in its journal).
"""

import os
import socket
import sys
import time


def listening(peer):
    address, port = peer.rsplit(":", 1)
    try:
        with socket.create_connection((address, int(port)), timeout=2):
            return True
    except OSError:
        return False


def main():
    peers = os.environ.get("PEERS", "").split()
    deadline = time.monotonic() + int(os.environ.get("PEERS_TIMEOUT", "600"))
    while peers and time.monotonic() < deadline:
        peers = [peer for peer in peers if not listening(peer)]
        if peers:
            time.sleep(2)
    if peers:
        sys.stderr.write("these ranks did not listen in time: %s\n" % " ".join(peers))
        sys.exit(1)


if __name__ == "__main__":
    main()
