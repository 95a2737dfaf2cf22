"""A Hugging Face Hub double for the lab (huggingface.co is not reachable here).

Serves the model directories under --root (<root>/<org>/<name>/...) as Hub repositories through the endpoints the
real `hf download` (huggingface_hub 2.x snapshot_download) calls, with the headers it reads:
  GET  /api/models/<org>/<name>[/revision/<rev>]       repo info: id, sha, siblings
  GET  /api/models/<org>/<name>/tree/<rev>[/<path>]    file listing (path, size, oid, lfs)
  HEAD/GET /<org>/<name>/resolve/<rev>/<path>          X-Repo-Commit, ETag / X-Linked-Etag, sizes; the bytes
A `Range: bytes=N-` request gets the rest of the file (206 Partial Content), as the Hub's CDN answers a resumed
download. With --token-file every request must carry `Authorization: Bearer <that token>` (401 otherwise, like a
gated repo). With --cut-after N, the first --cuts GETs of a weights (LFS) file send N bytes of it and drop the
connection, as a network failure mid-download does. Each request is appended to --log as one JSON line: method,
path, authorized (the token itself is never logged), the range's first byte and the bytes sent.
Prints the port it listens on, then serves until killed.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import http.server
import json
import os
import sys
import threading
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
RANGE = re.compile(r"bytes=(\d+)-$")


def listing(repo_dir):
    """[{path, size, oid, lfs}] for every file of a repository directory."""
    files = []
    for dirpath, _dirs, names in sorted(os.walk(repo_dir)):
        for name in sorted(names):
            if name.startswith(".complete"):
                continue
            full = os.path.join(dirpath, name)
            with open(full, "rb") as handle:
                data = handle.read()
            entry = {"type": "file", "path": os.path.relpath(full, repo_dir), "size": len(data),
                     "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
            if name.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            files.append(entry)
    return files


def commit_of(files):
    return hashlib.sha1(json.dumps(files, sort_keys=True).encode()).hexdigest()


class Hub(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, root, token, log_path, cut_after=0, cuts=0):
        super().__init__(address, Handler)
        self.root, self.token, self.log_path = root, token, log_path
        self.cut_after, self.cuts_left = cut_after, cuts
        self.log_lock = threading.Lock()

    def take_cut(self):
        """Whether this GET of a weights file is one to drop part-way."""
        with self.log_lock:
            if self.cut_after and self.cuts_left > 0:
                self.cuts_left -= 1
                return True
        return False


class Handler(http.server.BaseHTTPRequestHandler):
    server: Hub

    def log_message(self, *args):
        return

    def _record(self, authorized, **details):
        if self.server.log_path:
            with self.server.log_lock, open(self.server.log_path, "a") as log:
                log.write(json.dumps(dict(details, method=self.command, path=self.path, authorized=authorized)) + "\n")

    def _send(self, code, body=b"", headers=None, content_type="application/json", length=None):
        """A response; with length, Content-Length says more than body holds (a cut transfer)."""
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _repo(self, org, name):
        repo_dir = os.path.join(self.server.root, org, name)
        return repo_dir if os.path.isdir(repo_dir) else None

    def _route(self):
        authorized = not self.server.token or \
            self.headers.get("Authorization", "") == "Bearer " + self.server.token
        if not authorized:
            self._record(authorized)
            return self._send(401, json.dumps({"error": "Invalid credentials in Authorization header"}).encode(),
                              {"X-Error-Code": "GatedRepo"})
        parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(parts)
        self._record(authorized)
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_dir = self._repo(parts[2], parts[3])
            if repo_dir is None:
                return self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
            files = listing(repo_dir)
            if len(parts) == 4 or parts[4] == "revision":
                info = {"id": "%s/%s" % (parts[2], parts[3]), "modelId": "%s/%s" % (parts[2], parts[3]),
                        "sha": commit_of(files), "private": False, "gated": False,
                        "siblings": [{"rfilename": f["path"]} for f in files]}
                return self._send(200, json.dumps(info).encode())
            if parts[4] == "tree":
                prefix = "/".join(parts[6:])
                chosen = [f for f in files if not prefix or f["path"].startswith(prefix.rstrip("/") + "/")]
                return self._send(200, json.dumps(chosen).encode())
        return self._send(404, b'{"error": "not found"}')

    def _resolve(self, parts):
        """A file's bytes (from the requested range on), or part of them when this GET is one to cut."""
        repo_dir = self._repo(parts[0], parts[1])
        path = "/".join(parts[4:])
        files = dict((f["path"], f) for f in listing(repo_dir)) if repo_dir else {}
        if path not in files:
            self._record(True)
            return self._send(404, b'{"error": "Entry not found"}', {"X-Error-Code": "EntryNotFound"})
        entry = files[path]
        with open(os.path.join(repo_dir, path), "rb") as handle:
            data = handle.read()
        etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
        headers = {"X-Repo-Commit": commit_of(list(files.values())), "ETag": '"%s"' % etag, "Accept-Ranges": "bytes"}
        if "lfs" in entry:
            headers.update({"X-Linked-Etag": '"%s"' % etag, "X-Linked-Size": str(entry["size"])})
        wanted = RANGE.match(self.headers.get("Range", ""))
        first = int(wanted.group(1)) if wanted else 0
        code, body = 200, data
        if wanted and first < len(data):
            code, body = 206, data[first:]
            headers["Content-Range"] = "bytes %d-%d/%d" % (first, len(data) - 1, len(data))
        cut = self.command == "GET" and "lfs" in entry and self.server.take_cut()
        sent = min(len(body), self.server.cut_after) if cut else (0 if self.command == "HEAD" else len(body))
        self._record(True, range=self.headers.get("Range"), range_start=first, sent=sent, cut=cut)
        if not cut:
            return self._send(code, body, headers, "application/octet-stream")
        self._send(code, body[:sent], headers, "application/octet-stream", length=len(body))
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)  # the client sees the connection drop before Content-Length bytes
        return None

    do_GET = _route  # noqa: N815 (http.server's naming)
    do_HEAD = _route  # noqa: N815


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-file")
    parser.add_argument("--log")
    parser.add_argument("--cut-after", type=int, default=0, help="bytes of a weights file sent before a cut")
    parser.add_argument("--cuts", type=int, default=0, help="how many weights-file GETs are cut")
    args = parser.parse_args()
    token = open(args.token_file).read().strip() if args.token_file else ""
    server = Hub((args.bind, args.port), os.path.abspath(args.root), token, args.log, args.cut_after, args.cuts)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
