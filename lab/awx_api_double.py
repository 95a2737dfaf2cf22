"""A double of AWX's REST API (v2), as far as the awx.awx modules of the awx_configure role use it, with the request
shapes AWX documents (tests/fixtures/awx/api-v2-fields-*.txt, recorded from AWX's serializers and survey rules).

It keeps objects in memory (and, with --state, in a JSON file after each change): organizations (Default), credential
types (Machine, Vault), credentials, projects, inventories, inventory sources, execution environments, job templates,
workflow job templates and their nodes, with survey specifications and the associations (a template's credentials,
a node's success/failure/always nodes). Stricter than AWX where AWX would silently ignore a mistake: a field AWX does
not document for the object, a reference to an object that does not exist, a survey question AWX would refuse (its
error texts), a playbook that is not a file of the project (--project-dir). Every request that changes something is
appended to --log as JSON ({method, path, body}).

It does not run jobs, sync projects, check RBAC or encrypt anything: "$encrypted$" stands for a secret on read, as
AWX shows it. Log in as AWX does: POST /api/v2/tokens/ with basic auth (--user, --password) gives a bearer token.

  python3 lab/awx_api_double.py --fields FIXTURE --project-dir DIR [--port 0] [--log FILE] [--state FILE]
prints the port it listens on (127.0.0.1).
"""

import argparse
import base64
import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "24.6.1"  # the awx.awx collection's own version: it warns when the controller's differs
SECRET = "$encrypted$"
MACHINE_INPUTS = {"fields": [
    {"id": "username", "label": "Username", "type": "string"},
    {"id": "password", "label": "Password", "type": "string", "secret": True},
    {"id": "ssh_key_data", "label": "SSH Private Key", "type": "string", "format": "ssh_private_key", "secret": True,
     "multiline": True},
    {"id": "ssh_key_unlock", "label": "Private Key Passphrase", "type": "string", "secret": True},
    {"id": "become_method", "label": "Privilege Escalation Method", "type": "string"},
    {"id": "become_username", "label": "Privilege Escalation Username", "type": "string"},
    {"id": "become_password", "label": "Privilege Escalation Password", "type": "string", "secret": True}]}
VAULT_INPUTS = {"fields": [{"id": "vault_password", "label": "Vault Password", "type": "string", "secret": True},
                           {"id": "vault_id", "label": "Vault Identifier", "type": "string"}],
                "required": ["vault_password"]}
# what each object refers to: field -> the collection it names by id
REFERENCES = {"organization": "organizations", "project": "projects", "inventory": "inventories",
              "source_project": "projects", "credential_type": "credential_types", "credential": "credentials",
              "execution_environment": "execution_environments", "workflow_job_template": "workflow_job_templates",
              "default_environment": "execution_environments", "webhook_credential": "credentials"}
ASSOCIATIONS = {"job_templates": {"credentials": "credentials", "labels": "labels", "instance_groups": "instance_groups"},
                "workflow_job_templates": {"labels": "labels"},
                "workflow_job_template_nodes": {"success_nodes": "workflow_job_template_nodes",
                                                "failure_nodes": "workflow_job_template_nodes",
                                                "always_nodes": "workflow_job_template_nodes",
                                                "credentials": "credentials"}}
SURVEYED = ("job_templates", "workflow_job_templates")
TYPES = {"organizations": "organization", "projects": "project", "inventories": "inventory",
         "inventory_sources": "inventory_source", "credential_types": "credential_type", "credentials": "credential",
         "execution_environments": "execution_environment", "job_templates": "job_template",
         "workflow_job_templates": "workflow_job_template", "workflow_job_template_nodes": "workflow_job_template_node",
         "labels": "label", "instance_groups": "instance_group"}
UNIFIED = ("job_templates", "workflow_job_templates", "projects", "inventory_sources")


class Store:
    def __init__(self, fields, survey_rules, project_dir, state_path):
        self.fields, self.survey_rules, self.project_dir, self.state_path = fields, survey_rules, project_dir, state_path
        self.lock = threading.Lock()
        self.objects = dict((name, {}) for name in TYPES)
        self.links = {}  # (collection, id, relation) -> [ids]
        self.surveys = {}  # (collection, id) -> spec
        self.next_id = 1
        self.add("organizations", {"name": "Default", "description": ""})
        self.add("credential_types", {"name": "Machine", "kind": "ssh", "namespace": "ssh", "managed": True,
                                      "inputs": MACHINE_INPUTS, "injectors": {}})
        self.add("credential_types", {"name": "Vault", "kind": "vault", "namespace": "vault", "managed": True,
                                      "inputs": VAULT_INPUTS, "injectors": {}})

    def add(self, collection, body):
        new_id, self.next_id = self.next_id, self.next_id + 1
        self.objects[collection][new_id] = dict(body, id=new_id)
        return new_id

    def render(self, collection, item):
        out = dict(item, type=TYPES[collection], url="/api/v2/%s/%d/" % (collection, item["id"]))
        related = dict((relation, "/api/v2/%s/%d/%s/" % (collection, item["id"], relation))
                       for relation in ASSOCIATIONS.get(collection, {}))
        if collection in SURVEYED:
            related["survey_spec"] = "/api/v2/%s/%d/survey_spec/" % (collection, item["id"])
        if collection == "workflow_job_template_nodes" and item.get("unified_job_template"):
            target = self.find_unified(item["unified_job_template"])
            if target:
                related["unified_job_template"] = "/api/v2/%s/%d/" % (target, item["unified_job_template"])
        for field, target in REFERENCES.items():
            if item.get(field) is not None and field != "credential_type":
                related[field] = "/api/v2/%s/%d/" % (target, item[field])
        if collection == "credentials":
            kind = self.objects["credential_types"].get(item.get("credential_type"), {})
            secrets = [field["id"] for field in kind.get("inputs", {}).get("fields", []) if field.get("secret")]
            out["inputs"] = dict((name, SECRET if name in secrets and value else value)
                                 for name, value in item.get("inputs", {}).items())
            out["summary_fields"] = {"credential_type": {"id": item.get("credential_type"), "name": kind.get("name")}}
        for relation in ASSOCIATIONS.get(collection, {}):
            if relation.endswith("_nodes"):
                out[relation] = list(self.links.get((collection, item["id"], relation), []))
        out["related"] = related
        out.setdefault("summary_fields", {})
        return out

    def find_unified(self, item_id):
        return next((collection for collection in UNIFIED if item_id in self.objects[collection]), None)

    def problems(self, collection, body, item_id=None):
        documented = set(self.fields[collection])
        found = ["%s: not a field of AWX's %s (documented: %s)" % (name, collection, ", ".join(sorted(documented)))
                 for name in body if name not in documented]
        for field, target in REFERENCES.items():
            value = body.get(field)
            if value is not None and (not isinstance(value, int) or value not in self.objects[target]):
                found.append("%s: %r is not the id of one of the %s" % (field, value, target))
        if collection == "workflow_job_template_nodes" and body.get("unified_job_template") is not None \
                and self.find_unified(body["unified_job_template"]) is None:
            found.append("unified_job_template: %r is not a template" % body["unified_job_template"])
        if collection == "job_templates" and body.get("playbook") is not None and self.project_dir:
            path = os.path.normpath(os.path.join(self.project_dir, body["playbook"]))
            if not path.startswith(self.project_dir) or not os.path.isfile(path):
                found.append("playbook: Playbook not found for project.")
        name = body.get("name")
        if name and collection not in ("workflow_job_template_nodes",):
            same = [other for other in self.objects[collection].values() if other.get("name") == name
                    and other["id"] != item_id
                    and other.get("organization") == body.get("organization", other.get("organization"))
                    and other.get("inventory") == body.get("inventory", other.get("inventory"))]
            if same:
                found.append("name: %s with this Name and Organization already exists." % TYPES[collection])
        return found

    def survey_problem(self, spec):
        """AWX's refusal of a survey specification (its texts), or None."""
        for field, type_label in (("name", "string"), ("description", "string"), ("spec", "list of items")):
            expected = list if field == "spec" else str
            if field not in spec:
                return "Field '%s' is missing from survey spec." % field
            if not isinstance(spec[field], expected):
                return "Expected %s for field '%s', received %s type." % (type_label, field, type(spec[field]).__name__)
        if not spec["spec"]:
            return "'spec' doesn't contain any items."
        seen = set()
        kinds = {"str": str, "int": int, "float or int": (float, int)}
        for index, item in enumerate(spec["spec"]):
            if not isinstance(item, dict):
                return "Survey question %d is not a json object." % index
            for field, kind in self.survey_rules["question_fields"].items():
                if field not in item:
                    return "'%s' missing from survey question %d" % (field, index)
                if not isinstance(item[field], bool if kind == "boolean" else str):
                    return "'%s' in survey question %d expected to be %s." % (field, index, kind)
            if item["variable"] in seen:
                return "'variable' '%s' duplicated in survey question %d." % (item["variable"], index)
            seen.add(item["variable"])
            types = dict(self.survey_rules["question_types"])  # [name, type] in AWX's order
            if item["type"] not in types:
                return "'%s' in survey question %d is not one of '%s' allowed question types." % (
                    item["type"], index, ", ".join(types))
            if item.get("default", "") != "" and not isinstance(item["default"], kinds[types[item["type"]]]):
                return "Default value %s in survey question %d expected to be %s." % (
                    item["default"], index, item["type"] if item["type"] in ("integer", "float") else "string")
            if item["type"] in ("multiplechoice", "multiselect"):
                if "choices" not in item:
                    return "Survey question %d of type %s must specify choices." % (index, item["type"])
                choices = item["choices"].splitlines() if isinstance(item["choices"], str) else item["choices"]
                if "default" in item and item["default"] != "":
                    defaults = item["default"].splitlines() if isinstance(item["default"], str) else item["default"]
                    if item["type"] == "multiplechoice" and len(defaults) > 1:
                        return "Multiple Choice (Single Select) can only have one default value."
                    if any(default not in choices for default in defaults):
                        return "Default choice must be answered from the choices listed."
        return None

    def save(self):
        if self.state_path:
            state = {"objects": dict((collection, [self.render(collection, item) for item in items.values()])
                                     for collection, items in self.objects.items()),
                     "surveys": dict(("%s/%d" % key, spec) for key, spec in self.surveys.items()),
                     "links": dict(("%s/%d/%s" % key, ids) for key, ids in self.links.items())}
            with open(self.state_path + ".tmp", "w") as handle:
                json.dump(state, handle, indent=1, sort_keys=True)
            os.replace(self.state_path + ".tmp", self.state_path)


def matches(item, query):
    """AWX's list filters as awx.awx uses them: field=value, and or__field=value alternatives."""
    alternatives = [(key[4:], value) for key, value in query.items() if key.startswith("or__")]
    plain = [(key, value) for key, value in query.items() if not key.startswith("or__")
             and key not in ("page_size", "page", "order_by")]

    def equal(field, value):
        return str(item.get(field)) == value
    return all(equal(field, value) for field, value in plain) and (
        not alternatives or any(equal(field, value) for field, value in alternatives))


class Handler(BaseHTTPRequestHandler):
    store = None
    tokens = set()
    user = password = log_path = None

    def log_message(self, *args):
        return

    def reply(self, code, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-API-Product-Name", "AWX")
        self.send_header("X-API-Product-Version", VERSION)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def record(self, body):
        if self.log_path:
            with open(self.log_path, "a") as handle:
                handle.write(json.dumps({"method": self.command, "path": self.path, "body": body}) + "\n")

    def authorized(self):
        header = self.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.tokens

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        parts = [part for part in url.path.split("/") if part]
        query = dict(urllib.parse.parse_qsl(url.query))
        if parts[:2] != ["api", "v2"]:
            return self.reply(404, {"detail": "Not found."})
        parts = parts[2:]
        if parts == ["tokens"] and self.command == "POST":
            expected = "Basic " + base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
            self.body()
            if self.headers.get("Authorization") != expected:
                return self.reply(401, {"detail": "Invalid username/password."})
            token = base64.b32encode(os.urandom(15)).decode().lower()
            self.tokens.add(token)
            return self.reply(201, {"id": len(self.tokens), "token": token})
        if parts[:1] == ["tokens"] and self.command == "DELETE":
            return self.reply(204)
        if not self.authorized():
            return self.reply(401, {"detail": "Authentication credentials were not provided."})
        if parts in ([], ["ping"], ["me"]):
            return self.reply(200, {"version": VERSION, "active_node": "awx-double"})
        with self.store.lock:
            return self.objects(parts, query)

    def objects(self, parts, query):
        store = self.store
        collection = parts[0]
        if collection == "unified_job_templates" and self.command == "GET":
            found = [store.render(name, item) for name in UNIFIED for item in store.objects[name].values()
                     if matches(store.render(name, item), query)]
            return self.reply(200, {"count": len(found), "next": None, "previous": None, "results": found})
        if collection not in store.objects:
            return self.reply(404, {"detail": "Not found."})
        items = store.objects[collection]
        if len(parts) == 1:
            if self.command == "GET":
                found = [store.render(collection, item) for item in items.values()
                         if matches(store.render(collection, item), query)]
                return self.reply(200, {"count": len(found), "next": None, "previous": None, "results": found})
            if self.command == "POST":
                body = self.body()
                self.record(body)
                problems = store.problems(collection, body)
                if problems:
                    return self.reply(400, {"detail": problems})
                new_id = store.add(collection, body)
                store.save()
                return self.reply(201, store.render(collection, items[new_id]))
            return self.reply(405, {"detail": "Method \"%s\" not allowed." % self.command})
        if not parts[1].isdigit() or int(parts[1]) not in items:
            return self.reply(404, {"detail": "Not found."})
        item_id = int(parts[1])
        if len(parts) == 2:
            return self.one(collection, item_id)
        relation = parts[2]
        if relation == "survey_spec" and collection in SURVEYED:
            return self.survey(collection, item_id)
        if relation in ASSOCIATIONS.get(collection, {}):
            return self.association(collection, item_id, relation)
        return self.reply(404, {"detail": "Not found."})

    def one(self, collection, item_id):
        store, items = self.store, self.store.objects[collection]
        if self.command == "GET":
            return self.reply(200, store.render(collection, items[item_id]))
        if self.command in ("PATCH", "PUT"):
            body = self.body()
            self.record(body)
            problems = store.problems(collection, body, item_id)
            if problems:
                return self.reply(400, {"detail": problems})
            items[item_id].update(body)
            store.save()
            return self.reply(200, store.render(collection, items[item_id]))
        if self.command == "DELETE":
            self.record(None)
            del items[item_id]
            store.save()
            return self.reply(204)
        return self.reply(405, {"detail": "Method \"%s\" not allowed." % self.command})

    def survey(self, collection, item_id):
        store, key = self.store, (collection, item_id)
        if self.command == "GET":
            return self.reply(200, store.surveys.get(key, {}))
        if self.command == "POST":
            spec = self.body()
            self.record(spec)
            problem = store.survey_problem(spec)
            if problem:
                return self.reply(400, {"error": problem})
            store.surveys[key] = spec
            store.save()
            return self.reply(200)
        if self.command == "DELETE":
            self.record(None)
            store.surveys.pop(key, None)
            store.save()
            return self.reply(200)
        return self.reply(405, {"detail": "Method \"%s\" not allowed." % self.command})

    def association(self, collection, item_id, relation):
        store = self.store
        target = ASSOCIATIONS[collection][relation]
        linked = store.links.setdefault((collection, item_id, relation), [])
        if self.command == "GET":
            found = [store.render(target, store.objects[target][other]) for other in linked
                     if other in store.objects[target]]
            return self.reply(200, {"count": len(found), "next": None, "previous": None, "results": found})
        if self.command == "POST":
            body = self.body()
            self.record(body)
            other = body.get("id")
            if other not in store.objects[target]:
                return self.reply(400, {"msg": "Object with id %r not found." % other})
            if body.get("disassociate"):
                if other in linked:
                    linked.remove(other)
            elif other not in linked:
                linked.append(other)
            store.save()
            return self.reply(204)
        return self.reply(405, {"detail": "Method \"%s\" not allowed." % self.command})

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = route


def read_fixture(path):
    text = open(path).read()
    return json.loads(text.split("\n# ---\n", 1)[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", required=True)
    parser.add_argument("--project-dir", default="")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="password")
    parser.add_argument("--log", default="")
    parser.add_argument("--state", default="")
    args = parser.parse_args()
    recorded = read_fixture(args.fields)
    Handler.store = Store(recorded["fields"], recorded["survey"], os.path.realpath(args.project_dir)
                          if args.project_dir else "", args.state)
    Handler.user, Handler.password, Handler.log_path = args.user, args.password, args.log
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
