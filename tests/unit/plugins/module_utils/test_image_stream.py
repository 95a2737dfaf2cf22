"""The p2p image stream: token, frames, trailer; broken streams are caught, the sender program runs standalone."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _image_stream as stream
from ansible_collections.dgx_spark.cluster.plugins.modules.p2p_image_copy import image_identity
from ansible_collections.dgx_spark.cluster.tests.unit.recorded import fixture_body

TOKEN = bytes(range(32))
PAYLOAD = os.urandom(3 * stream.CHUNK + 12345)  # several frames and a short last one


def pair():
    left, right = socket.socketpair()
    left.settimeout(10)
    right.settimeout(10)
    return left, right


def send_in_thread(conn, token, payload, mutate=None):
    def run():
        data = bytearray()

        class Capture:
            def sendall(self, chunk):
                data.extend(chunk)
        stream.send_stream(Capture(), token, io.BytesIO(payload))
        try:
            conn.sendall(bytes(mutate(data) if mutate else data))
        except OSError:
            pass  # the receiver stopped reading (refused token): what a real sender would hit
        conn.close()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_round_trip_verifies_length_and_digest():
    left, right = pair()
    thread = send_in_thread(left, TOKEN, PAYLOAD)
    sink = io.BytesIO()
    total, digest = stream.receive_stream(right, TOKEN, sink)
    thread.join()
    assert total == len(PAYLOAD) and sink.getvalue() == PAYLOAD
    import hashlib
    assert digest == hashlib.sha256(PAYLOAD).hexdigest()


def test_wrong_token_is_refused_before_any_byte_reaches_the_sink():
    left, right = pair()
    thread = send_in_thread(left, bytes(32), PAYLOAD)
    sink = io.BytesIO()
    with pytest.raises(stream.StreamError, match="without the transfer's token"):
        stream.receive_stream(right, TOKEN, sink)
    right.close()
    thread.join()
    assert sink.getvalue() == b""


def test_a_flipped_byte_is_a_checksum_mismatch():
    def flip(data):
        data[len(stream.MAGIC) + 32 + stream.FRAME.size + 100] ^= 0xFF
        return data
    left, right = pair()
    thread = send_in_thread(left, TOKEN, PAYLOAD, flip)
    with pytest.raises(stream.StreamError, match="checksum mismatch"):
        stream.receive_stream(right, TOKEN, io.BytesIO())
    thread.join()


def test_an_interrupted_stream_says_so():
    left, right = pair()
    thread = send_in_thread(left, TOKEN, PAYLOAD, lambda data: data[:len(data) // 2])
    with pytest.raises(stream.StreamError, match="interrupted"):
        stream.receive_stream(right, TOKEN, io.BytesIO())
    thread.join()


def stand_ins(tmp_path, payload, load_rc=0):
    """docker (save prints the payload, load stores its stdin) and ssh (runs the remote command here)."""
    image_tar = tmp_path / "image.tar"
    image_tar.write_bytes(payload)
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\n"
                      "[ \"$1\" = save ] && [ \"$2\" = lab/img:1 ] && exec cat %s\n"
                      "[ \"$1\" = load ] && { cat > %s/loaded.tar; echo 'Loaded image: lab/img:1'; exit %d; }\n"
                      "exit 9\n" % (image_tar, tmp_path, load_rc))
    ssh = tmp_path / "ssh"
    # ssh [-o X]... HOST CMD...: drop the options and the host, run the command here, stdin passed through
    ssh.write_text("#!/bin/sh\nwhile [ \"$1\" = -o ]; do shift 2; done\nshift\nexec \"$@\"\n")
    for path in (docker, ssh):
        path.chmod(0o755)
    return docker, ssh


def receiver_params(docker, ssh):
    return {"listen_address": "127.0.0.1", "port": 0, "timeout": 60, "docker": str(docker),
            "ssh_argv": [str(ssh), "-o", "BatchMode=yes", "source-node", sys.executable, "-"],
            "source": stream.own_source(),
            "sender": {"docker": str(docker), "image": "lab/img:1", "connect_timeout": 10, "io_timeout": 30}}


def run_receiver(params):
    return subprocess.run([sys.executable, "-"], input=stream.program(params["source"], "receiver_main", params),
                          capture_output=True, text=True, timeout=120, check=False)


def test_receiver_and_sender_programs_move_the_image_end_to_end(tmp_path):
    docker, ssh = stand_ins(tmp_path, PAYLOAD)
    result = run_receiver(receiver_params(docker, ssh))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["bytes"] == len(PAYLOAD) and (tmp_path / "loaded.tar").read_bytes() == PAYLOAD
    assert json.loads(report["sender"])["sha256"] == report["sha256"]
    assert report["docker_load"] == "Loaded image: lab/img:1"


def test_a_failing_docker_load_is_reported_with_its_rc(tmp_path):
    docker, ssh = stand_ins(tmp_path, PAYLOAD, load_rc=1)
    result = run_receiver(receiver_params(docker, ssh))
    assert result.returncode == 3 and "docker load failed (rc=1)" in result.stderr


def test_a_sender_that_cannot_save_is_reported(tmp_path):
    docker, ssh = stand_ins(tmp_path, PAYLOAD)
    params = receiver_params(docker, ssh)
    params["sender"]["image"] = "lab/other:1"
    result = run_receiver(params)
    assert result.returncode == 3 and "docker save lab/other:1 failed (rc=9)" in result.stderr


def test_image_identity_across_stores():
    # the containerd store's Id is the manifest digest (docker/docker_inspect_containerd_store_id_azul6656.txt);
    # the same image under overlay2 has its config digest as Id. Derived: same RootFS and Config, other Id.
    recorded = fixture_body("docker/docker_inspect_containerd_store_id_azul6656.txt")
    assert '"Id": "sha256:15df3a90' in recorded
    base = {"RootFS": {"Layers": ["sha256:" + "a" * 64, "sha256:" + "b" * 64]}, "Os": "linux",
            "Architecture": "arm64", "Config": {"Cmd": ["vllm", "serve"], "Env": ["PATH=/usr/bin"]}}
    containerd = json.dumps([dict(base, Id="sha256:15df3a90b5521f1ea9ae6f9d596fe2da9ea5a1539314db2c877b3dac360c7061")])
    overlay2 = json.dumps([dict(base, Id="sha256:" + "c" * 64)])
    (id_a, key_a), (id_b, key_b) = image_identity(containerd), image_identity(overlay2)
    assert id_a != id_b and key_a == key_b
    changed = json.dumps([dict(base, Id="sha256:" + "c" * 64, RootFS={"Layers": ["sha256:" + "d" * 64]})])
    assert image_identity(changed)[1] != key_a
