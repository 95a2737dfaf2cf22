# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The options of the modules that copy into this node over the authenticated stream, alone or in a relay
    (module_utils/_relay_copy)."""

    DOCUMENTATION = r"""
options:
  listen_address:
    description:
      - Address of this node the sender connects to. Default the source address of the route to the sender (the
        fabric twin).
    type: str
  port:
    description:
      - TCP port to listen on; V(0) picks a free one.
    type: int
    default: 0
  relay_from:
    description:
      - Address of a node that receives the same thing in the same relay (O(relay_id)), the node before this one in
        the chain. What is copied comes from it, as it arrives there, instead of from O(source_host) (it is still
        compared with O(source_host)'s); when that node held it already, or finished before this copy began, it is
        read from that node's own copy.
      - When that node's copy fails, stops moving for a minute, or never begins (two minutes), the copy falls back
        to O(source_host), warns naming the node, and reports it in RV(relay).
      - For every node of a chain to copy at the same time, run the task with at least as many forks as nodes.
    type: str
  relay_to_next:
    description:
      - A next node copies from this one in the same relay (its O(relay_from) is this node) - what arrives here is
        also written to a spool in O(relay_dir) for it, as it arrives. The next node removes the spool as it opens
        it; one it has not opened when this copy ends is removed then. When this node holds the copy already, it
        says so and the next node reads this node's own.
    type: bool
    default: false
  relay_id:
    description:
      - The relay's name, the same on every node of one chain and new for each run (for example a random hex
        string). Required with O(relay_from) or O(relay_to_next).
    type: str
  relay_dir:
    description:
      - Directory for the relay's spool and its markers (a spool grows to the size of what is copied while the next
        node has not opened it); created private to the user.
    type: path
    default: /var/tmp/dgx-spark-relay
"""
