"""A double of Semaphore UI's REST API, as far as the semaphore_configure role uses it, with the request shapes
Semaphore reads (tests/fixtures/semaphore/api-fields-*.txt, recorded from its source).

Projects and, per project, keys, repositories, inventories, environments and templates, kept in memory (and, with
--state, in a JSON file after each change). As Semaphore: a key's secrets and an environment's secret values are
never returned; keys, repositories and environments are created with 204 and no body, inventories and templates with
201 and the object; an update must carry the object's id and project_id ("... ID in body and URL must be the same").
Stricter than Semaphore where it would silently ignore a mistake: a field it does not read, a reference to an object
of another project or none, a key, inventory or survey type it does not know, a playbook that is not a file of the
repository (--project-dir). Every request that changes something is appended to --log as JSON.

It does not run tasks or clone repositories. Log in as Semaphore allows: POST /api/auth/login {auth, password} sets
the session cookie, or an API token as a bearer (--token).

  python3 lab/semaphore_api_double.py --fields FIXTURE [--project-dir DIR] [--port 0] [--token T] [--log FILE]
prints the port it listens on (127.0.0.1).
"""

import argparse
import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SESSION = "semaphore=double-session"
# what a project's object may refer to: field -> the kind of object
REFERENCES = {"ssh_key_id": "keys", "become_key_id": "keys", "inventory_id": "inventory", "repository_id": "repositories",
              "environment_id": "environment"}


class Store:
    def __init__(self, recorded, project_dir, state_path):
        self.fields, self.rules = recorded["fields"], recorded["rules"]
        self.project_dir, self.state_path = project_dir, state_path
        self.lock = threading.Lock()
        self.projects = {}
        self.objects = dict((kind, {}) for kind in self.fields if kind != "projects")
        self.next_id = 1

    def new_id(self):
        self.next_id += 1
        return self.next_id - 1

    def public(self, kind, item):
        """What Semaphore returns: no key secrets, no environment secret values."""
        out = dict(item)
        if kind == "keys":
            out.update(ssh={"login": "", "passphrase": "", "private_key": ""},
                       login_password={"login": "", "password": ""}, string="", override_secret=False)
        if kind == "environment":
            out["secrets"] = [{"id": index + 1, "type": secret.get("type"), "name": secret.get("name")}
                              for index, secret in enumerate(item.get("secrets") or [])]
        return out

    def problems(self, kind, body, project_id):
        rules = self.rules
        found = ["%s: not a field Semaphore reads for %s" % (name, kind) for name in body
                 if name not in self.fields[kind]]
        if kind != "projects" and body.get("project_id") != project_id:
            found.append("Project ID in body and URL must be the same")
        for field, target in REFERENCES.items():
            value = body.get(field)
            if value is not None and (value not in self.objects[target]
                                      or self.objects[target][value]["project_id"] != project_id):
                found.append("%s: %r is not one of this project's %s" % (field, value, target))
        if kind == "keys" and body.get("type") not in rules["key_types"]:
            found.append("type: %r is not a key type (%s)" % (body.get("type"), ", ".join(rules["key_types"])))
        if kind == "inventory" and body.get("type") not in rules["inventory_types"]:
            found.append("type: %r is not an inventory type" % body.get("type"))
        if kind == "environment":
            for secret in body.get("secrets") or []:
                if set(secret) - set(rules["secret_fields"]) or secret.get("type") not in rules["secret_types"] \
                        or secret.get("operation") not in rules["secret_operations"]:
                    found.append("secrets: %r is not a secret Semaphore reads" % dict(secret, secret="..."))
            for field in ("json", "env"):
                try:
                    json.loads(body.get(field) or "{}")
                except ValueError:
                    found.append("%s: not a JSON object" % field)
        if kind == "templates":
            for var in body.get("survey_vars") or []:
                if set(var) - set(rules["survey_var_fields"]) or var.get("type") not in rules["survey_var_types"]:
                    found.append("survey_vars: %r is not a survey variable Semaphore reads" % var)
                for value in var.get("values") or []:
                    if set(value) - set(rules["survey_value_fields"]):
                        found.append("survey_vars: value %r is not {name, value}" % value)
            if self.project_dir and body.get("playbook"):
                path = os.path.normpath(os.path.join(self.project_dir, body["playbook"]))
                if not path.startswith(self.project_dir) or not os.path.isfile(path):
                    found.append("playbook: %s is not a file of the repository" % body["playbook"])
        return found

    def save(self):
        if self.state_path:
            state = {"projects": list(self.projects.values()),
                     "objects": dict((kind, list(items.values())) for kind, items in self.objects.items())}
            with open(self.state_path + ".tmp", "w") as handle:
                json.dump(state, handle, indent=1, sort_keys=True)
            os.replace(self.state_path + ".tmp", self.state_path)


class Handler(BaseHTTPRequestHandler):
    store = token = user = password = log_path = None

    def log_message(self, *args):
        return

    def reply(self, code, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else {}

    def record(self, body):
        if self.log_path:
            with open(self.log_path, "a") as handle:
                handle.write(json.dumps({"method": self.command, "path": self.path, "body": body}) + "\n")

    def route(self):
        parts = [part for part in urllib.parse.urlsplit(self.path).path.split("/") if part]
        if parts[:1] != ["api"]:
            return self.reply(404, {"error": "not found"})
        parts = parts[1:]
        if parts == ["auth", "login"] and self.command == "POST":
            login = self.body()
            if (login.get("auth"), login.get("password")) != (self.user, self.password):
                return self.reply(401)
            return self.reply(204, headers=[("Set-Cookie", SESSION + "; Path=/; HttpOnly")])
        cookie, auth = self.headers.get("Cookie", ""), self.headers.get("Authorization", "")
        if SESSION not in cookie and auth != "Bearer %s" % self.token:
            return self.reply(401)
        with self.store.lock:
            return self.objects(parts)

    def objects(self, parts):
        store = self.store
        if parts == ["projects"]:
            if self.command == "GET":
                return self.reply(200, list(store.projects.values()))
            if self.command == "POST":
                body = self.body()
                self.record(body)
                problems = store.problems("projects", body, None)
                if problems:
                    return self.reply(400, {"error": "; ".join(problems)})
                project = dict(body, id=store.new_id(), created="2026-12-03T00:00:00Z")
                store.projects[project["id"]] = project
                store.save()
                return self.reply(201, project)
        if len(parts) < 2 or parts[0] != "project" or not parts[1].isdigit() or int(parts[1]) not in store.projects:
            return self.reply(404, {"error": "not found"})
        project_id = int(parts[1])
        if len(parts) == 2 and self.command == "PUT":
            body = self.body()
            self.record(body)
            if body.get("id") != project_id:
                return self.reply(400, {"error": "Project ID in body and URL must be the same"})
            store.projects[project_id].update(body)
            store.save()
            return self.reply(204)
        kind = parts[2] if len(parts) > 2 else ""
        if kind not in store.objects:
            return self.reply(404, {"error": "not found"})
        items = store.objects[kind]
        if len(parts) == 3:
            if self.command == "GET":
                return self.reply(200, [store.public(kind, item) for item in items.values()
                                        if item["project_id"] == project_id])
            if self.command == "POST":
                body = self.body()
                self.record(body)
                problems = store.problems(kind, body, project_id)
                if problems:
                    return self.reply(400, {"error": "; ".join(problems)})
                item = dict(body, id=store.new_id())
                item.pop("override_secret", None)
                items[item["id"]] = item
                store.save()
                if kind in store.rules["created_without_body"]:
                    return self.reply(204)
                return self.reply(201, store.public(kind, item))
        if len(parts) == 4 and parts[3].isdigit() and int(parts[3]) in items \
                and items[int(parts[3])]["project_id"] == project_id:
            item_id = int(parts[3])
            if self.command == "GET":
                return self.reply(200, store.public(kind, items[item_id]))
            if self.command == "PUT":
                body = self.body()
                self.record(body)
                if body.get("id") != item_id:
                    return self.reply(400, {"error": "%s ID in body and URL must be the same" % kind.capitalize()})
                problems = store.problems(kind, body, project_id)
                if problems:
                    return self.reply(400, {"error": "; ".join(problems)})
                keep_secrets = kind == "keys" and not body.get("override_secret")
                updated = dict(body)
                updated.pop("override_secret", None)
                if keep_secrets:
                    for field in ("ssh", "login_password", "string"):
                        updated[field] = items[item_id].get(field)
                items[item_id] = updated
                store.save()
                return self.reply(204)
            if self.command == "DELETE":
                self.record(None)
                del items[item_id]
                store.save()
                return self.reply(204)
        return self.reply(404, {"error": "not found"})

    do_GET = do_POST = do_PUT = do_DELETE = route


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", required=True)
    parser.add_argument("--project-dir", default="")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="semaphore-double-token")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="password")
    parser.add_argument("--log", default="")
    parser.add_argument("--state", default="")
    args = parser.parse_args()
    recorded = json.loads(open(args.fields).read().split("\n# ---\n", 1)[1])
    Handler.store = Store(recorded, os.path.realpath(args.project_dir) if args.project_dir else "", args.state)
    Handler.token, Handler.user, Handler.password, Handler.log_path = args.token, args.user, args.password, args.log
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
