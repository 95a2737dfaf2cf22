# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image stream of p2p_image_copy: authenticated, framed, checksummed TCP between two nodes.

Two programs, each a separate process: the receiver (run by the module on the destination with run_command, its
program on stdin) listens first, then starts the sender on the source over SSH (program and one-time token on SSH's
stdin, never in an argv). The sender proves the token and streams `docker save` in frames; the last frame carries
the SHA-256 and length of everything sent, which the receiver compares with what it fed to `docker load`.
A program is this file's text (stdlib only: keep it self-contained) plus PROGRAMS plus one call.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import hmac
import json
import struct

MAGIC = b"DGXSPARK-IMG1"
FRAME = struct.Struct("!Q")  # payload length; 0 ends the stream and is followed by the trailer
TRAILER = struct.Struct("!32sQ")  # sha256 digest, total bytes
CHUNK = 4 << 20
TOKEN_BYTES = 32


class StreamError(Exception):
    """The stream broke: what happened, in words a user can act on."""


def _recv_exact(conn, size):
    chunks, left = [], size
    while left:
        data = conn.recv(min(left, CHUNK))
        if not data:
            raise StreamError("the sender closed the connection after %d of %d bytes of a frame (interrupted)"
                              % (size - left, size))
        chunks.append(data)
        left -= len(data)
    return b"".join(chunks)


def send_stream(conn, token, source, source_error=None):
    """Send MAGIC + token, then source (a binary file object) in frames, then the trailer. Returns (bytes, sha256).

    source_error() is asked at the end of the source: a message there means the source failed (for example
    `docker save` exited non-zero), and no trailer is sent, so the receiver cannot take the stream as complete."""
    conn.sendall(MAGIC + token)
    digest, total = hashlib.sha256(), 0
    while True:
        data = source.read(CHUNK)
        if not data:
            break
        digest.update(data)
        total += len(data)
        conn.sendall(FRAME.pack(len(data)) + data)
    error = source_error() if source_error else None
    if error:
        raise StreamError(error)
    conn.sendall(FRAME.pack(0) + TRAILER.pack(digest.digest(), total))
    return total, digest.hexdigest()


def receive_stream(conn, token, sink, progress=None):
    """Check the token, copy frames into sink (a binary file object), verify the trailer. Returns (bytes, sha256)."""
    hello = _recv_exact(conn, len(MAGIC) + TOKEN_BYTES)
    if hello[:len(MAGIC)] != MAGIC or not hmac.compare_digest(hello[len(MAGIC):], token):
        raise StreamError("a connection without the transfer's token was refused (not our sender)")
    digest, total = hashlib.sha256(), 0
    while True:
        (size,) = FRAME.unpack(_recv_exact(conn, FRAME.size))
        if size == 0:
            break
        data = _recv_exact(conn, size)
        digest.update(data)
        total += size
        sink.write(data)
        if progress:
            progress(total)
    sent_digest, sent_total = TRAILER.unpack(_recv_exact(conn, TRAILER.size))
    if sent_total != total or not hmac.compare_digest(sent_digest, digest.digest()):
        raise StreamError("checksum mismatch: sent %d bytes sha256 %s, received %d bytes sha256 %s (corrupted)"
                          % (sent_total, sent_digest.hex(), total, digest.hexdigest()))
    return total, digest.hexdigest()


# The process side, kept as program text: it runs as its own process on a node, never inside the module.
PROGRAMS = r"""
import os
import socket
import subprocess
import sys
import time


def _finish(proc, timeout=60):
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.wait(timeout=timeout)
    return out, err


def _tail(data, lines=20):
    return "\n".join(data.decode("utf-8", "replace").rstrip().splitlines()[-lines:])


def _fail(message):
    sys.stderr.write(message.rstrip() + "\n")
    raise SystemExit(3)


def sender_main(params):
    start = time.monotonic()
    save = subprocess.Popen([params["docker"], "save", params["image"]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)

    def save_error():
        err = save.stderr.read()
        if save.wait() != 0:
            return "docker save %s failed (rc=%d): %s" % (params["image"], save.returncode, _tail(err))
        return None
    try:
        conn = socket.create_connection((params["host"], params["port"]), timeout=params["connect_timeout"])
        conn.settimeout(params["io_timeout"])
        with conn:
            total, digest = send_stream(conn, bytes.fromhex(params["token"]), save.stdout, save_error)
            conn.shutdown(socket.SHUT_WR)
            conn.recv(1)  # the receiver closes once it has verified the trailer
    except (OSError, StreamError) as exc:
        save.kill()
        _fail("sender: %s" % exc)
    sys.stdout.write(json.dumps({"bytes": total, "sha256": digest,
                                 "seconds": round(time.monotonic() - start, 3)}) + "\n")


def receiver_main(params):
    token = os.urandom(TOKEN_BYTES)
    address = params["listen_address"]
    listener = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, params["port"]))
    listener.listen(1)  # listening before the sender exists: no race, no sleep
    port = listener.getsockname()[1]
    sender_params = dict(params["sender"], host=address, port=port, token=token.hex())
    sender = subprocess.Popen(params["ssh_argv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    sender.stdin.write(program(params["source"], "sender_main", sender_params).encode())
    sender.stdin.close()
    loader, start = None, time.monotonic()
    try:
        listener.settimeout(60)
        try:
            conn = listener.accept()[0]
        except socket.timeout:
            raise StreamError("the sender never connected to %s:%d within 60 s" % (address, port))
        conn.settimeout(min(params["timeout"], 300))
        loader = subprocess.Popen([params["docker"], "load"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        with conn:
            total, digest = receive_stream(conn, token, loader.stdin)
            load_out, load_err = loader.communicate(timeout=params["timeout"])  # closes docker load's stdin
        if loader.returncode != 0:
            raise StreamError("docker load failed (rc=%d): %s" % (loader.returncode, _tail(load_err)))
    except (StreamError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
        if loader is not None and loader.poll() is None:
            loader.kill()  # a truncated tar must not finish loading
            loader.wait()
        sender.kill()
        sender_err = _finish(sender)[1]
        _fail("%s%s" % (exc, ("; sender: " + _tail(sender_err, 3)) if sender_err.strip() else ""))
    finally:
        listener.close()
    sender_out, sender_err = _finish(sender)
    if sender.returncode != 0:
        _fail("the sender failed after the stream (rc=%d): %s" % (sender.returncode, _tail(sender_err, 3)))
    seconds = time.monotonic() - start
    sys.stdout.write(json.dumps({
        "bytes": total, "sha256": digest, "seconds": round(seconds, 3),
        "throughput_mib_s": round(total / 1048576.0 / max(seconds, 1e-6), 1),
        "docker_load": load_out.decode("utf-8", "replace").strip(),
        "sender": sender_out.decode("utf-8", "replace").strip()}) + "\n")
"""


def program(source, entry, params):
    """The program text for `python3 -`: this file's source, the process side, and one call of entry(params)."""
    return "%s\nexec(PROGRAMS)\n%s(json.loads(%r))\n" % (source, entry, json.dumps(params))


def own_source():
    """This file's text (also inside an AnsiballZ payload, through the module's loader)."""
    import inspect
    import sys
    return inspect.getsource(sys.modules[__name__])
