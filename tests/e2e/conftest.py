"""Lab end-to-end tests: the lab helpers (lab/labkit.py) on the path; the test that takes the lab down runs last,
whatever file it is in."""

import base64
import http.server
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lab"))

from labkit import ROOT, ssh  # noqa: E402  (lab/ is on the path from here on)


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_teardown: takes the lab down; runs after every other lab test")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("lab_teardown") is not None)


@pytest.fixture
def hub(tmp_path):
    """start(token="", cut_after=0, cuts=0) -> (endpoint, request log): the lab's Hugging Face Hub double on the
    management network, serving the head's tiny model as lab-org/tiny-llama (lab/hf_hub_double.py for the options);
    the head's cache entry of it removed first."""
    repo = tmp_path / "repos" / "lab-org" / "tiny-llama"
    repo.mkdir(parents=True)
    encoded = ssh("spark-2959", "tar -C /home/spark/models/tiny-llama -c . | base64 -w0").stdout
    subprocess.run(["tar", "-x", "-C", str(repo)], input=base64.b64decode(encoded), check=True)
    ssh("spark-2959", "sudo rm -rf /var/lib/dgx-spark/hf-cache/models--lab-org--tiny-llama")
    servers = []

    def start(token="", cut_after=0, cuts=0):
        (tmp_path / "token").write_text(token)
        log = tmp_path / ("requests-%d.jsonl" % len(servers))
        argv = [sys.executable, str(ROOT / "lab" / "hf_hub_double.py"), "--root", str(tmp_path / "repos"),
                "--bind", "10.59.63.1", "--log", str(log), "--cut-after", str(cut_after), "--cuts", str(cuts)]
        servers.append(subprocess.Popen(argv + (["--token-file", str(tmp_path / "token")] if token else []),
                                        stdout=subprocess.PIPE, text=True))
        return "http://10.59.63.1:%s" % servers[-1].stdout.readline().strip(), log

    yield start
    for server in servers:
        server.kill()
        server.wait()


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
