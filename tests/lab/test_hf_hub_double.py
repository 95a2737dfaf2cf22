"""The Hub double answers a resumed download as the Hub's CDN does, and drops a transfer part-way when told to."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parents[2] / "lab" / "hf_hub_double.py"
WEIGHTS = bytes(range(256)) * 64  # 16 KiB


@pytest.fixture
def hub(tmp_path):
    repo = tmp_path / "repos" / "lab-org" / "tiny"
    repo.mkdir(parents=True)
    (repo / "model.safetensors").write_bytes(WEIGHTS)
    (repo / "config.json").write_text("{}")
    log = tmp_path / "log.jsonl"
    server = subprocess.Popen([sys.executable, str(HUB), "--root", str(tmp_path / "repos"), "--log", str(log),
                               "--cut-after", "1000", "--cuts", "1"], stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    yield port, log
    server.kill()
    server.wait()


def get(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    try:
        body = response.read()
    except http.client.IncompleteRead as exc:
        body = exc.partial
    return response.status, dict(response.getheaders()), body


def test_a_cut_transfer_then_a_resumed_one(hub):
    port, log = hub
    path = "/lab-org/tiny/resolve/main/model.safetensors"
    status, headers, body = get(port, path)
    assert (status, headers["Content-Length"], body) == (200, str(len(WEIGHTS)), WEIGHTS[:1000])  # cut
    status, headers, body = get(port, path, {"Range": "bytes=1000-"})
    assert status == 206 and headers["Content-Range"] == "bytes 1000-16383/16384" and body == WEIGHTS[1000:]
    status, _headers, body = get(port, "/lab-org/tiny/resolve/main/config.json")  # small files are never cut
    assert (status, body) == (200, b"{}")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["range_start"], r["sent"], r["cut"]) for r in records] == [
        (0, 1000, True), (1000, 15384, False), (0, 2, False)]
