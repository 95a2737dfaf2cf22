#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hf_snapshot_info
short_description: Whether a Hugging Face cache holds every file of a repository's revision, whole
version_added: 0.1.0
description:
  - Asks the Hub (O(endpoint)) for the commit of O(revision) and the list of its files with their sizes (and, for
    files stored with LFS, their SHA-256), then checks the cache entry under O(cache) - every file of the snapshot
    present, resolving into the cache, with the listed size; an LFS file's blob named by its SHA-256, as the Hub's
    client names it (and hashed in full with O(verify=sha256)).
  - A download that died half way leaves missing files, C(.incomplete) blobs or short files - the entry is then not
    complete, and the result names what is missing, so the caller downloads again (C(hf download) resumes).
  - When the Hub cannot be reached the listing is unknown; the result says so (C(hub_reachable=false)) and judges
    the cache by itself (a snapshot whose links all resolve and no C(.incomplete) blob).
  - The token is read from O(token_file) on the node and sent as a bearer token in the C(Authorization) header; it never appears in argv
    or the result.
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  repo:
    description: The repository id, C(org/name).
    type: str
    required: true
  revision:
    description: The branch, tag or commit.
    type: str
    default: main
  cache:
    description: The Hugging Face hub cache (C(HF_HUB_CACHE)) that holds C(models--org--name).
    type: path
    required: true
  endpoint:
    description: The Hub or a mirror (C(HF_ENDPOINT)).
    type: str
    default: https://huggingface.co
  token_file:
    description: A file on the node holding the token for gated or private repositories.
    type: path
  verify:
    description: V(size) compares sizes and the LFS blobs' names; V(sha256) also hashes every LFS blob.
    type: str
    choices: [size, sha256]
    default: size
  timeout:
    description: Seconds for each request to the Hub.
    type: int
    default: 30
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dgx_spark.cluster.read_only
"""

EXAMPLES = r"""
- name: Are the weights complete in the head's cache?
  dgx_spark.cluster.hf_snapshot_info:
    repo: openai/gpt-oss-120b
    cache: /var/lib/dgx-spark/hf-cache
  register: weights
"""

RETURN = r"""
complete:
  description: Every file of the revision is in the cache, whole.
  returned: always
  type: bool
commit:
  description: The commit the revision resolves to (from the Hub, else the cache's ref).
  returned: always
  type: str
hub_reachable:
  description: Whether the Hub answered (else the cache was judged by itself).
  returned: always
  type: bool
files:
  description: How many files the revision has.
  returned: always
  type: int
bytes:
  description: Their total size.
  returned: always
  type: int
missing:
  description: The files absent from the snapshot (or whose link leads nowhere).
  returned: always
  type: list
  elements: str
mismatched:
  description: The files present but not whole, each with why.
  returned: always
  type: list
  elements: str
"""

import json
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _validate
from ansible_collections.dgx_spark.cluster.plugins.module_utils._digest import sha256_of

REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")


def hub_get(module, url, token, timeout):
    """(status, parsed JSON or None, Link header)."""
    headers = {"Authorization": "Bearer " + token} if token else {}
    response, info = fetch_url(module, url, headers=headers, timeout=timeout)
    status = info.get("status", -1)
    body = response.read() if response else b""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    return status, data, info.get("link", "")


def hub_files(module, params, token):
    """(commit, [{path, size, lfs sha256 or None}]) from the Hub, or (None, None) when it cannot be reached;
    fails on an answer that names a problem (unknown repository, no access)."""
    base = params["endpoint"].rstrip("/") + "/api/models/" + params["repo"]
    status, info, _link = hub_get(module, "%s/revision/%s" % (base, params["revision"]), token, params["timeout"])
    if status == -1:
        return None, None
    if status != 200 or not isinstance(info, dict) or not info.get("sha"):
        module.fail_json(msg="the Hub at %s answered %s for %s@%s: %s" % (
            params["endpoint"], status, params["repo"], params["revision"],
            "no such repository or revision" if status == 404 else "no access: a gated or private repository needs "
            "a token that may read it" if status in (401, 403) else "an unexpected answer"), status=status)
    commit, files = info["sha"], []
    url = "%s/tree/%s?recursive=true" % (base, commit)
    while url:
        status, page, link = hub_get(module, url, token, params["timeout"])
        if status != 200 or not isinstance(page, list):
            module.fail_json(msg="the Hub did not list the files of %s@%s (status %s)"
                             % (params["repo"], commit, status), status=status)
        files += [{"path": item["path"], "size": int(item.get("size") or 0),
                   "sha256": (item.get("lfs") or {}).get("oid")} for item in page if item.get("type") == "file"]
        found = re.search(r'<([^>]+)>;\s*rel="next"', link or "")
        url = found.group(1) if found else None
    return commit, files


def judge(entry_dir, commit, files, verify):
    """(missing, mismatched) of the snapshot of commit against files."""
    snapshot, blobs = os.path.join(entry_dir, "snapshots", commit), os.path.realpath(os.path.join(entry_dir, "blobs"))
    missing, mismatched = [], []
    for item in files:
        path = os.path.join(snapshot, item["path"])
        if not os.path.exists(path):
            missing.append(item["path"])
            continue
        real = os.path.realpath(path)
        if os.path.islink(path) and not real.startswith(blobs + os.sep):
            mismatched.append("%s: leads out of the cache entry's blobs" % item["path"])
        elif os.path.getsize(real) != item["size"]:
            mismatched.append("%s: %d bytes, the Hub lists %d" % (item["path"], os.path.getsize(real), item["size"]))
        elif item["sha256"] and os.path.islink(path) and os.path.basename(real) != item["sha256"]:
            mismatched.append("%s: blob %s, the Hub lists %s" % (item["path"], os.path.basename(real), item["sha256"]))
        elif item["sha256"] and verify == "sha256" and sha256_of(real) != item["sha256"]:
            mismatched.append("%s: its SHA-256 is not the Hub's %s" % (item["path"], item["sha256"]))
    return missing, mismatched


def cache_alone(entry_dir, revision):
    """(commit, files, missing, mismatched) when the Hub is not reachable: the cache's own ref and snapshot."""
    try:
        with open(os.path.join(entry_dir, "refs", revision)) as handle:
            commit = handle.read().strip()
    except OSError:
        return None, [], ["refs/%s (nothing downloaded)" % revision], []
    snapshot = os.path.join(entry_dir, "snapshots", commit)
    files, missing = [], []
    for dirpath, _dirs, names in os.walk(snapshot):
        for name in names:
            path = os.path.join(dirpath, name)
            relative = os.path.relpath(path, snapshot)
            if not os.path.exists(path):
                missing.append(relative)
            else:
                files.append({"path": relative, "size": os.path.getsize(path), "sha256": None})
    incomplete = [name for name in os.listdir(os.path.join(entry_dir, "blobs"))
                  if name.endswith(".incomplete")] if os.path.isdir(os.path.join(entry_dir, "blobs")) else []
    return commit, files, missing, ["blobs/%s: an interrupted download" % name for name in incomplete]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            repo=dict(type="str", required=True),
            revision=dict(type="str", default="main"),
            cache=dict(type="path", required=True),
            endpoint=dict(type="str", default="https://huggingface.co"),
            token_file=dict(type="path"),
            verify=dict(type="str", choices=["size", "sha256"], default="size"),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = _validate.first_problem([("repo", params["repo"], "hf_repo"), ("cache", params["cache"], "data_dir"),
                                       ("endpoint", params["endpoint"], "url")])
    if problem or not REVISION.match(params["revision"]) or ".." in params["revision"]:
        module.fail_json(msg=problem or "revision %r is not allowed: a branch, tag or commit" % params["revision"])
    token = ""
    if params["token_file"]:
        problem = _validate.problem("endpoint", params["endpoint"], "secret_url")
        if problem:
            module.fail_json(msg="the Hugging Face token is not sent there: %s" % problem)
        with open(params["token_file"]) as handle:
            token = handle.read().strip()
    entry_dir = os.path.join(params["cache"], "models--" + params["repo"].replace("/", "--"))
    commit, files = hub_files(module, params, token)
    reachable = commit is not None
    if reachable:
        missing, mismatched = judge(entry_dir, commit, files, params["verify"])
    else:
        commit, files, missing, mismatched = cache_alone(entry_dir, params["revision"])
    module.exit_json(changed=False, complete=not missing and not mismatched and bool(files), commit=commit,
                     hub_reachable=reachable, files=len(files), bytes=sum(item["size"] for item in files),
                     missing=missing, mismatched=mismatched)


if __name__ == "__main__":
    main()
