# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A copy into this node over the authenticated stream (_image_stream), alone or in a relay: what p2p_image_copy
(an image into docker) and weight_sync's relay (files into a directory) share.

The module runs on the destination. It starts the receiver here, which starts the sender over SSH on the source or,
in a relay, on the node before (relay_from), whose sender reads what arrives there as it arrives. A relay that fails
there falls back to the source with a warning; this node's own failure leaves word for the node after it.
"""

from __future__ import annotations

import json
import platform

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _image_stream, _leftover, _validate
from ansible_collections.dgx_spark.cluster.plugins.module_utils._runner import CommandRunner
from ansible_collections.dgx_spark.cluster.plugins.module_utils._ssh_share import shared_connection

RELAY_OPTIONS = dict(
    listen_address=dict(type="str"),
    port=dict(type="int", default=0),
    relay_from=dict(type="str"),
    relay_to_next=dict(type="bool", default=False),
    relay_id=dict(type="str"),
    relay_dir=dict(type="path", default="/var/tmp/dgx-spark-relay"),
)


def first_error_line(err, rc):
    return (err.strip() or "rc %s" % rc).splitlines()[-1]


class RelayedCopy:
    """The stream's receiving end: subclasses say what is moved (sender parameters), where it goes (the loader) and
    how to undo a failed attempt."""

    leftover_name = None  # one copy of its kind into a node at a time (_leftover)

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.runner = CommandRunner(module)

    def relay_problem(self):
        """What is wrong with the relay options and the listener's, or None."""
        params = self.params
        found = _validate.first_problem([
            ("listen_address", params["listen_address"] or "0.0.0.0", "host"),
            ("relay_from", params["relay_from"] or "0.0.0.0", "host"),
            ("relay_id", params["relay_id"] or "unused-relay", "relay_id"), ("relay_dir", params["relay_dir"], "path")])
        if not found and (params["relay_from"] or params["relay_to_next"]) and not params["relay_id"]:
            found = "relay_id is required with relay_from or relay_to_next (the same on every node of the relay)"
        if not found and not 0 <= params["port"] <= 65535:
            found = "port must be 0..65535"
        return found

    def ssh_argv(self, host, *remote):
        """SSH to host (the source, or the node before in a relay) running remote (fixed words and validated values
        only)."""
        target = host if not self.ssh_user() else "%s@%s" % (self.ssh_user(), host)
        return ([self.runner.which("ssh", "install openssh-client")] + _validate.SSH_OPTIONS
                + shared_connection() + [target] + list(remote))

    def ssh_user(self):
        return self.params["source_user"]

    def listen_address(self, sender_host):
        if self.params["listen_address"]:
            return self.params["listen_address"]
        out = self.runner.check([self.runner.which("ip", "install iproute2"), "-j", "route", "get", sender_host],
                                "finding the route to %s" % sender_host)
        return json.loads(out)[0]["prefsrc"]

    def relay_paths(self):
        return _image_stream.relay_paths(self.params["relay_dir"], self.params["relay_id"])

    def receive(self, sender, load, relay_from=None, spool=False, expected=None, become=False):
        """Run the receiver (which starts the sender, with parameters sender, on the source, or on relay_from reading
        what arrives there; with spool, what arrives here is kept for the next node) feeding load ({argv, name,
        image}); (rc, stdout, stderr)."""
        params = self.params
        python = self.runner.which("python3", "install python3")
        source = _image_stream.own_source()
        sender_host = relay_from or params["source_host"]
        relay = ({"dir": params["relay_dir"], "id": params["relay_id"], "wait": _image_stream.RELAY_WAIT,
                  "stall": _image_stream.RELAY_STALL} if relay_from else None)
        receiver = _image_stream.program(source, "receiver_main", {
            "listen_address": self.listen_address(sender_host), "port": params["port"], "timeout": params["timeout"],
            "load": load, "source": source,
            "ssh_argv": self.ssh_argv(sender_host, *(["sudo", "-n"] if become else []) + ["python3", "-"]),
            "spool": {"dir": params["relay_dir"], "id": params["relay_id"]} if spool else None,
            "progress_file": params["progress_file"], "expected": expected,
            "sender": dict(sender, connect_timeout=30, io_timeout=300, relay=relay)})
        # the receiver listens, starts the sender over SSH, and feeds the loader; its program (with the token it
        # makes) travels on stdin
        return self.runner.run([python, "-"], data=receiver, binary_data=True, timeout=params["timeout"] + 60)

    def relayed(self, attempt, undo):
        """attempt(relay_from, spool) -> (rc, out, err): from the node before when there is one, else from the source
        (spool: kept for the next node). A relay that fails there is undone (undo()) and attempted again from the
        source, alone, with a warning. (rc, out, err, relay)."""
        params = self.params
        rc, out, err = attempt(params["relay_from"], params["relay_to_next"])
        relay = {"from": params["relay_from"], "fell_back": None, "to_next": params["relay_to_next"]}
        if rc != 0 and params["relay_from"]:
            # this node's spool (if any) says failed, so the next node comes from the source too
            relay["fell_back"] = first_error_line(err, rc)
            relay["to_next"] = False
            undo()
            self.module.warn("the relay from %s failed (%s); copying %s from the source %s"
                             % (params["relay_from"], relay["fell_back"], self.what(), params["source_host"]))
            rc, out, err = attempt(None, False)
        return rc, out, err, relay

    def what(self):
        """What is copied, in words (for messages)."""
        raise NotImplementedError

    def hand_over(self, relay):
        if relay["to_next"]:
            _image_stream.relay_handover(self.relay_paths())

    def held_here(self, result):
        """This node holds what is copied: with a next node, it says so (the next node reads this node's own)."""
        if self.params["relay_to_next"] and not self.module.check_mode:
            try:
                _image_stream.relay_directory(self.params["relay_dir"])
                _image_stream.relay_mark(self.relay_paths(), "held")
            except (OSError, _image_stream.StreamError) as exc:
                self.module.fail_json(msg="%s is here, but the relay's marker for the next node could not be written "
                                          "in %s: %s" % (self.what(), self.params["relay_dir"], exc), **result)
        return result

    def execute(self, work):
        """work() -> result, with an interrupted earlier copy into this node ended first (its listener, loader and
        ssh), long-ended relays swept, and, should work fail, word left for the next node."""
        ended = None if self.module.check_mode else _leftover.claim(self.leftover_name)
        if self.params["relay_id"] and not self.module.check_mode:
            _image_stream.relay_sweep(self.params["relay_dir"])
        result = None
        try:
            result = work()
        finally:
            if not self.module.check_mode:
                _leftover.release(self.leftover_name)
                if result is None and self.params["relay_to_next"]:
                    self.relay_failed_here()
        if ended:
            result["ended_leftover"] = ended
        return result

    def relay_failed_here(self):
        """This node's copy failed: the next node must not wait for it (relay_failed_here)."""
        try:
            _image_stream.relay_directory(self.params["relay_dir"])
            _image_stream.relay_failed_here(self.relay_paths(), "the copy on %s failed" % platform.node())
        except (OSError, _image_stream.StreamError):
            pass  # the next node gives up on this one after its wait
