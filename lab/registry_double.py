"""A container registry that wants a login, as nvcr.io does (nvcr.io is not reachable from the lab).

Serves one image from a `docker save` archive through the registry API v2 that the real `docker login` and
`docker pull` call: GET /v2/ (401 with `WWW-Authenticate: Basic` until the right credentials come), manifests
(schema 2) and blobs, every one of them behind HTTP basic auth with the user `$oauthtoken` and the key read from a
file, like NGC API keys. Runs with python3's standard library only, on the lab head (docker pulls plain HTTP only
from 127.0.0.1 without daemon configuration). Prints its port, then logs one JSON line per request.

  python3 registry_double.py --archive image.tar --name nvidia/lab-busybox --tag 1.0 --key-file key --log log
"""

import argparse
import base64
import gzip
import hashlib
import http.server
import json
import sys
import tarfile

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def load(archive):
    """(manifest bytes, {digest: blob}) for the single image of a `docker save` archive."""
    with tarfile.open(archive) as tar:
        saved = json.load(tar.extractfile("manifest.json"))[0]
        config = tar.extractfile(saved["Config"]).read()
        layers = [gzip.compress(tar.extractfile(name).read(), mtime=0) for name in saved["Layers"]]
    blobs = dict((digest(blob), blob) for blob in [config] + layers)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                           "digest": digest(config)},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer),
                            "digest": digest(layer)} for layer in layers]}
    return json.dumps(manifest).encode(), blobs


def main():
    parser = argparse.ArgumentParser()
    for option in ("--archive", "--name", "--tag", "--key-file", "--log"):
        parser.add_argument(option, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    manifest, blobs = load(args.archive)
    with open(args.key_file) as handle:
        expected = "Basic " + base64.b64encode(("$oauthtoken:" + handle.read().strip()).encode()).decode()

    class Registry(http.server.BaseHTTPRequestHandler):
        def send(self, code, body=b"", headers=None):
            self.send_response(code)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def answer(self):
            authorized = self.headers.get("Authorization") == expected
            with open(args.log, "a") as log:
                log.write(json.dumps({"method": self.command, "path": self.path, "authorized": authorized}) + "\n")
            if not authorized:
                return self.send(401, b'{"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}',
                                 {"WWW-Authenticate": 'Basic realm="lab-registry"', "Content-Type": "application/json"})
            prefix = "/v2/%s/" % args.name
            if self.path == "/v2/":
                return self.send(200, b"{}", {"Content-Type": "application/json"})
            if self.path in (prefix + "manifests/" + args.tag, prefix + "manifests/" + digest(manifest)):
                return self.send(200, manifest, {"Content-Type": MANIFEST_TYPE, "Docker-Content-Digest": digest(manifest)})
            if self.path.startswith(prefix + "blobs/") and self.path.rsplit("/", 1)[1] in blobs:
                name = self.path.rsplit("/", 1)[1]
                return self.send(200, blobs[name], {"Content-Type": "application/octet-stream", "Docker-Content-Digest": name})
            return self.send(404, b'{"errors": [{"code": "NAME_UNKNOWN", "message": "not found"}]}',
                             {"Content-Type": "application/json"})

        do_GET = do_HEAD = answer  # noqa: N815 (http.server's naming)

        def log_message(self, *unused):
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Registry)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
