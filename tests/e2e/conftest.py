"""Lab end-to-end tests: the lab helpers (lab/labkit.py) on the path; the test that takes the lab down runs last,
whatever file it is in."""

import http.server
import sys
import threading
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lab"))

from labkit import ROOT, ssh  # noqa: E402  (lab/ is on the path from here on)


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_teardown: takes the lab down; runs after every other lab test")
    config.addinivalue_line("markers", "lab_resize: brings the lab up with more nodes; runs last but the teardown")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: 2 if item.get_closest_marker("lab_teardown") else
               1 if item.get_closest_marker("lab_resize") else 0)


class HeadFile:
    """A file on the head, read over SSH (the Hub double's request log)."""

    def __init__(self, path):
        self.path = path

    def read_text(self):
        return ssh("spark-2959", "cat %s 2>/dev/null || true" % self.path).stdout


@pytest.fixture
def hub():
    """start(token="", cut_after=0, cuts=0) -> (endpoint, request log): the lab's Hugging Face Hub double on the
    head's loopback (a token only ever goes to https or to loopback; the download runs with the head's network),
    serving the head's tiny model as lab-org/tiny-llama (lab/hf_hub_double.py for the options); the head's cache
    entry of it removed first."""
    work = "/tmp/hf-hub-double"
    ssh("spark-2959", "rm -rf {0} && mkdir -p {0}/repos/lab-org && cp -r /home/spark/models/tiny-llama "
                      "{0}/repos/lab-org/ && sudo rm -rf /var/lib/dgx-spark/hf-cache/models--lab-org--tiny-llama"
                      .format(work))
    ssh("spark-2959", "cat > %s/hf_hub_double.py" % work, input_text=(ROOT / "lab" / "hf_hub_double.py").read_text())
    servers = []

    def start(token="", cut_after=0, cuts=0):
        index = len(servers)
        log = "%s/requests-%d.jsonl" % (work, index)
        ssh("spark-2959", "umask 077; printf %%s '%s' > %s/token" % (token, work))
        argv = ("python3 {0}/hf_hub_double.py --root {0}/repos --bind 127.0.0.1 --log {1} --cut-after {2} --cuts {3}"
                "{4}".format(work, log, cut_after, cuts, (" --token-file %s/token" % work) if token else ""))
        port = ssh("spark-2959", "nohup {0} </dev/null >{1}/port-{2} 2>{1}/err-{2} & echo $! > {1}/pid-{2}; "
                                 "for i in $(seq 50); do [ -s {1}/port-{2} ] && break; sleep 0.1; done; "
                                 "head -n 1 {1}/port-{2}".format(argv, work, index)).stdout.strip()
        servers.append(index)
        return "http://127.0.0.1:%s" % port, HeadFile(log)

    yield start
    ssh("spark-2959", "for p in %s/pid-*; do kill $(cat $p) 2>/dev/null; done; rm -rf %s" % (work, work), check=False)


@pytest.fixture
def webhook():
    """A webhook receiver on the controller: .url to post to, .received the (body, X-Spark-Signature) pairs."""
    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers.get("X-Spark-Signature")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            return

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield types.SimpleNamespace(url="http://127.0.0.1:%d/hook" % server.server_port, received=received)
    server.shutdown()
