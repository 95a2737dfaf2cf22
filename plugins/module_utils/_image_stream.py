# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stream of p2p_image_copy (an image) and of weight_sync's relay (files): framed TCP between two nodes,
authenticated end to end.

Two programs, each a separate process: the receiver (run by the module on the destination with run_command, its
program on stdin) listens first, then starts the sender on the source over SSH (program and one-time token on SSH's
stdin, never in an argv). The sender proves the token and streams the image archive in frames: read straight from
docker's overlay2 layer store when it can (layer_store_archive), else `docker save`; the last frame carries the
HMAC-SHA256 (keyed by the token) of everything sent and its length, which the receiver compares with what it fed
to `docker load` before it lets docker load see the end of the archive: a stream damaged, cut short or altered by
anyone without the token never loads. The receiver also reads the archive's manifest as it passes
(ArchiveWatch) and refuses one that would tag anything but the image asked for. A connection that does not open
with the token (a port scan) is dropped and the receiver keeps listening for its sender until the timeout.
Layers the destination already holds can be left out of the stream (without_layers): docker's load skips reading
a layer file whose chain it holds, so those bytes never cross the wire.
Files (weight_sync) travel the same way as a tar archive (_files_source: `tar -c` of the listed paths) into the
receiver's loader, `tar -x` into a staging directory that the module moves into place once the stream is whole.
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

if __name__ != "__main__":  # as a program on a node (python3 -, own_source), _progress_file's text came first
    from ansible_collections.dgx_spark.cluster.plugins.module_utils import _progress_file
    from ansible_collections.dgx_spark.cluster.plugins.module_utils._progress_file import read_progress, write_progress

MAGIC = b"DGXSPARK-IMG1"
FRAME = struct.Struct("!Q")  # payload length; 0 ends the stream and is followed by the trailer
TOTAL = struct.Struct("!Q")  # the trailer: the HMAC of the payload and its length, then the length
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


def _mac(token):
    """The stream's authenticator: HMAC-SHA256 keyed by the copy's one-time token (hashlib's SHA-256 releases the
    GIL, so it runs beside the socket I/O)."""
    return hmac.new(bytes(token), digestmod=hashlib.sha256)


def _labelled(mac):
    return "hmac-sha256:" + mac.hexdigest()


class FrameWriter:
    """The sending end of a stream: frames what it is given, authenticating and counting it (a file object for
    tarfile)."""

    def __init__(self, conn, token):
        self.conn = conn
        self.digest = _mac(token)
        self.total = 0

    def write(self, data):
        if data:
            self.digest.update(data)
            self.total += len(data)
            self.conn.sendall(FRAME.pack(len(data)))
            self.conn.sendall(data)
        return len(data)

    def finish(self):
        self.digest.update(TOTAL.pack(self.total))  # the length is authenticated too
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


def send_stream(conn, token, write_archive, source_error=None, hello=True):
    """Send MAGIC + token (unless the caller sent them: hello=False), then what write_archive(sink) writes (it
    returns a report), in frames, then the trailer.

    Returns (bytes, "hmac-sha256:<hex>", report). source_error() is asked at the end of the source: a message there
    means the source failed (for example `docker save` exited non-zero), and no trailer is sent, so the receiver
    cannot take the stream as complete."""
    if hello:
        conn.sendall(MAGIC + token)
    writer = FrameWriter(conn, token)
    try:
        report = write_archive(writer)
    except tarfile.TarError as exc:
        error = source_error() if source_error else None
        raise StreamError(error or "the image archive could not be read: %s" % exc)
    error = source_error() if source_error else None
    if error:
        raise StreamError(error)
    writer.finish()
    return writer.total, _labelled(writer.digest), report


def hello_ok(conn, token, timeout=5):
    """Whether the connection opens with MAGIC + token within timeout seconds (compared in constant time)."""
    conn.settimeout(timeout)
    try:
        hello = _recv_exact(conn, len(MAGIC) + TOKEN_BYTES)
    except (StreamError, OSError):
        return False
    return hello[:len(MAGIC)] == MAGIC and hmac.compare_digest(bytes(hello[len(MAGIC):]), token)


def accept_sender(listener, token, timeout, sender=None, where="the receiver"):
    """(connection, refused): the first connection that proves the token; others (a port scan, a stranger) are
    closed and counted while listening goes on until timeout. A sender process that exits first fails at once."""
    listener.settimeout(0.25)
    deadline, refused = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        try:
            conn = listener.accept()[0]
        except socket.timeout:
            if sender is not None and sender.poll() is not None:
                raise StreamError("the sender exited (rc=%d) before it connected to %s" % (sender.returncode, where))
            continue
        if hello_ok(conn, token, min(5, max(0.5, deadline - time.monotonic()))):
            return conn, refused
        conn.close()
        refused += 1
    raise StreamError("the sender never connected to %s within %d s%s" % (
        where, timeout, " (%d connection(s) without the transfer's token were refused)" % refused if refused else ""))


def receive_stream(conn, token, sink, progress=None):
    """Copy frames into sink (a binary file object) from a connection that proved the token (accept_sender);
    verify the trailer's HMAC and length.

    Returns (bytes, "hmac-sha256:<hex>")."""
    digest, total = _mac(token), 0

    def consume(data):
        digest.update(data)
        sink.write(data)
    background = _InBackground(consume)  # authenticate and feed the sink while the next frame arrives
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
    digest.update(TOTAL.pack(sent_total))
    if sent_total != total or not hmac.compare_digest(sent_digest, digest.digest()):
        raise StreamError("the stream does not authenticate: sent %d bytes, received %d, HMAC %s (corrupted, or "
                          "altered on the way)" % (sent_total, total, "mismatch" if sent_total == total else "n/a"))
    return total, _labelled(digest)


def familiar(reference):
    """An image reference as docker names it in `docker images` (docker.io/ and library/ dropped)."""
    for prefix in ("docker.io/", "index.docker.io/"):
        if reference.startswith(prefix):
            reference = reference[len(prefix):]
    return reference[len("library/"):] if reference.startswith("library/") and reference.count("/") == 1 else reference


class ArchiveWatch:
    """Forwards an image archive to sink (docker load's stdin) and reads its tar headers as they pass, keeping the
    small files that say what docker load will tag (manifest.json, index.json). tag_problem() says whether the
    archive would tag anything but what was asked for."""
    KEEP = ("manifest.json", "index.json")
    LIMIT = 1 << 20

    def __init__(self, sink):
        self.sink = sink
        self.header, self.data_left, self.pad_left = bytearray(), 0, 0
        self.collecting, self.next_name, self.kept, self.ended = None, None, {}, False

    def write(self, data):
        self.sink.write(data)
        view, at = memoryview(data), 0
        while at < len(view) and not self.ended:
            if self.data_left:
                take = min(self.data_left, len(view) - at)
                if self.collecting is not None:
                    self.collecting[1].extend(view[at:at + take])
                self.data_left -= take
                at += take
                if not self.data_left:
                    self._member_done()
            elif self.pad_left:
                take = min(self.pad_left, len(view) - at)
                self.pad_left -= take
                at += take
            else:
                take = min(tarfile.BLOCKSIZE - len(self.header), len(view) - at)
                self.header.extend(view[at:at + take])
                at += take
                if len(self.header) == tarfile.BLOCKSIZE:
                    self._header_done(bytes(self.header))
                    self.header = bytearray()
        return len(data)

    def _header_done(self, block):
        if block.count(0) == tarfile.BLOCKSIZE:
            self.ended = True  # the archive's end: what follows is padding
            return
        try:
            member = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise StreamError("the image archive has a damaged tar header (%s)" % exc)
        name, self.next_name = self.next_name or member.name, None
        name = name[2:] if name.startswith("./") else name
        meta = member.type in (tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME)
        wanted = meta or (member.isfile() and name in self.KEEP)
        if wanted and member.size > self.LIMIT:
            raise StreamError("the image archive's %s is %d bytes: not an image's" % (name, member.size))
        self.collecting = (member.type if meta else name, bytearray()) if wanted else None
        self.data_left, self.pad_left = member.size, -member.size % tarfile.BLOCKSIZE
        if not member.size:
            self._member_done()

    def _member_done(self):
        if self.collecting is None:
            return
        kind, data = self.collecting
        self.collecting = None
        if kind == tarfile.GNUTYPE_LONGNAME:
            self.next_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
        elif kind == tarfile.XHDTYPE:
            for record in re.findall(rb"\d+ path=([^\n]*)\n", bytes(data)):
                self.next_name = record.decode("utf-8", "surrogateescape")
        else:
            self.kept[kind] = bytes(data)

    def tags(self):
        """(tags docker load would set, number of images): from manifest.json, else index.json's names."""
        try:
            manifest = json.loads(self.kept["manifest.json"]) if "manifest.json" in self.kept else None
            index = json.loads(self.kept["index.json"]) if "index.json" in self.kept else None
        except ValueError:
            raise StreamError("the image archive's manifest is not JSON")
        tags, images = [], 0
        if isinstance(manifest, list):
            images = len(manifest)
            tags += [t for entry in manifest if isinstance(entry, dict) for t in entry.get("RepoTags") or []]
        if isinstance(index, dict):
            entries = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
            images = max(images, len(entries))
            tags += [(m.get("annotations") or {}).get("io.containerd.image.name") for m in entries]
        return sorted(set(familiar(str(t)) for t in tags if t)), images

    def tag_problem(self, allowed):
        """None when the archive is whole and holds one image tagged at most with allowed; else what is wrong."""
        if not self.ended:
            return "the image archive ended early (no end-of-archive marker): the source's export was cut short"
        tags, images = self.tags()
        extra = [t for t in tags if t not in set(familiar(a) for a in allowed)]
        if images != 1 or extra:
            return ("the image archive would load %d image(s) tagged %s, not only %s: refused (not what the "
                    "source was asked for)" % (images, ", ".join(tags) or "nothing", ", ".join(allowed) or "the ID"))
        return None


# ------------------------------------------------------------------ the relay: each node forwards what it receives
# A node copying with a next node behind it (relay_to_next) writes what it receives, as it arrives, to a spool in the
# relay directory; the next node's sender, started there, reads the spool while it grows and streams it on, so N
# nodes cost about one copy through the head's uplink. Beside the spool, small markers say how it ended: done (its
# length: the stream was whole and authenticated), failed (why), held (the node had the image, or finished before the
# next node began: the sender reads the node's own docker instead).
RELAY_WAIT = 120  # seconds a relaying sender waits for the node before it to start receiving
RELAY_STALL = 60  # seconds without a new byte from the node before it that end the relay
RELAY_FILES = ("archive", "done", "failed", "held")


def relay_paths(directory, relay_id):
    """{archive, done, failed, held}: the files of one relay (relay_id is validated) in directory."""
    return dict((kind, os.path.join(directory, "%s.%s" % (relay_id, kind))) for kind in RELAY_FILES)


def relay_directory(directory):
    """Create the relay directory private to this user, or refuse one that is a link or someone else's."""
    if not os.path.lexists(directory):
        os.makedirs(directory, 0o700)
    if os.path.islink(directory) or not os.path.isdir(directory) or os.lstat(directory).st_uid != os.getuid():
        raise StreamError("the relay directory %s is not a directory of this user's" % directory)


def relay_mark(paths, kind, fields=None):
    """A marker for the next node (written whole: a reader never sees half of one)."""
    write_progress(paths[kind], fields or {})


def relay_remove(paths, kinds=RELAY_FILES):
    for kind in kinds:
        try:
            os.unlink(paths[kind])
        except OSError:
            pass


def relay_sweep(directory, older_than=3600):
    """Remove what relays that ended long ago left in directory (markers no next node read, the spool of one that
    never came); the files of a relay under way are younger."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    cutoff = time.time() - older_than
    for name in names:
        path = os.path.join(directory, name)
        try:
            if name.rsplit(".", 1)[-1] in RELAY_FILES and os.lstat(path).st_mtime < cutoff:
                os.unlink(path)
        except OSError:
            pass


class RelaySpool:
    """The receiving end's copy for the next node: the bytes as they arrive (a file created exclusively in a private
    directory, without following links), then the done or failed marker."""

    def __init__(self, paths):
        relay_directory(os.path.dirname(paths["archive"]))
        relay_remove(paths)  # what a killed earlier run of the same relay left
        self.paths = paths
        self.file = os.fdopen(os.open(paths["archive"], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600),
                              "wb")
        self.finished = False

    def write(self, data):
        self.file.write(data)

    def finish(self, total):
        self.file.close()
        relay_mark(self.paths, "done", {"bytes": total})
        self.finished = True

    def fail(self, reason):
        """Before the stream was whole: the next node's sender stops (no trailer: its receiver loads nothing) and
        that node copies from the source. After (this node's own docker load failed), the bytes are good: the module
        decides (relay_failed_here)."""
        self.file.close()
        if not self.finished:
            relay_mark(self.paths, "failed", {"reason": reason})
            relay_remove(self.paths, ("archive",))


def relay_failed_here(paths, reason):
    """This node's copy failed: a next node that has not opened the spool is told to copy from the source, and the
    spool goes; one reading a whole stream (done) finishes it; a failure the receiver marked already stays."""
    if os.path.exists(paths["archive"]) or not os.path.exists(paths["done"]):
        if not os.path.exists(paths["failed"]):
            relay_mark(paths, "failed", {"reason": reason})
        relay_remove(paths, ("archive",))


def relay_handover(paths):
    """After a node's own copy succeeded: a spool the next node has not opened yet is removed (it would stay on the
    disk if that node never came) and the node is marked held, so a next node that comes later reads its docker.
    A spool already opened is the next node's (it removes the markers when it is done)."""
    if os.path.exists(paths["archive"]):
        relay_mark(paths, "held")
        relay_remove(paths, ("archive",))


class _Tee:
    def __init__(self, *sinks):
        self.sinks = sinks

    def write(self, data):
        for sink in self.sinks:
            sink.write(data)
        return len(data)


def relay_open(paths, wait=RELAY_WAIT):
    """On the node before (the relaying sender): its spool, open and unlinked (its space goes when both ends have
    closed it), or None when the node holds the image itself. StreamError when its copy failed or never began."""
    deadline = time.monotonic() + wait
    while True:
        failed = read_progress(paths["failed"])
        if failed is not None:
            raise StreamError("its own copy failed: %s" % failed.get("reason", "unknown"))
        if os.path.exists(paths["held"]):
            return None
        try:
            spool = open(paths["archive"], "rb")
        except OSError:
            spool = None
        if spool is not None:
            relay_remove(paths, ("archive",))
            return spool
        if time.monotonic() > deadline:
            raise StreamError("it did not begin receiving within %g s" % wait)
        time.sleep(0.1)


def relay_archive(spool, paths, stall=RELAY_STALL):
    """send_stream's write_archive for a spool as the node before receives it: until its done marker's length;
    StreamError when that node's copy fails or no byte comes for stall seconds."""
    def write(sink):
        total, moved = 0, time.monotonic()
        with spool:
            while True:
                data = spool.read(CHUNK)
                if data:
                    sink.write(data)
                    total += len(data)
                    moved = time.monotonic()
                    continue
                failed = read_progress(paths["failed"])
                if failed is not None:
                    raise StreamError("its own copy failed: %s" % failed.get("reason", "unknown"))
                done = read_progress(paths["done"])
                if done is not None and total >= done.get("bytes", 0):
                    if total != done.get("bytes"):
                        raise StreamError("its spool holds %d bytes, its stream had %s" % (total, done.get("bytes")))
                    return {"left_out": {}, "layers_hashed": 0}
                if time.monotonic() - moved > stall:
                    raise StreamError("no byte came from it for %g s" % stall)
                time.sleep(0.02)
    return write


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


def _fail(message):
    sys.stderr.write(message.rstrip() + "\n")
    raise SystemExit(3)


def _docker_source(params):
    """(export, write_archive, source_error, docker save process or None): the image from this node's docker, its
    overlay2 layer store when readable, else `docker save`; without the layer files of params' skip."""
    skip, layers = params.get("skip") or (), params.get("layers") or ()
    root = params.get("layer_store")
    if root and layer_store_readable(root, params["image_id"], layers):
        return ("layer store", functools.partial(layer_store_archive, root, params["image_id"], layers,
                                                 params.get("repo_tags") or [], skip=set(skip)), None, None)
    save = _start([params["docker"], "save", params["image"]], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def save_error():
        err = save.stderr.read()
        if save.wait() != 0:
            return "docker save %s failed (rc=%d): %s" % (params["image"], save.returncode, _tail(err))
        return None
    return "docker save", save_archive(save.stdout, skip, layers), save_error, save


def _feed(pipe, data):
    with pipe:
        try:
            pipe.write(data)
        except BrokenPipeError:
            pass  # the reader exited: its status says why


def _files_source(params):
    """(export, write_archive, source_error, tar process): params["files"] ({root, paths}: paths relative to root)
    as one tar stream read from this node's disk, links kept as links."""
    files = params["files"]
    tar = _start([params["tar"], "-c", "-f", "-", "-C", files["root"], "--no-recursion", "--null", "-T", "-"],
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    names = b"".join(path.encode("utf-8") + b"\0" for path in files["paths"])
    feeder = threading.Thread(target=_feed, args=(tar.stdin, names))  # tar writes while it still reads names
    feeder.daemon = True
    feeder.start()

    def tar_error():
        err = tar.stderr.read()
        if tar.wait() != 0:
            return "tar of %d path(s) under %s failed (rc=%d): %s" % (
                len(files["paths"]), files["root"], tar.returncode, _tail(err))
        return None
    return "files", save_archive(tar.stdout), tar_error, tar


def sender_main(params):
    start = time.monotonic()
    relay, save = params.get("relay"), None
    paths = relay_paths(relay["dir"], relay["id"]) if relay else None
    stage, token = "relay" if relay else "sender", bytes.fromhex(params["token"])
    try:
        conn = socket.create_connection((params["host"], params["port"]), timeout=params["connect_timeout"])
        conn.settimeout(params["io_timeout"])
        with conn:
            conn.sendall(MAGIC + token)  # the token first: a relay may wait here for the node before it to begin
            spool = relay_open(paths, relay["wait"]) if relay else None
            if spool is not None:  # the whole archive as the node before receives it (skip is not applied)
                export, write_archive, save_error = "relay", relay_archive(spool, paths, relay["stall"]), None
            else:
                stage = "sender"
                export, write_archive, save_error, save = (_files_source if params.get("files")
                                                           else _docker_source)(params)
            total, digest, report = send_stream(conn, token, write_archive, save_error, hello=False)
            conn.shutdown(socket.SHUT_WR)
            conn.recv(1)  # the receiver closes once it has verified the trailer
    except (OSError, StreamError) as exc:
        if save is not None:
            save.kill()
        _fail("%s: %s" % (stage, exc))
    finally:
        if relay:
            relay_remove(paths, ("done", "held"))  # this relay's markers: read by this sender only
    sys.stdout.write(json.dumps(dict(report, bytes=total, checksum=digest, export=export,
                                     seconds=round(time.monotonic() - start, 3))) + "\n")


def receiver_main(params):
    """params["load"]: {argv, name, image}: the loader fed the stream (image: docker load, its archive watched)."""
    token, load = os.urandom(TOKEN_BYTES), params["load"]
    address = params["listen_address"]
    listener = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, params["port"]))
    listener.listen(8)  # listening before the sender exists: no race, no sleep
    port = listener.getsockname()[1]
    sender_params = dict(params["sender"], host=address, port=port, token=token.hex())
    try:
        spool = RelaySpool(relay_paths(params["spool"]["dir"], params["spool"]["id"])) if params.get("spool") else None
    except (OSError, StreamError) as exc:
        _fail("the relay spool for the next node: %s" % exc)
    sender = _start(params["ssh_argv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with sender.stdin:
            sender.stdin.write(program(params["source"], "sender_main", sender_params).encode())
    except BrokenPipeError:
        pass  # the sender exited at once: accept_sender says so, with what it printed
    loader, start = None, time.monotonic()
    try:
        # the loader (docker load, or tar -x into a staging directory) starts while the sender does; it is killed
        # unfinished if no good stream comes
        loader = _start(load["argv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _widen_pipe(loader.stdin)
        conn, refused = accept_sender(listener, token, min(params["timeout"], 60), sender, "%s:%d" % (address, port))
        conn.settimeout(min(params["timeout"], 300))
        watch = ArchiveWatch(loader.stdin) if load["image"] else loader.stdin
        with conn:  # closed once the trailer is verified: the sender ends while docker load registers the layers
            total, digest = receive_stream(conn, token, _Tee(spool, watch) if spool else watch,
                                           _progress_writer(params.get("progress_file"), params.get("expected"), start))
        # docker load commits nothing before the archive's end: a wrong archive is refused before it gets there
        wrong = load["image"] and watch.tag_problem(params["sender"].get("repo_tags") or [])
        if wrong:
            raise StreamError(wrong)
        if spool:
            spool.finish(total)  # whole and authenticated: the next node need not wait for this node's docker load
        load_out, load_err = loader.communicate(timeout=params["timeout"])  # closes docker load's stdin
        if loader.returncode != 0:
            raise StreamError("%s failed (rc=%d): %s" % (load["name"], loader.returncode, _tail(load_err)))
    except (StreamError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
        if loader is not None and loader.poll() is None:
            loader.kill()  # a truncated tar must not finish loading
            loader.wait()
        elif loader is not None and loader.returncode and not loader.stderr.closed:  # it died first: the cause
            exc = "%s exited (rc=%d): %s (%s)" % (
                load["name"], loader.returncode, _tail(loader.stderr.read(), 3), exc)
        try:
            sender.wait(timeout=5)  # a sender that failed first is still writing why
        except subprocess.TimeoutExpired:
            sender.kill()
        sender_err = _finish(sender)[1]
        reason = "%s%s" % (exc, ("; sender: " + _tail(sender_err, 3)) if sender_err.strip() else "")
        if spool:
            spool.fail(reason)
        _fail(reason)
    finally:
        listener.close()
    sender_out, sender_err = _finish(sender)
    if sender.returncode != 0:
        _fail("the sender failed after the stream (rc=%d): %s" % (sender.returncode, _tail(sender_err, 3)))
    seconds = time.monotonic() - start
    sent = json.loads(sender_out.decode("utf-8", "replace").strip().splitlines()[-1])
    sys.stdout.write(json.dumps({
        "bytes": total, "checksum": digest, "refused_connections": refused, "seconds": round(seconds, 3),
        "throughput_mib_s": round(total / 1048576.0 / max(seconds, 1e-6), 1),
        "loaded": load_out.decode("utf-8", "replace").strip(), "sender": sent}) + "\n")


def program(source, entry, params):
    """The program text for `python3 -`: own_source() and one call of entry(params)."""
    return "%s\n%s(json.loads(%r))\n" % (source, entry, json.dumps(params))


def own_source():
    """The text a node runs: the progress writer's module and this one (read through the module's loader, also
    inside an AnsiballZ payload); both import only the standard library there."""
    import inspect
    return inspect.getsource(_progress_file) + inspect.getsource(sys.modules[__name__])
