# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""serving_lock with keep: after the lock is acquired on the head, a keeper process on the controller renews it
while this ansible-playbook run lives (plugin_utils/_lock_keeper)."""

from __future__ import annotations

import inspect
import os
import shlex
import subprocess
import sys

from ansible.plugins.action import ActionBase
from ansible_collections.dgx_spark.cluster.plugins.module_utils import _lock_file
from ansible_collections.dgx_spark.cluster.plugins.plugin_utils import _lock_keeper


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        result.update(self._execute_module(module_name="dgx_spark.cluster.serving_lock", module_args=args,
                                           task_vars=task_vars))
        if args.get("keep") and args.get("state", "acquired") == "acquired" and not result.get("failed") \
                and not self._task.check_mode:
            result["keeper"] = self._start_keeper(args, task_vars or {})
        return result

    def _remote_python(self, task_vars):
        """How to run python on the head as this task does (become with sudo -n when the task becomes)."""
        python = task_vars.get("ansible_python_interpreter") or (task_vars.get("ansible_facts") or {}).get(
            "discovered_interpreter_python") or "/usr/bin/python3"
        command = [python, "-"]
        if self._task.become:
            command = ["sudo", "-n", "--"] + command
        if self._connection.transport in ("local", "ansible.builtin.local"):
            return command
        ssh = [self._connection.get_option("ssh_executable") or "ssh", "-o", "BatchMode=yes",
               "-o", "ConnectTimeout=10"]
        for option, flag in (("port", "-p"), ("private_key_file", "-i"), ("remote_user", "-l")):
            value = self._connection.get_option(option)
            if value:
                ssh += [flag, os.path.expanduser(str(value))]
        for option in ("ssh_common_args", "ssh_extra_args"):
            ssh += shlex.split(self._connection.get_option(option) or "")
        return ssh + [self._connection.get_option("host"), shlex.join(command)]

    def _start_keeper(self, args, task_vars):
        ttl = int(args.get("ttl", 300))
        renewal = "%s\nrenew(%r, %r, %d)\n" % (inspect.getsource(_lock_file), args.get(
            "path", "/var/lib/dgx-spark/serving.lock"), args["token"], ttl)
        text = _lock_keeper.program({"argv": self._remote_python(task_vars), "program": renewal, "ttl": ttl,
                                     "run_pid": os.getppid()})  # this worker's parent is the ansible-playbook run
        keeper = subprocess.Popen([sys.executable, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        keeper.stdin.write(text.encode())
        keeper.stdin.close()
        return keeper.pid
