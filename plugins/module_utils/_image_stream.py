# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image stream of p2p_image_copy: authenticated, framed, checksummed TCP between two nodes.

Two programs, each a separate process: the receiver (run by the module on the destination with run_command, its
program on stdin) listens first, then starts the sender on the source over SSH (program and one-time token on SSH's
stdin, never in an argv). The sender proves the token and streams the image archive in frames: read straight from
docker's overlay2 layer store when it can (layer_store_archive), else `docker save`; the last frame carries the
checksum (CRC-32 by default, SHA-256 on request) and length of everything sent, which the receiver compares with
what it fed to `docker load`. The checksum catches a stream damaged or cut short before docker load finishes; the
content itself is verified by its digests (docker load checks every layer against the image's diff IDs, the module
compares the loaded image with the source's), so the default spends no second SHA-256 pass on the layers.
Layers the destination already holds can be left out of the stream (without_layers): docker's load skips reading
a layer file whose chain it holds, so those bytes never cross the wire.
A program is _progress_file's text, this file's text and one call (own_source, program): both import only the
standard library on a node, and carry no __future__ import, so their texts can follow each other.
"""

import base64
import functools
import gzip
import hashlib
import hmac
import io
import json
import os
import queue
import re
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib

if __name__ != "__main__":  # as a program on a node (python3 -, own_source), _progress_file's text came first
    from ansible_collections.dgx_spark.cluster.plugins.module_utils import _progress_file
    from ansible_collections.dgx_spark.cluster.plugins.module_utils._progress_file import write_progress

MAGIC = b"DGXSPARK-IMG1"
FRAME = struct.Struct("!Q")  # payload length; 0 ends the stream and is followed by the trailer
TOTAL = struct.Struct("!Q")  # the trailer: the checksum's digest, then the total bytes
CHUNK = 4 << 20
TOKEN_BYTES = 32
COPY_TIMEOUT = 3600  # p2p_image_copy's default timeout, for the module and its action plugin


class StreamError(Exception):
    """The stream broke: what happened, in words a user can act on."""


def _fill(read_into, view):
    """Bytes read into view by read_into (recv_into, readinto: each may return fewer) until it is full or the source
    ends (0)."""
    got = 0
    while got < len(view):
        count = read_into(view[got:])
        if not count:
            break
        got += count
    return got


def _recv_exact(conn, size):
    data = bytearray(size)
    got = _fill(conn.recv_into, memoryview(data))
    if got < size:
        raise StreamError("the sender closed the connection after %d of %d bytes of a frame (interrupted)"
                          % (got, size))
    return data


class _InBackground:
    """consume(piece) for each piece put, in a thread, while the caller produces the next one (hashing and pipe I/O
    release the GIL); at most `depth` pieces wait. An error of consume is raised in the caller at its next put or
    at close. Pieces are kept until consumed: a caller must not reuse a buffer it has put."""

    def __init__(self, consume, depth=4):
        self.consume, self.error = consume, None
        self.pieces = queue.Queue(depth)
        self.thread = threading.Thread(target=self._run)
        self.thread.daemon = True
        self.thread.start()

    def _run(self):
        while True:
            piece = self.pieces.get()
            if piece is None:
                return
            if self.error is None:
                try:
                    self.consume(piece)
                except (OSError, ValueError) as exc:
                    self.error = exc

    def put(self, piece):
        if self.error is not None:
            raise self.error
        self.pieces.put(piece)

    def close(self, raise_error=True):
        """Wait until every piece is consumed."""
        self.pieces.put(None)
        self.thread.join()
        if self.error is not None and raise_error:
            raise self.error


class _Crc32:
    """zlib's CRC-32 with hashlib's interface (it releases the GIL too, at a third of SHA-256's cost)."""
    digest_size = 4

    def __init__(self):
        self.value = 0

    def update(self, data):
        self.value = zlib.crc32(data, self.value)

    def digest(self):
        return struct.pack("!I", self.value)

    def hexdigest(self):
        return "%08x" % self.value


CHECKSUMS = {"crc32": _Crc32, "sha256": hashlib.sha256}


def _labelled(name, digest):
    return "%s:%s" % (name, digest.hexdigest())


class FrameWriter:
    """The sending end of a stream: frames what it is given, checksumming and counting it (a file object for
    tarfile)."""

    def __init__(self, conn, checksum):
        self.conn = conn
        self.digest = CHECKSUMS[checksum]()
        self.total = 0

    def write(self, data):
        if data:
            self.digest.update(data)
            self.total += len(data)
            self.conn.sendall(FRAME.pack(len(data)))
            self.conn.sendall(data)
        return len(data)

    def finish(self):
        self.conn.sendall(FRAME.pack(0) + self.digest.digest() + TOTAL.pack(self.total))


# A layer file in `docker save` output: named by its digest in the OCI layout (docker >= 25), by a v1 ID in the
# legacy one (docker < 25), whose directory's `json` (written just before its layer.tar) names the parent directory.
LAYER_FILE = re.compile(r"^(?:blobs/sha256/(?P<digest>[0-9a-f]{64})|(?P<v1>[0-9a-f]{64})/layer\.tar)$")
LEGACY_JSON = re.compile(r"^(?P<v1>[0-9a-f]{64})/json$")
SPOOL_IN_MEMORY = 64 << 20


def _hash_into(source, spool):
    digest = hashlib.sha256()
    while True:
        data = source.read(CHUNK)
        if not data:
            return "sha256:" + digest.hexdigest()
        digest.update(data)
        spool.write(data)


def _legacy_links(legacy_json):
    """(parent v1 ID or "" for the base, "top" / "below" / None) from a legacy layer directory's json. moby's
    tarexport gives the top layer the image's config and every other layer none and a creation time of 1970;
    a json like neither says nothing about the place."""
    try:
        fields = json.loads(legacy_json.decode("utf-8"))
    except (ValueError, AttributeError):
        return None, None
    if not isinstance(fields, dict):
        return None, None
    place = ("top" if "config" in fields
             else "below" if str(fields.get("created", "")).startswith("1970-01-01T00:00:00") else None)
    return fields.get("parent") or "", place


def _depth_range(v1_id, parents, places, count):
    """(lowest, highest) depth a legacy layer directory can have (0 is the base) in a chain of count layers, from
    the directories seen so far: the parents below it, the children above it, and its place (_legacy_links)."""
    lowest, below = 0, v1_id
    while parents.get(below) and lowest < count:  # one more layer below, seen or not
        below, lowest = parents[below], lowest + 1
    if parents.get(below) == "":  # the chain reaches the base: exact
        return lowest, lowest
    children = dict((parent, child) for child, parent in parents.items() if parent)
    highest, above = count - 1, children.get(v1_id)
    while above and highest > lowest:
        highest, above = highest - 1, children.get(above)
    if places.get(v1_id) == "top":
        return max(lowest, count - 1), highest
    if places.get(v1_id) == "below":
        return lowest, min(highest, count - 2)
    return lowest, highest


def without_layers(source, sink, skip, layers=()):
    """Copy a `docker save` tar from source to sink without the layer files whose digest (diff ID) is in skip.

    layers: the image's diff IDs in order. An OCI-layout layer file is known by its name; a legacy one by the depths
    its directory can have (_depth_range): one depth names it, and when none of the possible layers is to be left
    out it is sent as it comes; else it is hashed into a spool (only while some digest of skip is unmet; after that
    the rest streams straight through).
    Returns {"left_out": {digest: bytes}, "layers_hashed": n}."""
    left_out, unmet, parents, places, hashed = {}, set(skip), {}, {}, 0

    def leave_out(digest, size):
        left_out[digest] = size
        unmet.discard(digest)

    reader = tarfile.open(fileobj=source, mode="r|", bufsize=CHUNK)
    writer = tarfile.open(fileobj=sink, mode="w|", bufsize=CHUNK, format=tarfile.PAX_FORMAT, copybufsize=CHUNK)
    for member in reader:
        legacy_json = LEGACY_JSON.match(member.name) if member.isfile() else None
        match = LAYER_FILE.match(member.name) if member.isfile() else None
        if legacy_json:
            data = reader.extractfile(member).read()
            parents[legacy_json.group("v1")], places[legacy_json.group("v1")] = _legacy_links(data)
            writer.addfile(member, io.BytesIO(data))
            continue
        if not match or not unmet:
            writer.addfile(member, reader.extractfile(member) if member.isfile() else None)
            continue
        if match.group("digest"):
            candidates = ["sha256:" + match.group("digest")]
        else:
            lowest, highest = _depth_range(match.group("v1"), parents, places, len(layers))
            candidates = list(layers[lowest:highest + 1]) if lowest <= highest else []
        # one possible layer names it; several of which none is left out are sent, whichever it is
        digest = candidates[0] if len(candidates) == 1 or (candidates and not skip.intersection(candidates)) else None
        if digest is not None:
            if digest in skip:
                leave_out(digest, member.size)
            else:
                writer.addfile(member, reader.extractfile(member))
            continue
        hashed += 1
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            digest = _hash_into(reader.extractfile(member), spool)
            if digest in skip:
                leave_out(digest, member.size)
            else:
                spool.seek(0)
                writer.addfile(member, spool)
    writer.close()
    while source.read(CHUNK):
        pass  # the padding after the archive's end: docker save must not see a closed pipe
    return {"left_out": left_out, "layers_hashed": hashed}


def hex_of(digest):
    """The hex part of a digest (sha256:<hex>), as docker's stores name their files."""
    return digest.rsplit(":", 1)[-1]


def chain_ids(layers):
    """The chain ID of each prefix of a layer list (diff IDs), as docker's layer store names them."""
    chains = []
    for diff_id in layers:
        chains.append(diff_id if not chains else
                      "sha256:" + hashlib.sha256(("%s %s" % (chains[-1], diff_id)).encode()).hexdigest())
    return chains


def _tar_split(path):
    """The entries of a layer's tar-split.json.gz: raw tar bytes (headers, padding) or (file name, size)."""
    with gzip.open(path, "rt") as lines:
        for line in lines:
            entry = json.loads(line)
            if entry["type"] == 2:
                yield base64.b64decode(entry["payload"] or "")
            else:
                name = base64.b64decode(entry["name_raw"]) if entry.get("name_raw") else entry["name"].encode()
                yield name, entry.get("size") or 0


class _LayerReader(io.RawIOBase):
    """A layer tar as docker wrote it, rebuilt from its tar-split (headers) and its overlay2 diff (contents)."""

    def __init__(self, split_path, diff_dir):
        super(_LayerReader, self).__init__()
        self.diff_dir, self.pending, self.current = os.path.realpath(os.fsencode(diff_dir)), self._pieces(split_path), None
        self.real_dirs = {}

    def _inside(self, name):
        """The file's path under the diff directory; one that leads out of it (.., a symlinked directory) is refused."""
        path = os.path.join(self.diff_dir, os.path.normpath(name.lstrip(b"/")))
        parent = os.path.dirname(path)
        if parent not in self.real_dirs:
            self.real_dirs[parent] = os.path.realpath(parent)
        if not (self.real_dirs[parent] + b"/").startswith(self.diff_dir + b"/"):
            raise StreamError("layer store entry outside its layer: %r" % name)
        return path

    def _pieces(self, split_path):
        for piece in _tar_split(split_path):
            if isinstance(piece, bytes):
                yield io.BytesIO(piece)
            elif piece[1]:
                yield _Exactly(self._inside(piece[0]), piece[1])

    def readable(self):
        return True

    def readinto(self, buffer):
        while True:
            if self.current is None:
                self.current = next(self.pending, None)
                if self.current is None:
                    return 0
            count = self.current.readinto(buffer)
            if count:
                return count
            self.current.close()
            self.current = None


class _Exactly(io.RawIOBase):
    """size bytes of a file, opened when first read; a file that changed size is an error, not a wrong layer."""

    def __init__(self, path, size):
        super(_Exactly, self).__init__()
        self.path, self.left, self.handle = path, size, None

    def readinto(self, buffer):
        if self.handle is None:
            self.handle = os.fdopen(os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW), "rb")
        count = self.handle.readinto(memoryview(buffer)[:self.left]) if self.left else 0
        if count == 0 and self.left:
            raise StreamError("%s is shorter than the layer store says" % os.fsdecode(self.path))
        self.left -= count
        return count

    def close(self):
        if self.handle is not None:
            self.handle.close()
        super(_Exactly, self).close()


def _write_member(sink, name, size, source):
    """One file of a tar stream written straight to sink: its header, size bytes of source (read into one reused
    buffer, written a CHUNK at a time), the padding."""
    member = tarfile.TarInfo(name)
    member.size = size
    sink.write(member.tobuf(tarfile.PAX_FORMAT))
    view, left = memoryview(bytearray(CHUNK)), size
    while left:
        want = min(left, CHUNK)
        got = _fill(source.readinto, view[:want])
        if got < want:
            raise StreamError("%s ended %d bytes early" % (name, left - got))
        sink.write(view[:got])
        left -= got
    sink.write(b"\0" * (-size % tarfile.BLOCKSIZE))


def _layer_tar_size(split_path):
    return sum(len(piece) if isinstance(piece, bytes) else piece[1] for piece in _tar_split(split_path))


def _store_paths(root, image_id, layers):
    """Where docker's overlay2 layer store under root keeps image_id's config, and each layer's directory (by chain
    ID: its tar-split.json.gz and cache-id, the name of its directory under overlay2/)."""
    store = os.path.join(root, "image", "overlay2")
    return (os.path.join(store, "imagedb", "content", "sha256", hex_of(image_id)),
            [os.path.join(store, "layerdb", "sha256", hex_of(chain)) for chain in chain_ids(layers)])


def layer_store_readable(root, image_id, layers):
    """Whether this process can read image_id's config and every layer's record under root (as root; a layer
    without a tar-split record cannot be rebuilt): else the sender runs docker save."""
    config_path, layer_dirs = _store_paths(root, image_id, layers)
    records = [os.path.join(layer_dir, name) for layer_dir in layer_dirs for name in ("tar-split.json.gz", "cache-id")]
    return all(os.access(path, os.R_OK) for path in [config_path] + records)


def layer_store_archive(root, image_id, layers, repo_tags, sink, skip=()):
    """Write to sink the `docker save` archive of image_id read straight from docker's overlay2 layer store under
    root (config from the image database, each layer tar rebuilt from its tar-split and diff directory): the first
    byte leaves at once instead of after docker save has staged the whole export. Layers in skip are left out (the
    destination holds their chain). Returns {"left_out": {digest: bytes}, "layers_hashed": 0}."""
    config_path, layer_dirs = _store_paths(root, image_id, layers)
    with open(config_path, "rb") as handle:
        config = handle.read()
    if "sha256:" + hashlib.sha256(config).hexdigest() != image_id:
        raise StreamError("the image database's config of %s does not match its ID" % image_id)
    if json.loads(config.decode("utf-8"))["rootfs"]["diff_ids"] != list(layers):
        raise StreamError("the image's layers changed while it was being copied; retry")
    config_name = hex_of(image_id) + ".json"
    names = [hex_of(diff_id) + "/layer.tar" for diff_id in layers]
    manifest = json.dumps([{"Config": config_name, "RepoTags": list(repo_tags), "Layers": names}]).encode()
    for name, data in (("manifest.json", manifest), (config_name, config)):
        _write_member(sink, name, len(data), io.BytesIO(data))
    left_out = {}
    for diff_id, layer_dir, name in zip(layers, layer_dirs, names):
        split_path = os.path.join(layer_dir, "tar-split.json.gz")
        size = _layer_tar_size(split_path)
        if diff_id in skip:
            left_out[diff_id] = size
            continue
        with open(os.path.join(layer_dir, "cache-id")) as handle:
            diff_dir = os.path.join(root, "overlay2", handle.read().strip(), "diff")
        _write_member(sink, name, size, _LayerReader(split_path, diff_dir))
    sink.write(b"\0" * (2 * tarfile.BLOCKSIZE))  # the end of the archive
    return {"left_out": left_out, "layers_hashed": 0}


def save_archive(source, skip=(), layers=()):
    """send_stream's write_archive for a `docker save` stream (a binary file object): as it comes, or without the
    layer files of skip (layers: the image's diff IDs in order; without_layers)."""
    def write(sink):
        if skip:
            return without_layers(source, sink, set(skip), layers)
        while True:
            data = source.read(CHUNK)
            if not data:
                return {"left_out": {}, "layers_hashed": 0}
            sink.write(data)
    return write


def send_stream(conn, token, write_archive, source_error=None, checksum="crc32"):
    """Send MAGIC + token, then what write_archive(sink) writes (it returns a report), in frames, then the trailer.

    Returns (bytes, "<checksum>:<hex>", report). source_error() is asked at the end of the source: a message there
    means the source failed (for example `docker save` exited non-zero), and no trailer is sent, so the receiver
    cannot take the stream as complete."""
    conn.sendall(MAGIC + token)
    writer = FrameWriter(conn, checksum)
    try:
        report = write_archive(writer)
    except tarfile.TarError as exc:
        error = source_error() if source_error else None
        raise StreamError(error or "the image archive could not be read: %s" % exc)
    error = source_error() if source_error else None
    if error:
        raise StreamError(error)
    writer.finish()
    return writer.total, _labelled(checksum, writer.digest), report


def receive_stream(conn, token, sink, progress=None, checksum="crc32"):
    """Check the token, copy frames into sink (a binary file object), verify the trailer.

    Returns (bytes, "<checksum>:<hex>")."""
    hello = _recv_exact(conn, len(MAGIC) + TOKEN_BYTES)
    if hello[:len(MAGIC)] != MAGIC or not hmac.compare_digest(hello[len(MAGIC):], token):
        raise StreamError("a connection without the transfer's token was refused (not our sender)")
    digest, total = CHECKSUMS[checksum](), 0

    def consume(data):
        digest.update(data)
        sink.write(data)
    background = _InBackground(consume)  # hash and feed the sink while the next frame arrives
    try:
        while True:
            (size,) = FRAME.unpack(_recv_exact(conn, FRAME.size))
            if size == 0:
                break
            if size > CHUNK:  # a sender writes at most a CHUNK per frame
                raise StreamError("a frame of %d bytes, over the stream's %d (not our sender)" % (size, CHUNK))
            background.put(_recv_exact(conn, size))
            total += size
            if progress:
                progress(total)
    except BaseException:
        background.close(raise_error=False)
        raise
    background.close()
    sent_digest = bytes(_recv_exact(conn, digest.digest_size))
    (sent_total,) = TOTAL.unpack(_recv_exact(conn, TOTAL.size))
    if sent_total != total or not hmac.compare_digest(sent_digest, digest.digest()):
        raise StreamError("checksum mismatch: sent %d bytes %s:%s, received %d bytes %s (corrupted)"
                          % (sent_total, checksum, sent_digest.hex(), total, _labelled(checksum, digest)))
    return total, _labelled(checksum, digest)


# The process side: the sender and the receiver run as their own processes on the nodes (program()), never inside
# the module.
def _start(argv, **pipes):
    """A child of the sender or the receiver (a program of its own on a node, where the module's run_command is not
    there to call)."""
    return subprocess.Popen(argv, **pipes)  # pylint: disable=ansible-bad-function


def _finish(proc, timeout=60):
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.wait(timeout=timeout)
    return out, err


def _tail(data, lines=20):
    return "\n".join(data.decode("utf-8", "replace").rstrip().splitlines()[-lines:])


# a receive_stream progress callback that rewrites path at most once a second
def _progress_writer(path, expected, start):
    due = [0.0]

    def report(total):
        now = time.monotonic()
        if now < due[0]:
            return
        due[0] = now + 1
        write_progress(path, {"bytes": total, "seconds": round(now - start, 1), "expected": expected})
    return report if path else None


# a 1 MiB pipe into docker load (Linux's default 64 KiB costs a context switch per 64 KiB); best effort
def _widen_pipe(pipe):
    try:
        import fcntl
        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass


# the sender's connection; a sender that exits first (SSH refused, sudo wants a password) fails at once, not in 60 s
def _accept_from(listener, sender, where, timeout=60):
    listener.settimeout(0.25)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return listener.accept()[0]
        except socket.timeout:
            if sender.poll() is not None:
                raise StreamError("the sender exited (rc=%d) before it connected to %s" % (sender.returncode, where))
    raise StreamError("the sender never connected to %s within %d s" % (where, timeout))


def _fail(message):
    sys.stderr.write(message.rstrip() + "\n")
    raise SystemExit(3)


def sender_main(params):
    start = time.monotonic()
    skip, layers, save = params.get("skip") or (), params.get("layers") or (), None
    root = params.get("layer_store")
    if root and layer_store_readable(root, params["image_id"], layers):
        export, save_error = "layer store", None
        write_archive = functools.partial(layer_store_archive, root, params["image_id"], layers,
                                          params.get("repo_tags") or [], skip=set(skip))
    else:
        export = "docker save"
        save = _start([params["docker"], "save", params["image"]], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        write_archive = save_archive(save.stdout, skip, layers)

        def save_error():
            err = save.stderr.read()
            if save.wait() != 0:
                return "docker save %s failed (rc=%d): %s" % (params["image"], save.returncode, _tail(err))
            return None
    try:
        conn = socket.create_connection((params["host"], params["port"]), timeout=params["connect_timeout"])
        conn.settimeout(params["io_timeout"])
        with conn:
            total, digest, report = send_stream(conn, bytes.fromhex(params["token"]), write_archive, save_error,
                                                params["checksum"])
            conn.shutdown(socket.SHUT_WR)
            conn.recv(1)  # the receiver closes once it has verified the trailer
    except (OSError, StreamError) as exc:
        if save is not None:
            save.kill()
        _fail("sender: %s" % exc)
    sys.stdout.write(json.dumps(dict(report, bytes=total, checksum=digest, export=export,
                                     seconds=round(time.monotonic() - start, 3))) + "\n")


def receiver_main(params):
    token = os.urandom(TOKEN_BYTES)
    address = params["listen_address"]
    listener = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, params["port"]))
    listener.listen(1)  # listening before the sender exists: no race, no sleep
    port = listener.getsockname()[1]
    sender_params = dict(params["sender"], host=address, port=port, token=token.hex(), checksum=params["checksum"])
    sender = _start(params["ssh_argv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with sender.stdin:
            sender.stdin.write(program(params["source"], "sender_main", sender_params).encode())
    except BrokenPipeError:
        pass  # the sender exited at once: _accept_from says so, with what it printed
    loader, start = None, time.monotonic()
    try:
        # docker load starts while the sender does (it is killed unloaded if no good stream comes)
        loader = _start([params["docker"], "load"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
        _widen_pipe(loader.stdin)
        conn = _accept_from(listener, sender, "%s:%d" % (address, port))
        conn.settimeout(min(params["timeout"], 300))
        with conn:  # closed once the trailer is verified: the sender ends while docker load registers the layers
            total, digest = receive_stream(conn, token, loader.stdin,
                                           _progress_writer(params.get("progress_file"), params.get("expected"), start),
                                           params["checksum"])
        load_out, load_err = loader.communicate(timeout=params["timeout"])  # closes docker load's stdin
        if loader.returncode != 0:
            raise StreamError("docker load failed (rc=%d): %s" % (loader.returncode, _tail(load_err)))
    except (StreamError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
        if loader is not None and loader.poll() is None:
            loader.kill()  # a truncated tar must not finish loading
            loader.wait()
        try:
            sender.wait(timeout=5)  # a sender that failed first is still writing why
        except subprocess.TimeoutExpired:
            sender.kill()
        sender_err = _finish(sender)[1]
        _fail("%s%s" % (exc, ("; sender: " + _tail(sender_err, 3)) if sender_err.strip() else ""))
    finally:
        listener.close()
    sender_out, sender_err = _finish(sender)
    if sender.returncode != 0:
        _fail("the sender failed after the stream (rc=%d): %s" % (sender.returncode, _tail(sender_err, 3)))
    seconds = time.monotonic() - start
    sent = json.loads(sender_out.decode("utf-8", "replace").strip().splitlines()[-1])
    sys.stdout.write(json.dumps({
        "bytes": total, "checksum": digest, "seconds": round(seconds, 3),
        "throughput_mib_s": round(total / 1048576.0 / max(seconds, 1e-6), 1),
        "docker_load": load_out.decode("utf-8", "replace").strip(), "sender": sent}) + "\n")


def program(source, entry, params):
    """The program text for `python3 -`: own_source() and one call of entry(params)."""
    return "%s\n%s(json.loads(%r))\n" % (source, entry, json.dumps(params))


def own_source():
    """The text a node runs: the progress writer's module and this one (read through the module's loader, also
    inside an AnsiballZ payload); both import only the standard library there."""
    import inspect
    return inspect.getsource(_progress_file) + inspect.getsource(sys.modules[__name__])
