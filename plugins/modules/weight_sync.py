#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: weight_sync
short_description: Copy a model's weights from another Spark to this one over the fabric, alone or in a relay
version_added: 0.1.0
description:
  - Runs on the node that receives the weights (a worker) and copies them from O(source_host) (the head, after the
    one download) - a Hugging Face cache entry (O(hf_repo) under the cache root O(path)) or a local model directory
    (O(path) alone). O(path) is where they go on this node, O(source_path) where they are on the source (default
    the same). This is the direction of M(dgx_spark.cluster.p2p_image_copy) (both run on the destination and name
    the source).
  - A cache entry is copied with its structure, C(models--org--name/{blobs,snapshots,refs}), snapshot symlinks kept
    as symlinks, plus any blob they point to outside the entry (blobs kept at the cache root); dangling links or
    links leaving the cache on the source are refused before anything is copied.
  - Alone, the copy is C(rsync) over SSH, pulled from the source. rsync's quick check skips unchanged files, so a
    copy of an unchanged model sends almost nothing and reports C(changed=false).
  - In a relay (O(relay_from), O(relay_to_next); three or more ranks), the weights are one tar stream, authenticated
    end to end like an image (HMAC-SHA256 keyed by a one-time token), that each node also passes on to the next as
    it arrives, so N nodes cost about one copy through the head's uplink. A node that already holds every file
    (each opens with the source's size) is skipped and the next node reads its files. The stream is unpacked into a
    staging directory under the destination's root and moved into place only once it is whole, authenticated and
    every file checked; a failed copy leaves the destination as it was.
  - After the copy, every snapshot file is opened on the destination and its size compared with the source; a
    missing or short file fails the task naming it. In check mode the same check runs when nothing would be sent.
  - Deprecated, until 1.0.0, the other direction - a push from this node, O(dest_host) instead of O(source_host),
    with O(dest_user) and O(dest_path), the module running on the source - works as before (rsync only, no relay).
  - A copy interrupted on the controller (Ctrl-C, a dropped connection) runs on until its O(timeout); the next copy
    of the same weights into the same place ends it before it starts, and reports that in RV(ended_leftover).
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  path:
    description:
      - With O(hf_repo), the Hugging Face cache root on this node (C(HF_HUB_CACHE), for example
        C(/home/nvidia/.cache/huggingface/hub)).
      - Without, the local model directory on this node.
      - In a relay, also where the node before keeps them (every node of a chain uses the same path).
    type: path
    required: true
  hf_repo:
    description:
      - The repository id, C(org/name).
    type: str
  source_host:
    description:
      - The fabric address of the node that holds the weights; the connecting user must reach it with SSH without
        a prompt (the fabric role sets that up). One of O(source_host) and O(dest_host) is required.
    type: str
  source_user:
    description:
      - SSH user on the source; default the current user.
    type: str
  source_path:
    description:
      - Where O(path) lives on the source; default the same path.
    type: path
  dest_host:
    description:
      - Deprecated (removed in 1.0.0; use O(source_host) on the destination). Push from this node to the node at
        this fabric address instead.
    type: str
  dest_user:
    description:
      - Deprecated with O(dest_host). SSH user on the destination; default the current user.
    type: str
  dest_path:
    description:
      - Deprecated with O(dest_host). Where O(path) lives on the destination; default the same path.
    type: path
  timeout:
    description:
      - Seconds for the whole transfer.
    type: int
    default: 7200
  bwlimit:
    description:
      - Cap on rsync's rate in KiB/s (C(--bwlimit)), to leave room on a fabric that also carries serving traffic;
        V(0) for none. Not in a relay.
    type: int
    default: 0
  streams:
    description:
      - Parallel rsyncs for the large files (64 MiB and up, dealt largest first to the least loaded stream); the
        rest of the model (directories, links, small files) goes first in one rsync. Not in a relay (one stream).
      - Default one per CPU of this node, at most 8 (one SSH stream cannot fill the 200G fabric; in the lab, 2 CPUs,
        2 streams took 0.6x to 1.06x the time of one for a 1 GiB model).
      - O(bwlimit) is shared between the streams.
    type: int
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - dgx_spark.cluster.progress
  - dgx_spark.cluster.relay
  - dgx_spark.cluster.shared_ssh
attributes:
  check_mode:
    support: full
    details: Alone, runs rsync with C(--dry-run) and reports what would be sent; when nothing would, it also checks
      every file on the destination (read-only). In a relay, checks whether this node holds every file.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - In a relay this node holds a second copy of what it has not yet got while it copies (the staging directory
    under O(path)), and a relaying node keeps the stream in a spool in O(relay_dir) until the next node opens it.
"""

EXAMPLES = r"""
- name: Weights of the served model from the head onto each worker
  dgx_spark.cluster.weight_sync:
    path: /home/nvidia/.cache/huggingface/hub
    hf_repo: openai/gpt-oss-120b
    source_host: 10.10.10.1

- name: Three workers in a relay (rank order), each passing on what it receives
  dgx_spark.cluster.weight_sync:
    path: /home/nvidia/models/llama-3.1-8b
    source_host: 10.10.10.1
    relay_id: "{{ relay_id }}"  # one random name for the whole chain, set once with run_once
    relay_from: "{{ omit if rank == 1 else addresses[rank - 1] }}"
    relay_to_next: "{{ rank < addresses | length - 1 }}"
"""

RETURN = r"""
ended_leftover:
  description: An interrupted earlier copy of the same weights into the same place that was still running and was
    ended first (its rsyncs or its stream, and their SSH).
  returned: when there was one
  type: dict
  contains:
    pid:
      description: The earlier module's process id.
      type: int
    since:
      description: When it started (UTC).
      type: str
    processes:
      description: The process ids ended.
      type: list
      elements: int
bytes_sent:
  description: Bytes that crossed to the destination (rsync's file data and protocol, or the relay stream's).
  returned: always
  type: int
files_transferred:
  description: Regular files sent (over all streams).
  returned: always
  type: int
file_bytes:
  description: Size of the files sent (in check mode, would send).
  returned: always
  type: int
streams:
  description: Parallel rsyncs the large files went over (1 when there was nothing to spread, in check mode and in a
    relay).
  returned: always
  type: int
  sample: 2
files_checked:
  description: Snapshot (or model) files opened and size-checked on the destination.
  returned: when not in check mode, and in check mode when nothing needs sending
  type: int
seconds:
  description: Duration of the transfer.
  returned: always
  type: float
paths:
  description: Number of paths in the transfer list (directories, files, links).
  returned: always
  type: int
transport:
  description: C(rsync), or C(stream) in a relay.
  returned: always
  type: str
checksum:
  description: The relay stream's HMAC-SHA256 (keyed by the copy's one-time token) as verified on both ends.
  returned: when a relay moved the weights
  type: str
export:
  description: Where the sender read the weights (C(files) from a node's disk, or C(relay) from the node before as it
    received them).
  returned: when a relay moved the weights
  type: str
relay:
  description: How the relay went on this node.
  returned: when a relay moved the weights
  type: dict
  contains:
    from:
      description: O(relay_from), or null.
      type: str
    fell_back:
      description: Why the copy from O(relay_from) failed and came from O(source_host) instead; null when it did not.
      type: str
    to_next:
      description: Whether a spool was kept for the next node.
      type: bool
"""

import hashlib
import json
import os
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _progress_file, _relay_copy, _rsync_progress
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _validate, _weights
from ansible_collections.dgx_spark.cluster.plugins.module_utils._ssh_share import shared_connection

# rsync -e takes one string; it holds no input. AES-GCM first: CPUs run it in hardware (x86 AES-NI, Arm's crypto
# extensions); OpenSSH's default first choice, chacha20-poly1305, took 1.2x to 1.7x as long for 1 GiB in the lab.
SSH_COMMAND = " ".join(["ssh"] + _validate.SSH_OPTIONS + ["-o", "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com"])
MAX_AUTO_STREAMS = 8


def _weights_program(call):
    """`python3 -` text for a node: _weights' own source and a call whose value is printed as JSON."""
    import inspect
    return "%s\nimport json\nprint(json.dumps(%s))\n" % (inspect.getsource(_weights), call)


def _root_and_top(path, hf_repo):
    """(the directory the copy's paths are relative to, the entry's own folder under it)."""
    if hf_repo:
        return path, _weights.repo_folder(hf_repo)
    return os.path.dirname(path.rstrip("/")), os.path.basename(path.rstrip("/"))


class WeightCopy(_relay_copy.RelayedCopy):
    def __init__(self, module):
        super().__init__(module)
        params = self.params
        self.pull = bool(params["source_host"])
        self.remote = params["source_host"] or params["dest_host"]
        self.user = params["source_user"] or params["dest_user"]
        remote_path = params["source_path"] or params["dest_path"] or params["path"]
        self.local_root, self.top = _root_and_top(params["path"], params["hf_repo"])
        self.remote_root = _root_and_top(remote_path, params["hf_repo"])[0]
        self.source_root, self.dest_root = ((self.remote_root, self.local_root) if self.pull
                                            else (self.local_root, self.remote_root))
        self.target = self.remote if not self.user else "%s@%s" % (self.user, self.remote)
        # an interrupted earlier copy of the same weights into the same place (its rsyncs or stream, their ssh)
        self.leftover_name = "weight_sync-" + hashlib.sha256(
            ("%s:%s/%s" % ("local" if self.pull else self.target, self.dest_root, self.top)).encode()).hexdigest()[:16]

    def validate(self):
        params = self.params
        kind = "data_dir" if params["hf_repo"] else "model_dir"  # never /, a system or a home directory itself
        found = _validate.first_problem([
            ("path", params["path"], kind),
            ("source_path" if self.pull else "dest_path", params["source_path"] or params["dest_path"] or "/x/y", kind),
            ("source_host" if self.pull else "dest_host", self.remote, "host"),
            ("source_user" if self.pull else "dest_user", self.user or "root", "user"),
            ("hf_repo", params["hf_repo"] or "org/name", "hf_repo")])
        found = found or self.relay_problem()
        if not found and self.relayed_copy() and not self.pull:
            found = "a relay runs on the destination: give source_host, not dest_host"
        if not found and params["progress_file"]:
            found = _progress_file.problem(params["progress_file"])
        if found:
            self.module.fail_json(msg=found)
        if params["bwlimit"] < 0:
            self.module.fail_json(msg="bwlimit is a rate in KiB/s (0 for none), not %d" % params["bwlimit"])
        if params["streams"] is not None and not 1 <= params["streams"] <= 64:
            self.module.fail_json(msg="streams is a number of parallel rsyncs from 1 to 64, not %d" % params["streams"])

    def relayed_copy(self):
        return bool(self.params["relay_from"] or self.params["relay_to_next"])

    def ssh_user(self):
        return self.user

    def what(self):
        return "the weights of %s" % (self.params["hf_repo"] or self.params["path"])

    def on_remote(self, program, doing, timeout=600):
        """program (`python3 -` text) run on the other node over the shared SSH connection; its JSON."""
        argv = self.ssh_argv(self.remote, "python3", "-")
        rc, out, err = self.runner.run(argv, data=program, binary_data=True, timeout=timeout)
        if rc != 0:
            self.runner.fail("%s on %s failed" % (doing, self.target), argv, rc, out, err)
        return json.loads(out.strip().splitlines()[-1])

    def source_listing(self):
        call = "listing(%r, %r)" % (self.source_root, self.top)
        found = (self.on_remote(_weights_program(call), "listing the weights") if self.pull
                 else _weights.listing(self.source_root, self.top))
        if "error" in found:
            self.module.fail_json(msg=found["error"])
        return found

    def dest_problems(self, files):
        if self.pull:
            return _weights.check_files(self.dest_root, files)
        return self.on_remote(_weights_program("check_files(%r, json.loads(%r))" % (self.dest_root, json.dumps(files))),
                              "checking the weights")

    def run(self):
        self.validate()
        if not self.pull:
            self.module.deprecate("dest_host (a push from the node that holds the weights) is replaced by source_host, "
                                  "run on the destination as p2p_image_copy is", version="1.0.0",
                                  collection_name="dgx_spark.cluster")
        work = self.relay if self.relayed_copy() else self.rsync
        return self.execute(work)

    def result(self, source, **values):
        result = {"paths": len(source["paths"]), "source": os.path.join(self.source_root, self.top),
                  "destination": os.path.join(self.dest_root, self.top)}
        if self.pull:
            result["source"] = "%s:%s" % (self.target, result["source"])
        else:
            result["destination"] = "%s:%s" % (self.target, result["destination"])
        result.update(values)
        return result

    def checked(self, result, files, after):
        """result with files_checked, or a failure naming what does not open or differs on the destination."""
        problems = self.dest_problems(files)
        if problems:
            self.module.fail_json(msg="%s%d file(s) do not open or differ on %s: %s"
                                      % ("after the copy, " if after else "", len(problems),
                                         "this node" if self.pull else self.target, "; ".join(problems[:10])),
                                  **result)
        result["files_checked"] = len(files)
        return result

    def rsync(self):
        params, source = self.params, self.source_listing()
        streams = params["streams"] or min(MAX_AUTO_STREAMS, os.cpu_count() or 1)
        rsync = self.runner.which("rsync", "install rsync")
        # a dry run needs no parallel streams; a copy sends the large files over several
        groups = ([source["paths"]] if self.module.check_mode
                  else _weights.stream_groups(source["paths"], source["sizes"], streams))
        options = ["--dry-run"] if self.module.check_mode else []
        if params["bwlimit"] > 0:  # the cap is for the whole copy: shared by the parallel streams
            options.append("--bwlimit=%d" % max(1, params["bwlimit"] // max(1, len(groups) - 1)))
        options += ["--info=progress2"] if params["progress_file"] and not self.module.check_mode else []
        remote_root = "%s:%s/" % (self.target, self.remote_root)
        ends = [remote_root, self.local_root + "/"] if self.pull else [self.local_root + "/", remote_root]
        with tempfile.TemporaryDirectory(prefix="weight_sync.") as lists:
            argvs = []
            for index, group in enumerate(groups):
                listing = os.path.join(lists, "%d.list" % index)
                with open(listing, "w") as handle:
                    handle.write("\n".join(group) + "\n")
                # the small files, then the first stream, ride on the shared connection; the other streams run beside
                # it on their own
                ssh_command = " ".join([SSH_COMMAND] + (shared_connection() if index < 2 else []))
                argvs.append([rsync] + options + ["-a", "--stats", "--mkpath", "--files-from=" + listing,
                                                  "-e", ssh_command] + ends)
            stages = [argvs[:1]] + ([argvs[1:]] if len(argvs) > 1 else [])
            start = time.monotonic()
            try:
                rc, out, err = self.runner.run([self.runner.which("python3", "install python3"), "-"], binary_data=True,
                                               data=_rsync_progress.program(stages, params["progress_file"]),
                                               timeout=params["timeout"])
            finally:
                if params["progress_file"]:
                    _progress_file.remove(params["progress_file"])
            seconds = round(time.monotonic() - start, 3)
        if rc != 0:
            self.runner.fail("rsync %s %s failed (rc=%s); a retry resumes where it stopped"
                             % ("from" if self.pull else "to", remote_root, rc), argvs[0], rc, out, err)
        sent, transferred, file_bytes = _weights.rsync_stats(out, self.pull)
        result = self.result(source, changed=bool(transferred), bytes_sent=sent, files_transferred=transferred,
                             file_bytes=file_bytes, streams=len(stages[-1]), seconds=seconds, transport="rsync")
        if self.module.check_mode and transferred:  # read-only: check mode checks a destination that needs nothing
            return result
        return self.checked(result, source["files"], not self.module.check_mode)

    def relay(self):
        source = self.source_listing()
        file_bytes = sum(source["sizes"].values())
        result = self.result(source, changed=False, bytes_sent=0, files_transferred=0, file_bytes=0, streams=1,
                             seconds=0.0, transport="stream")
        here = os.path.isdir(os.path.join(self.local_root, self.top))
        if here and not _weights.check_files(self.local_root, source["files"]):
            result["files_checked"] = len(source["files"])
            return self.held_here(result)  # a next node reads this node's files
        result.update(changed=True, files_transferred=len(source["sizes"]), file_bytes=file_bytes)
        if self.module.check_mode:
            return result
        try:
            if not os.path.isdir(self.local_root):
                os.makedirs(self.local_root)
            staging = tempfile.mkdtemp(prefix=".weight_sync-", dir=self.local_root)  # one filesystem: moves are renames
        except OSError as exc:
            self.module.fail_json(msg="cannot make a staging directory in %s for %s: %s" % (
                self.local_root, self.what(), exc), **result)
        tar = self.runner.which("tar", "install tar")

        def attempt(relay_from, spool):
            shutil.rmtree(staging, ignore_errors=True)
            os.mkdir(staging, 0o700)
            # the node before keeps them where this node does (path); the source where source_path says
            return self.receive({"tar": "tar", "files": {"root": self.local_root if relay_from else self.source_root,
                                                         "paths": source["paths"]}},
                                {"argv": [tar, "-x", "-f", "-", "-C", staging], "name": "tar -x", "image": False},
                                relay_from, spool, expected=file_bytes)
        try:
            rc, out, err, relay = self.relayed(attempt, lambda: None)
            if rc != 0:
                self.module.fail_json(msg="the copy of %s from %s failed: %s. Nothing was moved into %s; retry the "
                                          "task to start over." % (self.what(), self.params["source_host"],
                                                                   _relay_copy.first_error_line(err, rc),
                                                                   self.local_root),
                                      rc=rc, stdout=out, stderr=err, **result)
            problems = _weights.check_files(staging, source["files"])
            if problems:
                self.module.fail_json(msg="the stream of %s was whole, but %d file(s) do not open or differ after "
                                          "unpacking: %s. Nothing was moved into %s." % (
                                              self.what(), len(problems), "; ".join(problems[:10]), self.local_root),
                                      **result)
            _weights.move_into(staging, self.local_root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if self.params["progress_file"]:
                _progress_file.remove(self.params["progress_file"])
        self.hand_over(relay)
        report = json.loads(out.strip().splitlines()[-1])
        result.update(bytes_sent=report["bytes"], seconds=report["seconds"], checksum=report["checksum"],
                      export=report["sender"]["export"], relay=relay)
        return self.checked(result, source["files"], True)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            hf_repo=dict(type="str"),
            source_host=dict(type="str"),
            source_user=dict(type="str"),
            source_path=dict(type="path"),
            dest_host=dict(type="str"),
            dest_user=dict(type="str"),
            dest_path=dict(type="path"),
            timeout=dict(type="int", default=_weights.SYNC_TIMEOUT),
            bwlimit=dict(type="int", default=0),
            streams=dict(type="int"),
            progress_interval=dict(type="float", default=10),
            progress_file=dict(type="path"),
            **_relay_copy.RELAY_OPTIONS
        ),
        mutually_exclusive=[("source_host", "dest_host"), ("source_user", "dest_user"), ("source_path", "dest_path"),
                            ("dest_host", "source_user"), ("dest_host", "source_path"),
                            ("source_host", "dest_user"), ("source_host", "dest_path")],
        required_one_of=[("source_host", "dest_host")],
        supports_check_mode=True,
    )
    module.exit_json(**WeightCopy(module).run())


if __name__ == "__main__":
    main()
