"""The p2p image stream: token, frames, trailer; broken streams are caught, the sender program runs standalone."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _image_stream as stream
from ansible_collections.dgx_spark.cluster.plugins.module_utils._image_stream import chain_ids
from ansible_collections.dgx_spark.cluster.plugins.modules.p2p_image_copy import (
    comparison, image_identity, layer_store_root, layers_to_leave_out, repo_tags)
from ansible_collections.dgx_spark.cluster.tests.unit.recorded import fixture_body

TOKEN = bytes(range(32))
PAYLOAD = os.urandom(3 * stream.CHUNK + 12345)  # several frames and a short last one


def pair():
    left, right = socket.socketpair()
    left.settimeout(10)
    right.settimeout(10)
    return left, right


def send_in_thread(conn, token, payload, mutate=None):
    # the stream is built before the thread starts: built in it, a starved CPU (make test runs these in the idle
    # class beside the lab) delayed the hello past the receiver's 5 s and the test saw "refused: no token"
    data = bytearray()

    class Capture:
        def sendall(self, chunk):
            data.extend(chunk)
    stream.send_stream(Capture(), token, stream.save_archive(io.BytesIO(payload)))
    data = bytes(mutate(data) if mutate else data)

    def run():
        try:
            conn.sendall(data)
        except OSError:
            pass  # the receiver stopped reading (refused token): what a real sender would hit
        conn.close()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def mac(payload):
    return "hmac-sha256:" + hmac.new(TOKEN, payload + stream.TOTAL.pack(len(payload)), hashlib.sha256).hexdigest()


def receive(conn, sink, token=TOKEN):
    """What the receiver does once a connection is accepted: the hello, then the frames."""
    if not stream.hello_ok(conn, token):
        raise stream.StreamError("refused: no token")
    return stream.receive_stream(conn, token, sink)


def test_round_trip_verifies_length_and_the_hmac_keyed_by_the_token():
    left, right = pair()
    thread = send_in_thread(left, TOKEN, PAYLOAD)
    sink = io.BytesIO()
    total, digest = receive(right, sink)
    thread.join()
    assert total == len(PAYLOAD) and sink.getvalue() == PAYLOAD
    assert digest == mac(PAYLOAD)


def assert_refused_before_the_sink(match, token=TOKEN, mutate=None):
    """The receiver stops with match before it writes a byte to its sink."""
    left, right = pair()
    thread = send_in_thread(left, token, PAYLOAD, mutate)
    sink = io.BytesIO()
    with pytest.raises(stream.StreamError, match=match):
        receive(right, sink)
    right.close()
    thread.join()
    assert sink.getvalue() == b""


def test_wrong_token_is_refused_before_any_byte_reaches_the_sink():
    assert_refused_before_the_sink("refused: no token", token=bytes(32))


def test_the_receiver_keeps_listening_past_a_port_scan_and_a_stranger():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def callers():
        socket.create_connection(("127.0.0.1", port)).close()  # a port scan: connect, close
        silent = socket.create_connection(("127.0.0.1", port))  # one that says nothing (held open)
        stranger = socket.create_connection(("127.0.0.1", port))
        stranger.sendall(stream.MAGIC + bytes(32))  # the magic, not the token
        ours = socket.create_connection(("127.0.0.1", port))
        ours.sendall(stream.MAGIC + TOKEN + b"rest")
        time.sleep(3)
        for conn in (silent, stranger, ours):
            conn.close()
    thread = threading.Thread(target=callers)
    thread.start()
    conn, refused = stream.accept_sender(listener, TOKEN, timeout=20)
    assert refused == 3 and conn.recv(4) == b"rest"
    conn.close()
    thread.join()
    with pytest.raises(stream.StreamError, match=r"never connected to the receiver within 1 s"):
        stream.accept_sender(listener, TOKEN, timeout=1)
    listener.close()


@pytest.mark.parametrize("where", [100, len(PAYLOAD) // 2, len(PAYLOAD) - 1])
def test_a_flipped_byte_does_not_authenticate(where):
    def flip(data):
        frames_before = where // stream.CHUNK + 1
        data[len(stream.MAGIC) + 32 + frames_before * stream.FRAME.size + where] ^= 0x01
        return data
    left, right = pair()
    thread = send_in_thread(left, TOKEN, PAYLOAD, flip)
    with pytest.raises(stream.StreamError, match="the stream does not authenticate: sent %d bytes, received %d, HMAC "
                                                 "mismatch" % (len(PAYLOAD), len(PAYLOAD))):
        receive(right, io.BytesIO())
    thread.join()


def test_a_stream_replaced_by_someone_without_the_token_does_not_authenticate():
    # an attacker who took over the connection after the hello sends its own frames and an unkeyed SHA-256
    other = os.urandom(1000)

    def replace(data):
        head = bytes(data[:len(stream.MAGIC) + 32])
        trailer = stream.FRAME.pack(0) + hashlib.sha256(other).digest() + stream.TOTAL.pack(len(other))
        return bytearray(head + stream.FRAME.pack(len(other)) + other + trailer)
    left, right = pair()
    thread = send_in_thread(left, TOKEN, PAYLOAD, replace)
    with pytest.raises(stream.StreamError, match="does not authenticate"):
        receive(right, io.BytesIO())
    thread.join()


def test_a_damaged_trailer_does_not_authenticate():
    def damage_trailer(data):
        data[len(data) - stream.TOTAL.size - 1] ^= 0x80  # the HMAC's last byte
        return data
    left, right = pair()
    thread = send_in_thread(left, TOKEN, PAYLOAD, damage_trailer)
    with pytest.raises(stream.StreamError, match="does not authenticate"):
        receive(right, io.BytesIO())
    thread.join()


def test_an_oversized_frame_is_refused_before_it_is_read():
    def oversize(data):
        data[len(stream.MAGIC) + 32:len(stream.MAGIC) + 32 + stream.FRAME.size] = stream.FRAME.pack(1 << 60)
        return data
    assert_refused_before_the_sink("a frame of 1152921504606846976 bytes", mutate=oversize)


def test_an_interrupted_stream_says_so():
    left, right = pair()
    thread = send_in_thread(left, TOKEN, PAYLOAD, lambda data: data[:len(data) // 2])
    with pytest.raises(stream.StreamError, match="interrupted"):
        receive(right, io.BytesIO())
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
    return {"listen_address": "127.0.0.1", "port": 0, "timeout": 60,
            "load": {"argv": [str(docker), "load"], "name": "docker load", "image": True},
            "ssh_argv": [str(ssh), "-o", "BatchMode=yes", "source-node", sys.executable, "-"],
            "source": stream.own_source(),
            "sender": {"docker": str(docker), "image": "lab/img:1", "connect_timeout": 10, "io_timeout": 30,
                       "repo_tags": ["lab/img:1"]}}


def run_receiver(params):
    return subprocess.run([sys.executable, "-"], input=stream.program(params["source"], "receiver_main", params),
                          capture_output=True, text=True, timeout=120, check=False)


def test_receiver_and_sender_programs_move_the_image_end_to_end(tmp_path):
    docker, ssh = stand_ins(tmp_path, IMAGE)
    result = run_receiver(receiver_params(docker, ssh))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["bytes"] == len(IMAGE) and (tmp_path / "loaded.tar").read_bytes() == IMAGE
    # keyed by the copy's own token: both ends computed the same HMAC
    assert re.match(r"^hmac-sha256:[0-9a-f]{64}$", report["checksum"]) and report["refused_connections"] == 0
    assert report["sender"]["checksum"] == report["checksum"] and report["sender"]["left_out"] == {}
    assert report["loaded"] == "Loaded image: lab/img:1"


def test_a_failing_docker_load_is_reported_with_its_rc(tmp_path):
    docker, ssh = stand_ins(tmp_path, IMAGE, load_rc=1)
    result = run_receiver(receiver_params(docker, ssh))
    assert result.returncode == 3 and "docker load failed (rc=1)" in result.stderr


def test_a_sender_that_cannot_save_is_reported(tmp_path):
    docker, ssh = stand_ins(tmp_path, IMAGE)
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


ONE, OTHER = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.mark.parametrize("source, dest, expected", [
    ((ONE, "k", True), (ONE, "k", True), (True, "image id")),
    ((ONE, "k", True), (None, None, False), (False, "image id")),
    # both overlay2: another ID is another image, whatever the compared config fields say (EXPOSE differs, say)
    ((ONE, "k", True), (OTHER, "k", True), (False, "image id")),
    # the containerd store names the same image by its manifest: the layers and config decide
    ((ONE, "k", True), (OTHER, "k", False), (True, "layers and config")),
    ((ONE, "k", False), (OTHER, "k", True), (True, "layers and config")),
    ((ONE, "k", True), (OTHER, "j", False), (False, "layers and config")),
])
def test_images_are_compared_by_id_within_overlay2_and_by_content_across_stores(source, dest, expected):
    assert comparison(source, dest) == expected


def saved_image(layers, layout="legacy", parents_first=False, tags=(), index_names=()):
    """A `docker save` archive of layers (bytes each) in docker's legacy (< 25) or OCI (>= 25) layout, and the
    diff IDs. Legacy: a directory per layer named by a v1 ID (not its digest) whose `json` names its parent (as
    docker 20.10 wrote them in the lab: the top one with the image's config, the others dated 1970 without), in
    name order as docker writes them; parents_first names them so that each parent comes before its child."""
    diff_ids = ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers]
    members = []
    if layout == "legacy":
        step = 1 if parents_first else -1
        v1_ids = ["%064x" % (0xfeed + step * index) for index in range(len(layers))]
        paths = [v1_id + "/layer.tar" for v1_id in v1_ids]
        members += list(zip(paths, layers))
        for index, v1_id in enumerate(v1_ids):
            record = {"id": v1_id, "container_config": {"Cmd": None}, "os": "linux"}
            record.update({"parent": v1_ids[index - 1]} if index else {})
            record.update({"created": "2026-11-24T11:24:37.5Z", "config": {"Cmd": ["sh"]}, "architecture": "amd64"}
                          if index == len(layers) - 1 else {"created": "1970-01-01T00:00:00Z"})
            members.append((v1_id + "/json", json.dumps(record).encode()))
    else:
        paths = ["blobs/sha256/" + diff_id[7:] for diff_id in diff_ids]
        members += list(zip(paths, layers))
    manifest = [{"Config": "config.json", "RepoTags": list(tags), "Layers": paths}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    if index_names:  # docker >= 25's OCI index, one image per name
        members.append(("index.json", json.dumps({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "1"}}
            for name in index_names]}).encode()))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, data in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue(), diff_ids


def members_of(archive):
    with tarfile.open(fileobj=io.BytesIO(archive)) as opened:
        return {m.name: opened.extractfile(m).read() for m in opened.getmembers() if m.isfile()}


LAYERS = [os.urandom(size) for size in (300000, 5000, 70000)]
# an image archive of several frames, tagged as the receiver's tests ask for it
IMAGE = saved_image([os.urandom(3 * stream.CHUNK + 12345)], "oci", tags=["lab/img:1"],
                    index_names=["docker.io/lab/img:1"])[0]


@pytest.mark.parametrize("tags, index_names, problem", [
    (["lab/img:1"], ["docker.io/lab/img:1"], None),
    ([], [], None),  # an image copied by ID tags nothing
    (["lab/img:1", "library/busybox:latest"], [], "tagged busybox:latest, lab/img:1, not only lab/img:1"),
    (["lab/img:1"], ["docker.io/lab/img:1", "docker.io/evil/x:1"], "would load 2 image(s)"),
    ([], ["docker.io/library/ubuntu:24.04"], "tagged ubuntu:24.04"),
])
def test_the_archive_watch_reads_what_docker_load_would_tag(tags, index_names, problem):
    archive = saved_image(LAYERS, "oci", tags=tags, index_names=index_names)[0]
    sink, watch = io.BytesIO(), None
    watch = stream.ArchiveWatch(sink)
    for start in range(0, len(archive), 777):  # pieces that split headers
        watch.write(archive[start:start + 777])
    assert sink.getvalue() == archive
    found = watch.tag_problem(["lab/img:1"])
    assert found == problem if problem is None else problem in found


def test_the_archive_watch_follows_long_names():
    # a member named through a PAX header, and a GNU long name, each ahead of a manifest that tags another image
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in (("d" * 120 + "/x", b"1"), ("manifest.json", json.dumps([{"RepoTags": ["evil/x:1"]}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    watch = stream.ArchiveWatch(io.BytesIO())
    watch.write(out.getvalue())
    assert "tagged evil/x:1" in watch.tag_problem(["lab/img:1"])


def test_an_archive_that_tags_another_image_never_reaches_the_end_of_docker_load(tmp_path):
    evil = saved_image(LAYERS, "oci", tags=["lab/img:1", "lab/busybox:latest"])[0]
    docker, ssh = stand_ins(tmp_path, evil)
    result = run_receiver(receiver_params(docker, ssh))
    assert result.returncode == 3 and "tagged lab/busybox:latest, lab/img:1, not only lab/img:1" in result.stderr
    # docker load was killed before the archive's end: its stand-in never printed what it loaded
    assert "Loaded image" not in result.stdout


@pytest.mark.parametrize("layout", ["legacy", "oci"])
def test_layers_the_destination_holds_are_left_out(layout):
    archive, diff_ids = saved_image(LAYERS, layout)
    sink = io.BytesIO()
    left_out = stream.without_layers(io.BytesIO(archive), sink, set(diff_ids[:2]), diff_ids)["left_out"]
    assert left_out == {diff_ids[0]: len(LAYERS[0]), diff_ids[1]: len(LAYERS[1])}
    before, after = members_of(archive), members_of(sink.getvalue())
    assert set(before) - set(after) == {name for name, data in before.items() if data in LAYERS[:2]}
    assert all(after[name] == before[name] for name in after)  # the rest arrives byte for byte
    assert len(sink.getvalue()) <= len(archive) - len(LAYERS[0]) - len(LAYERS[1]) + tarfile.RECORDSIZE


@pytest.mark.parametrize("parents_first, layers_known, count, hashed", [
    (True, True, 3, 0),  # every directory's chain is known when its layer file passes: placed by position
    (False, True, 3, 0),  # children first: the top by its config, the middle as the only place left below it
    (False, True, 4, 1),  # children first, four layers: layer 2 could be 1 or 2 when it passes, so it is hashed
    (True, False, 3, 2),  # without the image's layer list, hashing until both digests are met
])
def test_legacy_layer_files_are_placed_by_their_chain_or_hashed(parents_first, layers_known, count, hashed):
    layers = (LAYERS + [os.urandom(1000)])[:count]
    archive, diff_ids = saved_image(layers, parents_first=parents_first)
    sink = io.BytesIO()
    report = stream.without_layers(io.BytesIO(archive), sink, set(diff_ids[:2]), diff_ids if layers_known else ())
    assert report == {"left_out": {diff_ids[0]: len(layers[0]), diff_ids[1]: len(layers[1])}, "layers_hashed": hashed}
    sent = members_of(sink.getvalue()).values()
    assert all(layer in sent for layer in layers[2:]) and not any(layer in sent for layer in layers[:2])


def test_a_legacy_json_that_names_no_place_is_hashed_not_guessed():
    archive, diff_ids = saved_image(LAYERS)  # children first
    unplaced = archive.replace(b'"created": "1970-01-01T00:00:00Z"', b'"created": "2001-01-01T00:00:00Z"').replace(
        b'"config": {', b'"confiq": {')  # same sizes: the tar headers stay right
    report = stream.without_layers(io.BytesIO(unplaced), io.BytesIO(), set(diff_ids[:2]), diff_ids)
    assert report["left_out"] == {diff_ids[0]: len(LAYERS[0]), diff_ids[1]: len(LAYERS[1])}
    assert report["layers_hashed"] == 1  # the top, first: 1 or 2 by its chain alone; then the middle is placed


def test_nothing_to_leave_out_copies_every_member():
    archive = saved_image(LAYERS)[0]
    sink = io.BytesIO()
    assert stream.without_layers(io.BytesIO(archive), sink, {"sha256:" + "0" * 64})["left_out"] == {}
    assert members_of(sink.getvalue()) == members_of(archive)


def test_a_truncated_archive_fails_the_send_with_the_source_error():
    archive, diff_ids = saved_image(LAYERS)

    class Discard:
        def sendall(self, _data):
            pass
    with pytest.raises(stream.StreamError, match="docker save failed"):
        stream.send_stream(Discard(), TOKEN, stream.save_archive(io.BytesIO(archive[:200000]), diff_ids),
                           lambda: "docker save failed")


def test_chain_ids_follow_docker_layer_store():
    a, b, c = ("sha256:" + ch * 64 for ch in "abc")
    chains = chain_ids([a, b, c])
    assert chains[0] == a
    assert chains[1] == "sha256:" + hashlib.sha256(("%s %s" % (a, b)).encode()).hexdigest()
    assert chains[2] == "sha256:" + hashlib.sha256(("%s %s" % (chains[1], c)).encode()).hexdigest()


def test_only_the_held_prefix_is_left_out():
    a, b, c, d = ("sha256:" + ch * 64 for ch in "abcd")
    held = set(chain_ids([a, b]))
    assert layers_to_leave_out([a, b, c], held) == [a, b]
    # the same layers over another base are another chain: docker needs their files
    assert layers_to_leave_out([d, a, b], held) == []
    # a digest the missing part repeats must still be sent
    assert layers_to_leave_out([a, b, a], held) == [b]
    assert layers_to_leave_out([a, b], set()) == []


def test_the_sender_program_leaves_out_what_it_is_told(tmp_path):
    archive, diff_ids = saved_image(LAYERS)
    docker, ssh = stand_ins(tmp_path, archive)
    params = receiver_params(docker, ssh)
    params["sender"].update(skip=diff_ids[:1], layers=diff_ids)
    result = run_receiver(params)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sender"]["left_out"] == {diff_ids[0]: len(LAYERS[0])} and report["sender"]["layers_hashed"] == 0
    loaded = members_of((tmp_path / "loaded.tar").read_bytes())
    assert LAYERS[0] not in loaded.values() and LAYERS[1] in loaded.values() and "manifest.json" in loaded


def test_the_receiver_writes_its_progress_for_the_action_plugin(tmp_path):
    docker, ssh = stand_ins(tmp_path, IMAGE)
    progress_file = tmp_path / ("p2p_image_copy-%s.json" % ("ab" * 16))
    params = dict(receiver_params(docker, ssh), progress_file=str(progress_file), expected=len(IMAGE))
    result = run_receiver(params)
    assert result.returncode == 0, result.stderr
    progress = json.loads(progress_file.read_text())
    assert 0 < progress["bytes"] <= len(IMAGE) and progress["expected"] == len(IMAGE)
    assert not (tmp_path / (progress_file.name + ".tmp")).exists()


def layer_store(tmp_path, layer_tars):
    """A docker overlay2 layer store under tmp_path holding one image of layer_tars (bytes each), as docker keeps it:
    the config in the image database, per chain a cache-id and a tar-split.json.gz (the tar's headers and padding as
    raw segments, each file as its name and size), the files in overlay2/<cache-id>/diff. Returns (root, image id,
    diff IDs)."""
    root, diff_ids = tmp_path / "docker", ["sha256:" + hashlib.sha256(data).hexdigest() for data in layer_tars]
    for index, (data, chain) in enumerate(zip(layer_tars, chain_ids(diff_ids))):
        layer_dir = root / "image" / "overlay2" / "layerdb" / "sha256" / stream.hex_of(chain)
        layer_dir.mkdir(parents=True)
        (layer_dir / "cache-id").write_text("cache%d" % index)
        diff = root / "overlay2" / ("cache%d" % index) / "diff"
        diff.mkdir(parents=True)
        entries, done = [], 0
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive.getmembers():
                if member.isdir():
                    (diff / member.name).mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    (diff / member.name).write_bytes(archive.extractfile(member).read())
                entries.append({"type": 2, "payload": base64.b64encode(data[done:member.offset_data]).decode()})
                entries.append({"type": 1, "name": member.name, "size": member.size})
                done = member.offset_data + member.size
        entries.append({"type": 2, "payload": base64.b64encode(data[done:]).decode()})
        with gzip.open(layer_dir / "tar-split.json.gz", "wt") as split:
            split.write("".join(json.dumps(entry) + "\n" for entry in entries))
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    image_id = "sha256:" + hashlib.sha256(config).hexdigest()
    content = root / "image" / "overlay2" / "imagedb" / "content" / "sha256"
    content.mkdir(parents=True)
    (content / stream.hex_of(image_id)).write_bytes(config)
    return root, image_id, diff_ids


def layer_tar(files, links=()):
    """A layer tar: files {name: bytes} (a name ending in / is a directory), links (name, target) as hard links."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(name.rstrip("/"))
            member.type = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
            member.size = 0 if name.endswith("/") else len(data)
            archive.addfile(member, None if name.endswith("/") else io.BytesIO(data))
        for name, target in links:
            member = tarfile.TarInfo(name)
            member.type, member.linkname = tarfile.LNKTYPE, target
            archive.addfile(member)
    return buffer.getvalue()


LAYER_TARS = [layer_tar({"bin/": b"", "bin/tool": os.urandom(300000), "empty": b""}, [("bin/same", "bin/tool")]),
              layer_tar({"etc/": b"", "etc/.wh.old": b"", "etc/conf": b"x" * 1000})]


def test_the_layer_store_archive_rebuilds_every_layer_byte_for_byte(tmp_path):
    root, image_id, diff_ids = layer_store(tmp_path, LAYER_TARS)
    sink = io.BytesIO()
    report = stream.layer_store_archive(str(root), image_id, diff_ids, ["lab/img:1"], sink)
    assert report == {"left_out": {}, "layers_hashed": 0}
    members = members_of(sink.getvalue())
    manifest = json.loads(members["manifest.json"])
    assert manifest == [{"Config": stream.hex_of(image_id) + ".json", "RepoTags": ["lab/img:1"],
                         "Layers": [stream.hex_of(d) + "/layer.tar" for d in diff_ids]}]
    assert hashlib.sha256(members[manifest[0]["Config"]]).hexdigest() == stream.hex_of(image_id)
    # what docker load checks: each layer tar hashes to its diff ID
    assert [members[name] for name in manifest[0]["Layers"]] == LAYER_TARS


def test_the_layer_store_archive_leaves_out_held_layers(tmp_path):
    root, image_id, diff_ids = layer_store(tmp_path, LAYER_TARS)
    sink = io.BytesIO()
    report = stream.layer_store_archive(str(root), image_id, diff_ids, [], sink, skip={diff_ids[0]})
    assert report["left_out"] == {diff_ids[0]: len(LAYER_TARS[0])}
    members = members_of(sink.getvalue())
    assert stream.hex_of(diff_ids[0]) + "/layer.tar" not in members
    assert members[stream.hex_of(diff_ids[1]) + "/layer.tar"] == LAYER_TARS[1]


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / "overlay2" / "cache0" / "diff" / "bin" / "tool").write_bytes(b"short"),
     "shorter than the layer store says"),
    (lambda root: next((root / "image" / "overlay2" / "imagedb" / "content" / "sha256").iterdir()).write_bytes(b"{}"),
     "does not match its ID"),
])
def test_a_damaged_layer_store_fails_the_archive(tmp_path, damage, message):
    root, image_id, diff_ids = layer_store(tmp_path, LAYER_TARS)
    damage(root)
    with pytest.raises(stream.StreamError, match=message):
        stream.layer_store_archive(str(root), image_id, diff_ids, [], io.BytesIO())


def test_a_layer_list_other_than_the_config_s_is_refused(tmp_path):
    root, image_id, diff_ids = layer_store(tmp_path, LAYER_TARS)
    with pytest.raises(stream.StreamError, match="layers changed"):
        stream.layer_store_archive(str(root), image_id, diff_ids[:1], [], io.BytesIO())


@pytest.mark.parametrize("image, expected", [
    ("lab/img:1", ["lab/img:1"]), ("lab/img", ["lab/img:latest"]), ("host:5000/img", ["host:5000/img:latest"]),
    ("lab/img@sha256:" + "a" * 64, []), ("abc123", []), ("sha256:abc123", []), ("abd", ["abd:latest"]),
])
def test_the_archive_tags_what_docker_save_would(image, expected):
    assert repo_tags(image, "sha256:abc123" + "0" * 58) == expected


def test_a_layer_file_behind_a_symlink_is_refused(tmp_path):
    root, image_id, diff_ids = layer_store(tmp_path, LAYER_TARS)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "tool").write_bytes(b"x" * 300000)
    diff = root / "overlay2" / "cache0" / "diff"
    for path in (diff / "bin").iterdir():
        path.unlink()
    (diff / "bin").rmdir()
    (diff / "bin").symlink_to(outside)  # bin/tool now resolves outside the layer
    with pytest.raises(stream.StreamError, match="outside its layer"):
        stream.layer_store_archive(str(root), image_id, diff_ids, [], io.BytesIO())


@pytest.mark.parametrize("graph_driver, expected", [
    ({"Name": "overlay2", "Data": {"UpperDir": "/var/lib/docker/overlay2/%s/diff" % ("c" * 64)}}, "/var/lib/docker"),
    ({"Name": "overlay2", "Data": {"UpperDir": "/data/docker/overlay2/%s/diff" % ("c" * 64)}}, "/data/docker"),
    # docker's containerd image store names its snapshotter and keeps layers elsewhere: docker save then
    ({"Name": "overlayfs", "Data": {"UpperDir": "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/"
                                                "snapshots/3/fs"}}, None),
    ({"Name": "vfs", "Data": None}, None), (None, None),
])
def test_the_layer_store_root_comes_from_the_image_s_graph_driver(graph_driver, expected):
    assert layer_store_root({"GraphDriver": graph_driver}) == expected


def test_a_layer_without_its_tar_split_record_sends_the_sender_to_docker_save(tmp_path):
    root, image_id, diff_ids = layer_store(tmp_path, LAYER_TARS)
    assert stream.layer_store_readable(str(root), image_id, diff_ids)
    next((root / "image" / "overlay2" / "layerdb" / "sha256").glob("*/tar-split.json.gz")).unlink()
    assert not stream.layer_store_readable(str(root), image_id, diff_ids)
    assert not stream.layer_store_readable(str(tmp_path / "elsewhere"), image_id, diff_ids)


def test_a_sink_that_breaks_mid_stream_fails_the_receive():
    # docker load gone: its pipe breaks in the background writer, the receiving side raises it
    class Broken:
        def write(self, _data):
            raise BrokenPipeError(32, "Broken pipe")
    left, right = pair()
    thread = send_in_thread(left, TOKEN, PAYLOAD)
    with pytest.raises(BrokenPipeError):
        receive(right, Broken())
    right.close()
    thread.join()


def test_a_sender_that_cannot_start_fails_the_copy_at_once(tmp_path):
    # sudo -n on a source without passwordless sudo: the sender's command exits before connecting
    docker, ssh = stand_ins(tmp_path, IMAGE)
    ssh.write_text("#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n")
    started = time.monotonic()
    result = run_receiver(receiver_params(docker, ssh))
    assert result.returncode == 3 and time.monotonic() - started < 30
    assert "the sender exited (rc=1) before it connected" in result.stderr
    assert "sudo: a password is required" in result.stderr
    assert not (tmp_path / "loaded.tar").exists() or (tmp_path / "loaded.tar").read_bytes() == b""


# ------------------------------------------------------------------ the relay
def relay_files(tmp_path, relay_id="r1"):
    return stream.relay_paths(str(tmp_path / "relay"), relay_id)


def test_a_relay_reads_the_spool_while_it_grows_until_its_done_length(tmp_path):
    paths = relay_files(tmp_path)
    spool = stream.RelaySpool(paths)
    assert oct(os.stat(os.path.dirname(paths["archive"])).st_mode & 0o777) == "0o700"
    pieces = [os.urandom(100000) for unused_piece in range(5)]

    def receive_slowly():
        for piece in pieces:
            spool.write(piece)
            spool.file.flush()
            time.sleep(0.05)
        spool.finish(sum(len(p) for p in pieces))
    producer = threading.Thread(target=receive_slowly)
    producer.start()
    opened = stream.relay_open(paths, wait=5)
    assert not os.path.exists(paths["archive"])  # unlinked once open: its space goes when both ends close it
    sink = io.BytesIO()
    report = stream.relay_archive(opened, paths, stall=5)(sink)
    producer.join()
    assert sink.getvalue() == b"".join(pieces) and report == {"left_out": {}, "layers_hashed": 0}


def test_a_failed_copy_before_ends_the_relay_with_its_reason(tmp_path):
    paths = relay_files(tmp_path)
    spool = stream.RelaySpool(paths)
    spool.write(b"x" * 1000)
    opened = stream.relay_open(paths, wait=5)
    spool.fail("docker load failed (rc=1)")
    with pytest.raises(stream.StreamError, match=r"its own copy failed: docker load failed \(rc=1\)"):
        stream.relay_archive(opened, paths, stall=5)(io.BytesIO())
    with pytest.raises(stream.StreamError, match="its own copy failed"):  # a sender that comes later
        stream.relay_open(paths, wait=5)


def test_a_relay_that_never_begins_or_stops_moving_is_given_up(tmp_path):
    paths = relay_files(tmp_path)
    with pytest.raises(stream.StreamError, match="did not begin receiving within 0 s"):
        stream.relay_open(paths, wait=0)
    spool = stream.RelaySpool(paths)
    spool.write(b"x" * 10)
    spool.file.flush()
    with pytest.raises(stream.StreamError, match="no byte came from it for 0.2 s"):
        stream.relay_archive(stream.relay_open(paths, wait=5), paths, stall=0.2)(io.BytesIO())


def test_a_spool_nobody_opened_is_removed_at_the_end_and_a_later_sender_reads_the_nodes_docker(tmp_path):
    paths = relay_files(tmp_path)
    spool = stream.RelaySpool(paths)
    spool.write(b"x" * 10)
    spool.finish(10)
    stream.relay_handover(paths)
    assert not os.path.exists(paths["archive"]) and os.path.exists(paths["held"])
    assert stream.relay_open(paths, wait=5) is None


def test_the_relay_directory_must_be_the_users_own_and_not_a_link(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "relay").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(stream.StreamError, match="not a directory of this user's"):
        stream.RelaySpool(relay_files(tmp_path))


def relay_node(tmp_path, name, payload):
    """A node's stand-ins (docker, ssh) in its own directory, and the receiver's parameters."""
    home = tmp_path / name
    home.mkdir()
    docker, ssh = stand_ins(home, payload)
    return home, receiver_params(docker, ssh)


def test_two_receivers_in_a_chain_the_second_reads_what_the_first_receives(tmp_path):
    payload = IMAGE
    first_home, first = relay_node(tmp_path, "first", payload)
    second_home, second = relay_node(tmp_path, "second", b"")
    relay_dir = str(tmp_path / "relay")
    first["spool"] = {"dir": relay_dir, "id": "chain1"}
    second["sender"]["relay"] = {"dir": relay_dir, "id": "chain1", "wait": 30, "stall": 30}
    # the second node's copy starts first: its sender waits on the first node for the spool to appear
    downstream = subprocess.Popen([sys.executable, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
    downstream.stdin.write(stream.program(second["source"], "receiver_main", second))
    downstream.stdin.close()
    upstream = run_receiver(first)
    out, err = downstream.stdout.read(), downstream.stderr.read()
    downstream.wait(timeout=60)
    assert upstream.returncode == 0, upstream.stderr
    assert downstream.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["sender"]["export"] == "relay" and report["bytes"] == len(payload)
    assert (first_home / "loaded.tar").read_bytes() == payload == (second_home / "loaded.tar").read_bytes()
    assert os.listdir(relay_dir) == []  # the spool went with its reader, the markers with the sender


def test_when_the_first_of_a_chain_fails_the_second_loads_nothing_and_says_why(tmp_path):
    unused_home, first = relay_node(tmp_path, "first", IMAGE)
    second_home, second = relay_node(tmp_path, "second", b"")
    first["sender"]["image"] = "lab/other:1"  # its source cannot save that
    relay_dir = str(tmp_path / "relay")
    first["spool"] = {"dir": relay_dir, "id": "chain2"}
    second["sender"]["relay"] = {"dir": relay_dir, "id": "chain2", "wait": 30, "stall": 30}
    assert run_receiver(first).returncode == 3
    result = run_receiver(second)
    assert result.returncode == 3
    assert "sender: relay: its own copy failed: " in result.stderr  # the first node's reason follows
    assert "docker save lab/other:1 failed (rc=9)" in result.stderr
    assert not (second_home / "loaded.tar").exists() or (second_home / "loaded.tar").read_bytes() != IMAGE


def test_the_sweep_removes_what_relays_that_ended_long_ago_left_and_nothing_else(tmp_path):
    old, new = relay_files(tmp_path, "old1"), relay_files(tmp_path, "new1")
    stream.relay_directory(str(tmp_path / "relay"))
    for path in (old["held"], old["done"], new["held"], str(tmp_path / "relay" / "notes.txt")):
        with open(path, "w") as out:
            out.write("{}")
    for path in (old["held"], old["done"], str(tmp_path / "relay" / "notes.txt")):
        os.utime(path, (time.time() - 7200,) * 2)
    stream.relay_sweep(str(tmp_path / "relay"))
    assert sorted(os.listdir(str(tmp_path / "relay"))) == ["new1.held", "notes.txt"]


def test_a_docker_load_that_dies_mid_stream_is_named_as_the_cause(tmp_path):
    docker, ssh = stand_ins(tmp_path, IMAGE)
    docker.write_text(docker.read_text().replace(
        "[ \"$1\" = load ] &&", "[ \"$1\" = load ] && { head -c 1000 >/dev/null; echo 'Error: disk full' >&2; exit 4; }\n"
        "[ \"$1\" = never ] &&"))
    result = run_receiver(receiver_params(docker, ssh))
    assert result.returncode == 3 and "docker load exited (rc=4): Error: disk full" in result.stderr


def test_a_node_whose_own_load_fails_after_a_whole_stream_lets_a_reading_next_node_finish(tmp_path):
    paths = relay_files(tmp_path)
    spool = stream.RelaySpool(paths)
    spool.write(b"x" * 10)
    opened = stream.relay_open(paths, wait=5)  # the next node reads already
    spool.finish(10)
    spool.fail("docker load failed (rc=1)")  # this node's own load: the bytes were whole
    stream.relay_failed_here(paths, "the copy on spark-ba63 failed")
    sink = io.BytesIO()
    stream.relay_archive(opened, paths, stall=5)(sink)
    assert sink.getvalue() == b"x" * 10


def test_a_node_that_fails_before_the_next_opened_its_spool_sends_it_to_the_source(tmp_path):
    paths = relay_files(tmp_path)
    spool = stream.RelaySpool(paths)
    spool.write(b"x" * 10)
    spool.finish(10)
    stream.relay_failed_here(paths, "the copy on spark-ba63 failed")
    assert not os.path.exists(paths["archive"])
    with pytest.raises(stream.StreamError, match="its own copy failed: the copy on spark-ba63 failed"):
        stream.relay_open(paths, wait=5)
