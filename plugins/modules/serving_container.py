#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: serving_container
short_description: Converge the engine container of one serving rank on this node, run by a systemd unit
version_added: 0.1.0
description:
  - O(state=started) - the rank's container (C(dgx-spark-serve-<model>-r<rank>)) exists with this configuration
    (the C(dgx-spark.config) label) and runs under the unit C(dgx-spark-serving@<container>.service), enabled at
    boot, which waits for the ranks it needs (O(peers)) before it starts the container. A container of another
    configuration is replaced; the same one running is left alone.
  - O(state=parked) - every serving container on this node stops and is renamed C(<name>-previous), its unit
    disabled - kept, so a launch that fails can bring it back. O(state=restored) undoes that. O(state=absent) removes
    one rank's container and unit, the parked ones (O(which=parked)) or every serving container (O(which=all)).
  - The catalog entry and the run settings are checked again here, with the rules the role checks them with on the
    controller, so what reaches C(docker create) follows them whatever put it in the task.
  - Needs the unit template C(/etc/systemd/system/dgx-spark-serving@.service) (the model_serving role installs it).
author:
  - DGX Spark cluster maintainers (@dgx-spark-cluster)
options:
  state:
    description: What to converge to.
    type: str
    choices: [started, parked, restored, absent]
    default: started
  model:
    description: The catalog key (names the container); required for O(state=started) and O(which=rank).
    type: str
  rank:
    description: The rank (0 serves the API).
    type: int
    default: 0
  entry:
    description: The validated catalog entry (dgx_spark.cluster.serving_entry); checked again here.
    type: dict
  settings:
    description: The run settings of the rank's argv (dgx_spark.cluster.serving_rank_argv); checked again here.
    type: dict
  peers:
    description: V(address:port) of the ranks that must listen before this one starts at boot (the unit waits).
    type: list
    elements: str
    default: []
  peers_timeout:
    description: Seconds the unit waits for O(peers) at boot.
    type: int
    default: 600
  which:
    description: For O(state=absent) - V(rank) (O(model), O(rank)), V(parked) or V(all).
    type: str
    choices: [rank, parked, all]
    default: rank
  stop_timeout:
    description:
      - Seconds a container that is parked or removed gets to stop after C(SIGTERM) before docker kills it
        (C(docker stop --time)); V(0) kills at once (a failed launch's own containers).
      - Its unit's own stop (a node shutting down) keeps the 30 s of the unit template.
    type: int
    default: 30
  boot:
    description: Enable the unit, so the rank comes back when the node boots.
    type: bool
    default: true
  docker:
    description: The docker CLI.
    type: str
    default: docker
  api_key_file:
    description:
      - Rank 0's API key file (docker's C(--env-file) format, C(VLLM_API_KEY=<key>)), converged before the container
        is created - holding O(api_key) (mode 0600, owned by O(api_key_owner)), or absent when O(api_key) is empty.
      - When O(api_key) is set it must be the C(api_key_file) of O(settings), the file rank 0 reads its key from.
      - With O(state=restored), the file holds the key of the restored rank 0 again (its container's own
        C(VLLM_API_KEY), or no file when it has none), whatever a failed launch wrote there.
    type: path
  api_key:
    description: The endpoint's API key written to O(api_key_file) (16 to 256 letters, digits and C(._~+/=-)); never
      shown.
    type: str
    default: ""
  api_key_owner:
    description: The user who owns O(api_key_file) (the probes read it as that user); the module's user when unset.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Compares and reports what it would create, replace, park, restore or remove.
  diff_mode:
    support: full
    details: The containers before and after (name, configuration, state).
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: This node's rank
  dgx_spark.cluster.serving_container:
    model: llama-3.1-8b-instruct
    rank: "{{ rank }}"
    entry: "{{ entry }}"
    settings: "{{ settings }}"
    api_key_file: "{{ settings.api_key_file if rank | int == 0 else omit }}"
    api_key: "{{ api_key if rank | int == 0 else omit }}"
    api_key_owner: spark
  become: true

- name: Keep what serves aside while the new model starts
  dgx_spark.cluster.serving_container:
    state: parked
  become: true
"""

RETURN = r"""
container:
  description: The rank's container (O(state=started)).
  returned: when state is started
  type: str
parked:
  description: The containers parked (O(state=parked)), restored (O(state=restored)) or removed (O(state=absent)).
  returned: when state is parked, restored or absent
  type: list
  elements: str
"""

import json
import os
import pwd
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _api_key, _catalog, _engine_argv, _validate
from ansible_collections.dgx_spark.cluster.plugins.module_utils._runner import CommandRunner
from ansible_collections.dgx_spark.cluster.plugins.module_utils._serving_state import SERVING_LABEL, containers

UNIT_TEMPLATE = "/etc/systemd/system/dgx-spark-serving@.service"
ENV_DIR = "/etc/dgx-spark/serving"
PARKED_SUFFIX = "-previous"


def unit(name):
    return "dgx-spark-serving@%s.service" % name


class Node(object):
    """The serving containers and their units on this node."""

    def __init__(self, module):
        self.module, self.runner = module, CommandRunner(module)
        self.docker = self.runner.which(module.params["docker"], "install docker (DGX OS ships it)")

    def listing(self):
        rc, out, err = self.runner.run([self.docker, "ps", "-aq", "--filter", "label=" + SERVING_LABEL])
        if rc != 0:
            self.runner.fail("listing the serving containers failed", ["docker", "ps"], rc, out, err)
        ids = out.split()
        if not ids:
            return []
        return containers(self.runner.check([self.docker, "inspect"] + ids, "docker inspect"))

    def env_value(self, name, variable):
        """The value of variable in container name's environment ("" when it has none)."""
        record = json.loads(self.runner.check([self.docker, "inspect", name], "docker inspect %s" % name))[0]
        prefix = variable + "="
        return next((item[len(prefix):] for item in (record.get("Config") or {}).get("Env") or []
                     if item.startswith(prefix)), "")

    def systemctl(self, *args):
        return self.runner.run(["systemctl"] + list(args))

    def stop_unit(self, name):
        # docker's stop first, with this run's grace: the unit then finds its container stopped and ends at once
        self.runner.run([self.docker, "stop", "--time", str(self.module.params["stop_timeout"]), name])
        self.systemctl("disable", "--now", unit(name))
        self.systemctl("reset-failed", unit(name))  # a unit whose container stopped leaves no failed state behind

    def start_unit(self, name, boot):
        argv = ["systemctl", "enable", "--now", unit(name)] if boot else ["systemctl", "start", unit(name)]
        self.runner.check(argv, "starting %s" % unit(name), "systemctl status %s; docker logs %s" % (unit(name), name))

    def remove(self, name):
        self.stop_unit(name)
        self.runner.check([self.docker, "rm", "-f", name], "removing container %s" % name)
        env_file = os.path.join(ENV_DIR, "%s.env" % name)
        if os.path.exists(env_file):
            os.remove(env_file)


def check_inputs(module):
    params = module.params
    problems = []
    if params["state"] == "started" or (params["state"] == "absent" and params["which"] == "rank"):
        if not isinstance(params["model"], str):
            module.fail_json(msg="model is required for state=%s" % params["state"])
        problems += _validate.problems([("model", params["model"], "word")])
        if not 0 <= params["rank"] <= 63:
            problems.append("rank %r is not allowed: must be an integer 0..63" % params["rank"])
    problems += _validate.problems([("stop_timeout", params["stop_timeout"], "grace_seconds")])
    if params["state"] == "started":
        try:
            _catalog.revalidated(params["model"], params["entry"])
        except _catalog.CatalogError as exc:
            problems.append(str(exc))
        settings_problems = _engine_argv.settings_problems(params["settings"])
        problems += settings_problems
        for index, peer in enumerate(params["peers"]):
            address, sep, port = peer.rpartition(":")
            if not sep or _validate.problem("address", address, "ipv4") or _validate.problem("port", port, "port"):
                problems.append("peers[%d] %r is not allowed: must be an IPv4 address:port" % (index, peer))
        if not settings_problems and params["rank"] >= _engine_argv.rank_count(params["settings"]):
            problems.append("rank %d is not below the run's %d ranks (settings.tp x settings.pp)"
                            % (params["rank"], _engine_argv.rank_count(params["settings"])))
        if params["api_key"]:
            if _validate.problem("api_key", params["api_key"], "api_key"):  # its message would carry the key
                problems.append("api_key is not allowed: must be %s" % _validate.PATTERNS["api_key"][1])
            if params["api_key_file"] != params["settings"].get("api_key_file"):
                problems.append("api_key_file must be settings.api_key_file, the file rank 0 reads its key from")
    if problems:
        module.fail_json(msg="serving_container inputs rejected: " + "; ".join(problems))


def key_file_owner(module):
    """The passwd entry of api_key_owner (None: the module's user)."""
    owner = module.params["api_key_owner"]
    try:
        return pwd.getpwnam(owner) if owner else None
    except KeyError:
        module.fail_json(msg="api_key_owner %r is not a user on this node" % owner)


def key_file_differs(module, key):
    path, wanted = module.params["api_key_file"], _api_key.content(key)
    if not os.path.exists(path):
        return wanted is not None
    if wanted is None:
        return True
    owner = key_file_owner(module)
    info = os.stat(path)
    with open(path) as handle:
        return (handle.read() != wanted or info.st_mode & 0o777 != 0o600
                or (owner is not None and info.st_uid != owner.pw_uid))


def write_key_file(module, key):
    """api_key_file holding key (0600, its owner's; replaced whole), or removed when there is no key."""
    path, wanted = module.params["api_key_file"], _api_key.content(key)
    if wanted is None:
        os.remove(path)
        return
    if not os.path.isdir(os.path.dirname(path)):
        module.fail_json(msg="%s does not exist: the model_serving role makes the state directory before it starts "
                             "rank 0" % os.path.dirname(path))
    owner = key_file_owner(module)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".api-key.")  # 0600 from the start
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(wanted)
            if owner:
                os.fchown(stream.fileno(), owner.pw_uid, owner.pw_gid)
        os.replace(temporary, path)
    except OSError as exc:
        if os.path.exists(temporary):
            os.remove(temporary)
        module.fail_json(msg="writing the API key file %s failed: %s" % (path, exc.strerror or exc))


def started(module, node):
    params = module.params
    name = _engine_argv.container_name(params["model"], params["rank"])
    config = params["settings"]["config"]
    found = [c for c in node.listing() if c["name"] == name]
    current = found[0] if found else None
    before = {"container": name, "config": current["labels"].get("dgx-spark.config") if current else None,
              "state": current["state"] if current else "absent"}
    after = {"container": name, "config": config, "state": "running"}
    if params["api_key_file"]:  # whether the file is there, never its key
        key_file_before = os.path.exists(params["api_key_file"])
        key_change = key_file_differs(module, params["api_key"])
        before["api_key_file"] = "present" if key_file_before else "absent"
        after["api_key_file"] = "present" if params["api_key"] else "absent"
    else:
        key_change = False
    enabled = node.systemctl("is-enabled", unit(name))[0] == 0
    same = current is not None and before["config"] == config and current["state"] == "running"
    if same and (enabled or not params["boot"]) and not key_change:
        module.exit_json(changed=False, container=name, diff={"before": before, "after": after})
    if module.check_mode:
        module.exit_json(changed=True, container=name, diff={"before": before, "after": after})
    if not os.path.exists(UNIT_TEMPLATE):
        module.fail_json(msg="%s is missing: the model_serving role installs it before it starts a rank"
                             % UNIT_TEMPLATE)
    if key_change:  # before docker create: the CLI reads --env-file there
        write_key_file(module, params["api_key"])
    if not same:
        if current is not None:
            node.remove(name)
        argv = _engine_argv.rank_argv(params["entry"], params["model"], params["rank"], params["settings"])
        argv = [node.docker, "create"] + argv[3:]  # `docker run -d ...`: created here, started by its unit
        rc, out, err = node.runner.run(argv)
        if rc != 0:
            node.runner.fail("creating the container of %s rank %d failed" % (params["model"], params["rank"]),
                             argv, rc, out, err)
        os.makedirs(ENV_DIR, 0o755, exist_ok=True)
        with open(os.path.join(ENV_DIR, "%s.env" % name), "w") as handle:
            handle.write("PEERS=%s\nPEERS_TIMEOUT=%d\n" % (" ".join(params["peers"]), params["peers_timeout"]))
    node.start_unit(name, params["boot"])
    module.exit_json(changed=True, container=name, diff={"before": before, "after": after})


def park_or_restore(module, node):
    parking = module.params["state"] == "parked"
    listing = node.listing()
    names = [c["name"] for c in listing if c["name"].endswith(PARKED_SUFFIX) != parking]
    taken = set(c["name"] for c in listing)
    labels = dict((c["name"], c["labels"]) for c in listing)
    if parking:
        moves = [(name, name + PARKED_SUFFIX) for name in names]
    else:
        moves = [(name, name[:-len(PARKED_SUFFIX)]) for name in names]
    diff = {"before": {"containers": sorted(c["name"] for c in listing)},
            "after": {"containers": sorted((taken - set(n for n, _new in moves)) | set(new for _old, new in moves))}}
    if not moves or module.check_mode:
        module.exit_json(changed=bool(moves), parked=[new for _old, new in moves], diff=diff)
    for old, new in moves:
        if new in taken:
            node.remove(new)  # a parked container from an earlier run, or the failed launch's own
        if parking:
            node.stop_unit(old)
        node.runner.check([node.docker, "rename", old, new], "renaming %s to %s" % (old, new))
        if not parking:
            node.start_unit(new, module.params["boot"])
    rank0 = [new for old, new in moves if not parking and module.params["api_key_file"]
             and labels[old].get("dgx-spark.rank") == "0"]
    if rank0:  # the failed launch may have written its own key: the file holds the restored rank 0's again
        key = node.env_value(rank0[0], _api_key.ENV_NAME)
        if key_file_differs(module, key):
            write_key_file(module, key)
    module.exit_json(changed=True, parked=[new for _old, new in moves], diff=diff)


def absent(module, node):
    params = module.params
    listing = node.listing()
    if params["which"] == "rank":
        wanted = _engine_argv.container_name(params["model"], params["rank"])
        names = [c["name"] for c in listing if c["name"] == wanted]
    elif params["which"] == "parked":
        names = [c["name"] for c in listing if c["name"].endswith(PARKED_SUFFIX)]
    else:
        names = [c["name"] for c in listing]
    diff = {"before": {"containers": sorted(c["name"] for c in listing)},
            "after": {"containers": sorted(set(c["name"] for c in listing) - set(names))}}
    if names and not module.check_mode:
        for name in names:
            node.remove(name)
    module.exit_json(changed=bool(names), parked=names, diff=diff)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["started", "parked", "restored", "absent"], default="started"),
            model=dict(type="str"),
            rank=dict(type="int", default=0),
            entry=dict(type="dict"),
            settings=dict(type="dict"),
            peers=dict(type="list", elements="str", default=[]),
            peers_timeout=dict(type="int", default=600),
            which=dict(type="str", choices=["rank", "parked", "all"], default="rank"),
            stop_timeout=dict(type="int", default=30),
            boot=dict(type="bool", default=True),
            docker=dict(type="str", default="docker"),
            api_key_file=dict(type="path"),
            api_key=dict(type="str", default="", no_log=True),
            api_key_owner=dict(type="str", no_log=False),  # a user name
        ),
        required_if=[("state", "started", ("model", "entry", "settings"))],
        supports_check_mode=True,
    )
    check_inputs(module)
    node = Node(module)
    {"started": started, "parked": park_or_restore, "restored": park_or_restore,
     "absent": absent}[module.params["state"]](module, node)


if __name__ == "__main__":
    main()
