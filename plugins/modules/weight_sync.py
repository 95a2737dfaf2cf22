#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: weight_sync
short_description: Sync a model's weights from this Spark to the other over the fabric, complete and resolvable
version_added: 0.1.0
description:
  - Runs on the node that holds the weights (the head, after the one download). Pushes a Hugging Face cache entry
    (O(hf_repo) under the cache root O(path)) or a local model directory (O(path) alone) to O(dest_host) with
    C(rsync) over SSH.
  - A cache entry is sent with its structure, C(models--org--name/{blobs,snapshots,refs}), snapshot symlinks kept
    as symlinks, plus any blob they point to outside the entry (blobs kept at the cache root); dangling links or
    links leaving the cache on the source are refused before anything is sent.
  - After the transfer, every snapshot file is opened on the destination and its size compared with the source;
    a missing or short file fails the task naming it. In check mode the same check runs when nothing would be sent.
  - rsync's quick check skips unchanged files, so a re-sync of an unchanged model sends almost nothing and reports
    C(changed=false).
  - A sync interrupted on the controller (Ctrl-C, a dropped connection) runs on until its O(timeout); the next sync
    of the same weights to the same destination ends it before it starts, and reports that in RV(ended_leftover).
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  path:
    description:
      - With O(hf_repo), the Hugging Face cache root (C(HF_HUB_CACHE), for example C(/home/nvidia/.cache/huggingface/hub)).
      - Without, the local model directory.
    type: path
    required: true
  hf_repo:
    description:
      - The repository id, C(org/name).
    type: str
  dest_host:
    description:
      - The other node's fabric address; the connecting user must reach it with SSH without a prompt.
    type: str
    required: true
  dest_user:
    description:
      - SSH user on the destination; default the current user.
    type: str
  dest_path:
    description:
      - Where O(path) lives on the destination; default the same path.
    type: path
  timeout:
    description:
      - Seconds for the whole transfer.
    type: int
    default: 7200
  bwlimit:
    description:
      - Cap on rsync's rate in KiB/s (C(--bwlimit)), to leave room on a fabric that also carries serving traffic;
        V(0) for none.
    type: int
    default: 0
  streams:
    description:
      - Parallel rsyncs for the large files (64 MiB and up, dealt largest first to the least loaded stream); the
        rest of the model (directories, links, small files) goes first in one rsync.
      - Default one per CPU of the source node, at most 8 (one SSH stream cannot fill the 200G fabric; in the
        lab, 2 CPUs, 2 streams took 0.6x to 1.06x the time of one for a 1 GiB model).
      - O(bwlimit) is shared between the streams.
    type: int
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - dgx_spark.cluster.progress
  - dgx_spark.cluster.shared_ssh
attributes:
  check_mode:
    support: full
    details: Runs rsync with C(--dry-run) and reports what would be sent; when nothing would, it also checks every
      file on the destination (read-only).
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Weights of the served model onto the worker
  dgx_spark.cluster.weight_sync:
    path: /home/nvidia/.cache/huggingface/hub
    hf_repo: openai/gpt-oss-120b
    dest_host: 10.10.10.2
  delegate_to: spark-2959
"""

RETURN = r"""
ended_leftover:
  description: An interrupted earlier sync of the same weights to the same destination that was still running and
    was ended first (its rsyncs and their SSH).
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
  description: Bytes rsync sent (file data and protocol).
  returned: always
  type: int
files_transferred:
  description: Regular files rsync sent (over all streams).
  returned: always
  type: int
file_bytes:
  description: Size of the files rsync sent (in check mode, would send).
  returned: always
  type: int
streams:
  description: Parallel rsyncs the large files went over (1 when there was nothing to spread, and in check mode).
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
"""

import hashlib
import json
import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _leftover, _progress_file, _rsync_progress, _validate, _weights
from ansible_collections.dgx_spark.cluster.plugins.module_utils._runner import CommandRunner
from ansible_collections.dgx_spark.cluster.plugins.module_utils._ssh_share import shared_connection

# rsync -e takes one string; it holds no input. AES-GCM first: CPUs run it in hardware (x86 AES-NI, Arm's crypto
# extensions); OpenSSH's default first choice, chacha20-poly1305, took 1.2x to 1.7x as long for 1 GiB in the lab.
SSH_COMMAND = " ".join(["ssh"] + _validate.SSH_OPTIONS + ["-o", "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com"])
MAX_AUTO_STREAMS = 8


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            hf_repo=dict(type="str"),
            dest_host=dict(type="str", required=True),
            dest_user=dict(type="str"),
            dest_path=dict(type="path"),
            timeout=dict(type="int", default=_weights.SYNC_TIMEOUT),
            bwlimit=dict(type="int", default=0),
            streams=dict(type="int"),
            progress_interval=dict(type="float", default=10),
            progress_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    runner = CommandRunner(module)
    dest_path = params["dest_path"] or params["path"]
    found = _validate.first_problem([
        # a Hugging Face cache, else a model's own directory: never /, a system or a home directory itself
        ("path", params["path"], "data_dir" if params["hf_repo"] else "model_dir"),
        ("dest_path", dest_path, "data_dir" if params["hf_repo"] else "model_dir"),
        ("dest_host", params["dest_host"], "host"),
        ("dest_user", params["dest_user"] or "root", "user"), ("hf_repo", params["hf_repo"] or "org/name", "hf_repo")])
    if not found and params["progress_file"]:
        found = _progress_file.problem(params["progress_file"])
    if found:
        module.fail_json(msg=found)
    if params["bwlimit"] < 0:
        module.fail_json(msg="bwlimit is a rate in KiB/s (0 for none), not %d" % params["bwlimit"])
    if params["streams"] is not None and not 1 <= params["streams"] <= 64:
        module.fail_json(msg="streams is a number of parallel rsyncs from 1 to 64, not %d" % params["streams"])

    if params["hf_repo"]:
        root, top, dest_root = params["path"], _weights.repo_folder(params["hf_repo"]), dest_path
    else:
        root, top = os.path.dirname(params["path"].rstrip("/")), os.path.basename(params["path"].rstrip("/"))
        dest_root = os.path.dirname(dest_path.rstrip("/"))
    try:
        paths, files = _weights.manifest(root, top)
    except _weights.LayoutError as exc:
        module.fail_json(msg=str(exc))

    target = params["dest_host"] if not params["dest_user"] else "%s@%s" % (params["dest_user"], params["dest_host"])
    streams = params["streams"] or min(MAX_AUTO_STREAMS, os.cpu_count() or 1)
    source_root, rsync = os.path.realpath(root), runner.which("rsync", "install rsync")
    # a dry run needs no parallel streams; a sync sends the large files over several
    groups = [paths] if module.check_mode else _weights.stream_groups(source_root, paths, streams)
    options = ["--dry-run"] if module.check_mode else []
    if params["bwlimit"] > 0:  # the cap is for the whole sync: shared by the parallel streams
        options.append("--bwlimit=%d" % max(1, params["bwlimit"] // max(1, len(groups) - 1)))
    options += ["--info=progress2"] if params["progress_file"] and not module.check_mode else []
    with tempfile.TemporaryDirectory(prefix="weight_sync.") as lists:
        argvs = []
        for index, group in enumerate(groups):
            listing = os.path.join(lists, "%d.list" % index)
            with open(listing, "w") as handle:
                handle.write("\n".join(group) + "\n")
            # the small files, then the first stream, ride on the shared connection; the other streams run beside
            # it on their own
            ssh_command = " ".join([SSH_COMMAND] + (shared_connection() if index < 2 else []))
            argvs.append([rsync] + options + ["-a", "--stats", "--mkpath", "--files-from=" + listing, "-e", ssh_command,
                                              source_root + "/", "%s:%s/" % (target, dest_root)])
        stages = [argvs[:1]] + ([argvs[1:]] if len(argvs) > 1 else [])
        # an interrupted earlier sync of the same weights to the same place (its rsyncs and their ssh) ends first
        leftover_name = "weight_sync-" + hashlib.sha256(("%s:%s/%s" % (target, dest_root, top)).encode()).hexdigest()[:16]
        ended = None if module.check_mode else _leftover.claim(leftover_name)
        start = time.monotonic()
        try:
            rc, out, err = runner.run([runner.which("python3", "install python3"), "-"], binary_data=True,
                                      data=_rsync_progress.program(stages, params["progress_file"]),
                                      timeout=params["timeout"])
        finally:
            if params["progress_file"]:
                _progress_file.remove(params["progress_file"])
            if not module.check_mode:
                _leftover.release(leftover_name)
        seconds = round(time.monotonic() - start, 3)
    if rc != 0:
        runner.fail("rsync to %s:%s failed (rc=%s); a retry resumes where it stopped" % (target, dest_root, rc),
                    argvs[0], rc, out, err)
    sent, transferred, file_bytes = _weights.rsync_stats(out)
    result = {"changed": bool(transferred), "bytes_sent": sent, "files_transferred": transferred,
              "file_bytes": file_bytes, "streams": len(stages[-1]),
              "seconds": seconds, "paths": len(paths), "source": os.path.join(root, top),
              "destination": "%s:%s" % (target, os.path.join(dest_root, top))}
    if ended:
        result["ended_leftover"] = ended
    if not module.check_mode or not transferred:  # read-only: check mode checks a destination that needs nothing
        checker = "%s\nimport json\nprint(json.dumps(check_files(%r, json.loads(%r))))\n" % (
            _weights_source(), dest_root, json.dumps(files))
        argv = ([runner.which("ssh", "install openssh-client")] + _validate.SSH_OPTIONS + shared_connection()
                + [target, "python3", "-"])
        rc, out, err = runner.run(argv, data=checker, binary_data=True, timeout=600)
        if rc != 0:
            runner.fail("checking the weights on %s failed" % target, argv, rc, out, err)
        problems = json.loads(out.strip().splitlines()[-1])
        if problems:
            module.fail_json(msg="%s%d file(s) do not open or differ on %s: %s"
                                 % ("" if module.check_mode else "after the sync, ", len(problems), target,
                                    "; ".join(problems[:10])), **result)
        result["files_checked"] = len(files)
    module.exit_json(**result)


def _weights_source():
    import inspect
    return inspect.getsource(_weights)


if __name__ == "__main__":
    main()
