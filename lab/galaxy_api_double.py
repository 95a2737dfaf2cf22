"""An Ansible Galaxy (v3 API) double for the lab: galaxy.ansible.com is not reachable here.

Serves the collections installed under each --collections-path (<path>/ansible_collections/<ns>/<name>; by default
the site-packages of the `ansible` package on PyPI beside this interpreter, unpacked from Galaxy's own artifacts) through the endpoints
`ansible-galaxy collection install` calls, with the fields it reads (ansible/galaxy/api.py):
  GET /api/                                                   available_versions
  GET /api/v3/collections/<ns>/<name>/                        highest_version, updated_at
  GET /api/v3/collections/<ns>/<name>/versions/?limit=N       meta.count, links.next, data[].version
  GET /api/v3/collections/<ns>/<name>/versions/<v>/           download_url, artifact.sha256, metadata.dependencies
  GET /download/<ns>-<name>-<v>.tar.gz                        the artifact
An artifact is rebuilt from the installed files (see `artifact`), so ansible-galaxy verifies every file's checksum
as it does for a download from Galaxy. Unknown
collections answer 404 as Galaxy NG does. Each request is appended to --log as one JSON line (method, path, status).
Prints the port it listens on, then serves until killed.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import http.server
import io
import json
import os
import re
import sys
import tarfile
import threading
from urllib.parse import urlsplit

import ansible

COLLECTION = re.compile(r"^/api/v3/collections/(?P<ns>\w+)/(?P<name>\w+)/(?:versions/(?:(?P<version>[^/]+)/)?)?$")
DOWNLOAD = re.compile(r"^/download/(?P<ns>\w+)-(?P<name>\w+)-(?P<version>[^/]+)\.tar\.gz$")
NOT_FOUND = {"errors": [{"status": "404", "code": "not_found", "title": "Not found."}]}


def installed(collections_paths):
    """{(ns, name): collection directory} for every collection with a MANIFEST.json; the first path wins."""
    found = {}
    for base in collections_paths:
        root = os.path.join(base, "ansible_collections")
        for manifest in sorted(glob.glob(os.path.join(root, "*", "*", "MANIFEST.json"))):
            path = os.path.dirname(manifest)
            found.setdefault(tuple(path.split(os.sep)[-2:]), path)
    return found


def artifact(path):
    """The collection at path as a Galaxy artifact: its MANIFEST.json, a FILES.json and the files it lists.

    The PyPI package leaves out some of the files Galaxy's artifact had (CI configs): FILES.json lists what is there,
    with each file's sha256, and MANIFEST.json that FILES.json's, as `ansible-galaxy collection build` writes them.
    """
    with open(os.path.join(path, "MANIFEST.json"), encoding="utf-8") as handle:
        manifest = json.load(handle)
    with open(os.path.join(path, "FILES.json"), encoding="utf-8") as handle:
        files = json.load(handle)
    files["files"] = [e for e in files["files"] if e["name"] == "." or os.path.lexists(os.path.join(path, e["name"]))]
    files_json = json.dumps(files, indent=4).encode()
    manifest["file_manifest_file"]["chksum_sha256"] = hashlib.sha256(files_json).hexdigest()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, body in (("MANIFEST.json", json.dumps(manifest, indent=4).encode()), ("FILES.json", files_json)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(body), 0o644
            tar.addfile(info, io.BytesIO(body))
        for entry in files["files"][1:]:
            info = tar.gettarinfo(os.path.join(path, entry["name"]), arcname=entry["name"])
            info.uid = info.gid = info.mtime = 0
            info.uname = info.gname = ""
            if info.isdir():
                tar.addfile(info)
            else:
                with open(os.path.join(path, entry["name"]), "rb") as handle:
                    tar.addfile(info, handle)
    return buffer.getvalue()


class Galaxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, collections, log):
        super().__init__(address, Handler)
        self.collections = collections
        self.log = log
        self.artifacts = {}
        self.lock = threading.Lock()

    def manifest(self, key):
        with open(os.path.join(self.collections[key], "MANIFEST.json"), encoding="utf-8") as handle:
            return json.load(handle)["collection_info"]

    def artifact(self, key):
        with self.lock:
            if key not in self.artifacts:
                self.artifacts[key] = artifact(self.collections[key])
            return self.artifacts[key]


class Handler(http.server.BaseHTTPRequestHandler):
    server: Galaxy

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass

    def _send(self, code, body, content_type="application/json"):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.log:
            with self.server.lock, open(self.server.log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"method": self.command, "path": self.path, "status": code}) + "\n")

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        if path in ("/api", "/api/"):
            return self._send(200, {"available_versions": {"v3": "v3/"}, "current_version": "v3"})
        match = COLLECTION.match(path) or DOWNLOAD.match(path)
        key = (match["ns"], match["name"]) if match else None
        if key not in self.server.collections:
            return self._send(404, NOT_FOUND)
        info = self.server.manifest(key)
        href = f"/api/v3/collections/{key[0]}/{key[1]}/"
        version_href = f"{href}versions/{info['version']}/"
        if match["version"] not in (None, info["version"]):
            return self._send(404, NOT_FOUND)
        if match.re is DOWNLOAD:
            return self._send(200, self.server.artifact(key), "application/gzip")
        if path == href:
            return self._send(200, {"href": href, "namespace": key[0], "name": key[1], "deprecated": False,
                                    "highest_version": {"href": version_href, "version": info["version"]},
                                    "created_at": "1970-01-01T00:00:00Z", "updated_at": "1970-01-01T00:00:00Z"})
        if match["version"] is None:
            return self._send(200, {"meta": {"count": 1}, "links": {"first": None, "previous": None, "next": None,
                                                                    "last": None},
                                    "data": [{"version": info["version"], "href": version_href}]})
        body = self.server.artifact(key)
        filename = f"{key[0]}-{key[1]}-{info['version']}.tar.gz"
        return self._send(200, {
            "href": version_href, "version": info["version"], "namespace": {"name": key[0]},
            "collection": {"name": key[1], "href": href}, "download_url": f"/download/{filename}",
            "artifact": {"filename": filename, "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)},
            "metadata": {"dependencies": info.get("dependencies") or {}}, "signatures": []})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections-path", action="append")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log")
    args = parser.parse_args()
    paths = args.collections_path or [os.path.dirname(os.path.dirname(ansible.__file__))]
    server = Galaxy((args.bind, args.port), installed(paths), args.log)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
