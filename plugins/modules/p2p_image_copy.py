#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: p2p_image_copy
short_description: Make a container image on one Spark present on the other, over the fabric, verified
version_added: 0.1.0
description:
  - Runs on the destination node. Compares the image on both nodes first; the same image means no transfer and
    C(changed=false). With both nodes' docker on overlay2 the image ID is the SHA-256 of the image's config and
    decides. Docker's containerd image store names the same image by its manifest instead, so across image stores
    the module compares the layer diff IDs and the image config, and says which it used.
  - Otherwise it opens a TCP listener on the destination's fabric address, then starts the sender on the source over
    SSH (the program and a one-time token travel on SSH's stdin, never in an argv). The sender proves the token and
    streams the image archive in frames straight into C(docker load) on the destination; the last frame carries the
    HMAC-SHA256 of the whole stream, keyed by the one-time token, and its length, which the destination checks
    before C(docker load) sees the end of the archive. The listener exists before the sender starts, so there is
    no sleep and no race; a connection that does not open with the token (a port scan, a stranger) is dropped and
    the listener waits on for the sender until the timeout.
  - The destination reads the archive's manifest as it passes and refuses an archive that would load more than one
    image or tag anything but O(image) (an image copied by ID tags nothing), before C(docker load) commits it.
  - The archive is read straight from the source's overlay2 layer store when the sender can read it (as root, see
    O(source_become)). Each layer tar is rebuilt byte for byte from docker's own tar-split record and the layer's
    files, so the first byte leaves at once, where C(docker save) first stages the whole export on disk
    (docs/benchmarks.md). Otherwise (another storage driver, the containerd image store, no root, or
    O(export=docker_save)) the sender streams C(docker save). Either way C(docker load) checks every layer
    against the image's diff IDs.
  - Nothing half-loaded. A refused, interrupted or corrupted stream stops C(docker load) before it tags anything;
    if a tag moved anyway, it is put back on the previous image (or removed when there was none). The error says
    what happened, and a retry starts over.
  - Layers the destination already holds stay off the wire (O(skip_present_layers)). Docker's load skips reading
    the file of a layer whose chain it holds, so the sender leaves those files out of the stream. The OCI
    C(docker save) layout (docker 25 and later) names layer files by digest; in the legacy layout the sender knows
    a layer file by its place in the chain, or else hashes it. Should a load without them fail, the copy is redone once with every layer.
  - The traffic on the fabric is not encrypted (an image is not a secret); it is authenticated end to end by the
    HMAC trailer and verified by the image's own digests. C(docker load) checks every layer against the image's
    diff IDs, and the module compares the loaded image with the source's, inspected over SSH (the image ID, which
    is the SHA-256 of its config, when both nodes use overlay2).
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  image:
    description:
      - The image reference on the source, for example C(nvcr.io/nvidia/vllm:25.11-py3).
    type: str
    required: true
  source_host:
    description:
      - Address of the source node on the fabric. The connecting user must reach it with SSH without a prompt
        (the fabric role sets that up).
    type: str
    required: true
  source_user:
    description:
      - SSH user on the source; default the current user.
    type: str
  timeout:
    description:
      - Seconds for the whole transfer; the sender and C(docker load) are stopped when it runs out.
    type: int
    default: 3600
  docker:
    description:
      - The docker CLI on both nodes.
    type: str
    default: docker
  export:
    description:
      - How the sender reads the image. V(auto) reads docker's overlay2 layer store when it can, else runs
        C(docker save); V(docker_save) always runs C(docker save).
    type: str
    choices: [auto, docker_save]
    default: auto
  source_become:
    description:
      - Run the sender on the source with C(sudo -n), so it can read docker's layer store (passwordless sudo, which
        the preflight role checks). Without it the sender runs as the SSH user and reads the image with
        C(docker save).
    type: bool
    default: false
  checksum:
    description:
      - Deprecated and without effect; it will be removed in 1.0.0. The stream is always authenticated with
        HMAC-SHA256 keyed by the copy's one-time token (V(crc32) and V(sha256) were unkeyed checksums).
    type: str
    choices: [hmac-sha256, crc32, sha256]
    default: hmac-sha256
  skip_present_layers:
    description:
      - Leave out of the stream the layers whose chain the destination already holds (for example the base layers
        of a new version of an image it has). Off with docker's containerd image store, whose load does not
        take a partial archive, and in a relay (O(relay_from), O(relay_to_next)), which passes the whole archive
        on; a node before that holds the image already sends it from its docker.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dgx_spark.cluster.relay
  - ansible.builtin.action_common_attributes.flow
  - dgx_spark.cluster.progress
  - dgx_spark.cluster.shared_ssh
attributes:
  check_mode:
    support: full
    details: Compares and reports whether a transfer would happen.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The user running the module needs access to docker on both nodes (the docker group, or become).
  - With C(docker save) the source still reads every layer, only the wire and the destination's load are spared;
    from the layer store only the layers sent are read.
  - The stream is the only transport. Without a registry between the nodes, C(skopeo) can only copy from the
    source's docker daemon (its socket forwarded over SSH) to the destination's, which sends every layer and was
    measured slower than the stream (docs/benchmarks.md).
  - A copy interrupted on the controller (Ctrl-C, a dropped connection) runs on until its O(timeout); the next copy
    into the same node ends it (its listener, C(docker load), SSH to the source) before it starts, and reports that
    in RV(ended_leftover).
"""

EXAMPLES = r"""
- name: vLLM image on the worker, from the head over the fabric
  dgx_spark.cluster.p2p_image_copy:
    image: nvcr.io/nvidia/vllm:25.11-py3
    source_host: 10.10.10.1
  delegate_to: spark-ba63

- name: The image on three workers in a relay (each forwards what it receives); every worker runs the task at once
  dgx_spark.cluster.p2p_image_copy:
    image: nvcr.io/nvidia/vllm:25.11-py3
    source_host: 10.10.10.1
    relay_id: "{{ relay_id }}"  # e.g. set once with lookup('ansible.builtin.password', '/dev/null', length=16)
    relay_from: "{{ chain[chain.index(inventory_hostname) - 1] if chain.index(inventory_hostname) > 0 else omit }}"
    relay_to_next: "{{ inventory_hostname != chain[-1] }}"
  vars:
    chain: [spark-ba63, spark-lab3, spark-lab4]  # fabric addresses in a real inventory

- name: The same, the sender reading docker's layer store as root on the head
  dgx_spark.cluster.p2p_image_copy:
    image: nvcr.io/nvidia/vllm:25.11-py3
    source_host: 10.10.10.1
    source_become: true
  delegate_to: spark-ba63
"""

RETURN = r"""
ended_leftover:
  description: An interrupted earlier copy into this node that was still running and was ended first.
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
transferred:
  description: Whether the image crossed the wire.
  returned: always
  type: bool
compared_by:
  description:
    - How the images were compared. C(image id) when the IDs are equal or both nodes use overlay2 (the ID is the
      config's digest); C(layers and config) when the IDs come from different image stores.
  returned: always
  type: str
source_id:
  description: Image ID on the source.
  returned: always
  type: str
dest_id_before:
  description: Image ID on the destination before (null when absent).
  returned: always
  type: str
bytes:
  description: Bytes sent.
  returned: when transferred
  type: int
seconds:
  description: Transfer duration.
  returned: when transferred
  type: float
throughput_mib_s:
  description: Bytes sent per second, in MiB/s.
  returned: when transferred
  type: float
checksum:
  description: The stream's HMAC-SHA256 (keyed by the copy's one-time token) as verified on both ends.
  returned: when transferred
  type: str
  sample: hmac-sha256:4d1c0b6f0e6a3b2e5f8c9d7a1b3c5e7f9a0b2c4d6e8f0a1b3c5d7e9f1a3b5c7d
refused_connections:
  description: Connections to the listener that did not prove the token (a port scan), dropped while it waited.
  returned: when transferred
  type: int
  sample: 0
transport:
  description: The transport used (C(stream)).
  returned: always
  type: str
layers_left_out:
  description: Digests (diff IDs) of the layers the destination already held, left out of the stream.
  returned: when transferred
  type: list
  elements: str
bytes_left_out:
  description: Size of the layer files left out of the stream.
  returned: when transferred
  type: int
export:
  description: How the sender read the image (C(layer store), C(docker save), or C(relay) from the node before).
  returned: when transferred
  type: str
  sample: layer store
relay:
  description: How the relay went on this node.
  returned: when O(relay_from) or O(relay_to_next) is set and the image was not already here
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
layers_hashed:
  description:
    - Layer files the sender hashed to tell them apart (legacy save layout, when the directories seen so far left
      more than one place in the chain for a file as it passed); each is spooled before it is sent or dropped.
  returned: when transferred
  type: int
"""

import json
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _image_stream, _progress_file, _validate
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _relay_copy
from ansible_collections.dgx_spark.cluster.plugins.module_utils._image_stream import chain_ids, hex_of


def image_identity(inspect_json):
    """(image id, key comparable across image stores) from `docker image inspect` JSON of one image."""
    data = json.loads(inspect_json)[0]
    config = data.get("Config") or {}
    comparable = {
        "layers": (data.get("RootFS") or {}).get("Layers") or [],
        "config": dict((k, config.get(k)) for k in ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels")),
        "platform": [data.get("Os"), data.get("Architecture"), data.get("Variant")],
    }
    return data.get("Id"), json.dumps(comparable, sort_keys=True)


def comparison(source, dest):
    """(the same image?, how that was decided) from (image id, comparable key, in an overlay2 store) of the source's
    image and of the destination's (id None when it has none)."""
    (source_id, source_key, source_overlay2), (dest_id, dest_key, dest_overlay2) = source, dest
    if dest_id is None or dest_id == source_id or (source_overlay2 and dest_overlay2):
        return dest_id is not None and dest_id == source_id, "image id"
    return dest_key == source_key, "layers and config"


def layer_store_root(inspected):
    """docker's root directory (the overlay2 layer store the sender may read) from `docker image inspect` of the
    image, or None for another driver (the containerd image store reports its snapshotter, not overlay2)."""
    driver = inspected.get("GraphDriver") or {}
    upper = (driver.get("Data") or {}).get("UpperDir") or ""
    parts = upper.split("/")
    if driver.get("Name") != "overlay2" or len(parts) < 5 or parts[-1] != "diff" or parts[-3] != "overlay2":
        return None
    return "/".join(parts[:-3])


def repo_tags(image, image_id):
    """The tag `docker save <image>` records: none for an image ID (or a prefix) or a digest reference, the
    reference with :latest added when it has no tag."""
    hex_ref = re.match(r"^(?:sha256:)?([0-9a-f]+)$", image)
    if "@" in image or (hex_ref and hex_of(image_id).startswith(hex_ref.group(1))):
        return []
    return [image if ":" in image.rsplit("/", 1)[-1] else image + ":latest"]


def layers_to_leave_out(source_layers, held_chains):
    """Diff IDs the destination holds in the same chain as the source image: its longest held prefix, less any
    digest a missing layer also has (that file must still be sent)."""
    held = 0
    for position, chain in enumerate(chain_ids(source_layers)):
        if chain in held_chains:
            held = position + 1
    return sorted(set(source_layers[:held]) - set(source_layers[held:]))


CONTAINERD_STORE = "io.containerd.snapshotter.v1"


class ImageCopy(_relay_copy.RelayedCopy):
    leftover_name = "p2p_image_copy"  # one copy into a node at a time

    def validate(self):
        params = self.params
        found = _validate.first_problem([
            ("image", params["image"], "image_or_id"), ("source_host", params["source_host"], "host"),
            ("source_user", params["source_user"] or "root", "user"), ("docker", params["docker"], "command")])
        found = found or self.relay_problem()
        if not found and params["progress_file"]:
            found = _progress_file.problem(params["progress_file"])
        if found:
            self.module.fail_json(msg=found)
        if params["timeout"] < 10:
            self.module.fail_json(msg="timeout must be at least 10 s")

    def what(self):
        return self.params["image"]

    def local_identity(self):
        """(image id, comparable key, whether it is in an overlay2 store) of the image here, Nones when absent."""
        docker = self.runner.which(self.params["docker"], "install docker")
        rc, out, _err = self.runner.run([docker, "image", "inspect", "--", self.params["image"]])
        if rc != 0:
            return None, None, False
        return image_identity(out) + (layer_store_root(json.loads(out)[0]) is not None,)

    def source_identity(self):
        # the remote command is fixed words plus the validated image reference
        argv = self.ssh_argv(self.params["source_host"], self.params["docker"], "image", "inspect", "--",
                             self.params["image"])
        rc, out, err = self.runner.run(argv, timeout=60)
        if rc != 0:
            self.runner.fail("image %s is not on the source %s (or SSH to it failed)"
                             % (self.params["image"], self.params["source_host"]), argv, rc, out, err)
        inspected = json.loads(out)[0]
        self.source_layers = (inspected.get("RootFS") or {}).get("Layers") or []
        self.source_size = inspected.get("Size")
        self.source_id = inspected.get("Id")
        self.source_store = layer_store_root(inspected)
        return image_identity(out) + (self.source_store is not None,)

    def held_layers(self):
        """The source image's layers whose chain the destination's docker holds (none with the containerd store)."""
        docker = self.runner.which(self.params["docker"], "install docker")
        driver = self.runner.check([docker, "info", "--format", "{{json .DriverStatus}}"], "asking docker info")
        if CONTAINERD_STORE in driver:
            return []
        ids = self.runner.check([docker, "image", "ls", "-q", "--no-trunc"], "listing images").split()
        held = set()
        if ids:
            images = json.loads(self.runner.check([docker, "image", "inspect"] + sorted(set(ids)),
                                                  "inspecting images"))
            for image in images:
                held.update(chain_ids((image.get("RootFS") or {}).get("Layers") or []))
        return layers_to_leave_out(self.source_layers, held)

    def layers_to_skip(self):
        """The layers a copy leaves out of the stream: those held here, unless skip_present_layers is off."""
        return self.held_layers() if self.params["skip_present_layers"] else []

    def transfer(self, skip, relay_from=None, spool=False):
        """The image streamed into docker load here (without the layer files of skip), from the source or, in a
        relay, from relay_from as it arrives there; (rc, stdout, stderr)."""
        params = self.params
        docker = self.runner.which(params["docker"], "install docker")
        return self.receive(
            {"docker": params["docker"], "image": params["image"], "skip": skip, "layers": self.source_layers,
             "image_id": self.source_id, "repo_tags": repo_tags(params["image"], self.source_id),
             "layer_store": self.source_store if params["export"] == "auto" else None},
            {"argv": [docker, "load"], "name": "docker load", "image": True}, relay_from, spool,
            expected=None if skip else self.source_size, become=params["source_become"])

    def copy(self, previous_id):
        params = self.params
        skip = []

        def attempt(relay_from, spool):
            # a relay passes the whole archive on: the next node may lack the layers this one holds
            skip[:] = [] if relay_from or spool else self.layers_to_skip()
            return self.transfer(skip, relay_from, spool)
        rc, out, err, relay = self.relayed(attempt, lambda: self.restore(previous_id))
        if rc != 0 and skip:
            self.restore(previous_id)
            self.module.warn("the copy without the %d layers %s holds failed (%s); copying every layer"
                             % (len(skip), params["image"], _relay_copy.first_error_line(err, rc)))
            skip = []
            rc, out, err = self.transfer(skip)
        if rc != 0:
            restored = self.restore(previous_id)
            self.module.fail_json(msg="image copy of %s from %s failed: %s. %s Retry the task to start over."
                                      % (params["image"], params["source_host"],
                                         _relay_copy.first_error_line(err, rc), restored),
                                  rc=rc, stdout=out, stderr=err)
        report = json.loads(out.strip().splitlines()[-1])
        report["docker_load"] = report.pop("loaded")
        if params["relay_from"] or params["relay_to_next"]:
            report["relay"] = relay
        self.hand_over(relay)
        left_out = report["sender"].get("left_out") or {}
        report.update(layers_left_out=sorted(left_out), bytes_left_out=sum(left_out.values()),
                      layers_hashed=report["sender"].get("layers_hashed", 0), export=report["sender"]["export"])
        return report

    def restore(self, previous_id):
        """After a failed load: the tag back on the previous image, or no tag at all when there was none."""
        current_id = self.local_identity()[0]
        if current_id == previous_id:
            return "The destination is unchanged."
        docker = self.params["docker"]
        if previous_id:
            self.runner.run([docker, "tag", previous_id, self.params["image"]])
            return "The destination's tag points at its previous image %s again." % previous_id
        self.runner.run([docker, "image", "rm", "--", self.params["image"]])
        return "The partially loaded tag was removed; the destination has no such image."

    def run(self):
        self.validate()
        return self.execute(self.compare_and_copy)

    def compare_and_copy(self):
        source = self.source_identity()
        dest = self.local_identity()
        same, compared_by = comparison(source, dest)
        dest_id = dest[0]
        result = {"changed": False, "transferred": False, "transport": "stream", "source_id": source[0],
                  "dest_id_before": dest_id, "compared_by": compared_by}
        if same:
            return self.held_here(result)  # a next node reads this node's docker
        result["changed"] = True
        if self.module.check_mode:
            return result
        try:
            result.update(self.copy(dest_id))
        finally:
            if self.params["progress_file"]:
                _progress_file.remove(self.params["progress_file"])
        result["transferred"] = True
        after = self.local_identity()
        if not comparison(source, after)[0]:
            self.module.fail_json(msg="after the copy the destination's %s does not match the source (%s vs %s). %s"
                                      % (self.params["image"], after[0], source[0], self.restore(dest_id)),
                                  **result)
        result["dest_id_after"] = after[0]
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="str", required=True),
            source_host=dict(type="str", required=True),
            source_user=dict(type="str"),
            timeout=dict(type="int", default=_image_stream.COPY_TIMEOUT),
            docker=dict(type="str", default="docker"),
            skip_present_layers=dict(type="bool", default=True),
            export=dict(type="str", default="auto", choices=["auto", "docker_save"]),
            checksum=dict(type="str", default="hmac-sha256", choices=["hmac-sha256", "crc32", "sha256"]),
            source_become=dict(type="bool", default=False),
            progress_file=dict(type="path"),
            progress_interval=dict(type="float", default=10),
            **_relay_copy.RELAY_OPTIONS
        ),
        supports_check_mode=True,
    )
    if module.params["checksum"] != "hmac-sha256":
        module.deprecate("checksum=%s has no effect: the stream is always authenticated with HMAC-SHA256 keyed by "
                         "the copy's token" % module.params["checksum"], version="1.0.0",
                         collection_name="dgx_spark.cluster")
    module.exit_json(**ImageCopy(module).run())


if __name__ == "__main__":
    main()
