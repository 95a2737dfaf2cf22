# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugins for modules that may run long: the module runs as an async job, its progress is shown.

The module writes its progress (JSON: bytes, seconds, expected) to the file named by its `progress_file` option;
the action reads it, with the job's own status file, in one shell command that first waits on the node while the
job runs (up to WAIT seconds), and prints a line on the controller's stderr every `progress_interval` seconds
(stdout stays the callback's, JSON included).
"""

from __future__ import annotations

import json
import shlex
import time
import uuid

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

DEFAULT_INTERVAL = 10
POLL = 0.5  # the least time between two looks at the job (one shell command, no module)
WAIT = 1.0  # the longest one look waits on the node for the job to end, checking every STEP seconds
STEP = 0.05
RUNNING = '"finished": false'  # async_wrapper's record of a running job (json.dumps of its dict)
SEPARATOR = "--dgx-spark-progress--"


def amount_line(report):
    """'24 MiB of ~66 MiB (36%), 11 MiB/s' from a progress report; no percentage without an expected size."""
    done, seconds, expected = report.get("bytes") or 0, report.get("seconds") or 0, report.get("expected")
    line = "%.0f MiB" % (done / 1048576.0)
    if expected:
        line += " of ~%.0f MiB (%d%%)" % (expected / 1048576.0, min(99, 100 * done // expected))
    if seconds:
        line += ", %.0f MiB/s" % (done / 1048576.0 / seconds)
    return line


def look_command(job_file, progress_file, wait):
    """One shell command: wait (up to wait seconds) while the job's record says it runs, then print the record and
    the progress file. The job's end is seen within STEP seconds, not a poll later; where the record reads
    otherwise or sleep takes no fraction, it does not wait and the caller's POLL paces the looks."""
    job_file, progress_file = shlex.quote(job_file), shlex.quote(progress_file)
    return ("i=0; while [ $i -lt %d ] && grep -qsF %s %s; do sleep %s || break; i=$((i + 1)); done; "
            "cat %s 2>/dev/null; echo; echo %s; cat %s 2>/dev/null || true"
            % (max(1, int(wait / STEP)), shlex.quote(RUNNING), job_file, STEP, job_file, SEPARATOR, progress_file))


def _json_or_none(text, separator):
    """The two JSON documents around separator; None for one that is missing or half written."""
    documents = []
    for part in text.split(separator, 1) + [""]:
        try:
            documents.append(json.loads(part))
        except ValueError:
            documents.append(None)
    return documents[0], documents[1]


class ProgressAction(ActionBase):
    """Compares first (the module in check mode, whose result is the answer when there is nothing to do); a
    module with work to do runs as an async job with progress lines.
    Check mode, a task that sets async itself, and progress_interval 0 run the module as any other."""

    _supports_check_mode = True
    _supports_async = True
    DEFAULT_TIMEOUT = None  # the module's default timeout (its module_utils constant)
    _probe = None  # the check-mode result, for progress_line

    def progress_line(self, host, args, report):
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        interval = args.get("progress_interval", DEFAULT_INTERVAL)
        try:
            interval = float(interval)
        except (TypeError, ValueError):
            raise AnsibleActionFail("progress_interval must be a number of seconds, not %r" % (interval,))
        if self._task.check_mode or self._task.async_val or interval <= 0:
            # a task's own async runs the module as the job it asked for (poll: 0 returns the job's id)
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            result.update(self._execute_module(module_args=args, task_vars=task_vars, wrap_async=wrap_async))
            return result
        probe = self._probe = self._module_with(args, task_vars, check_mode=True)
        if probe.get("failed") or not probe.get("changed"):  # nothing to do, or a failure before anything changed
            # a module that must leave word for others (an image relay's next node) says it in a real run
            result.update(self._execute_module(module_args=args, task_vars=task_vars)
                          if self.speaks_when_idle(args) else probe)
            return result
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        args["progress_file"] = self._connection._shell.join_path(
            async_dir, "%s-%s.json" % (self._task.action.rsplit(".", 1)[-1], uuid.uuid4().hex))
        started = self._module_with(args, task_vars,
                                    async_val=int(args.get("timeout") or self.DEFAULT_TIMEOUT) + 120)
        if started.get("failed") or "ansible_job_id" not in started:
            result.update(started)
            return result
        result.update(self._wait(started["ansible_job_id"], async_dir, args, interval, task_vars))
        return result

    def speaks_when_idle(self, args):
        """Whether the module, given args, must run for real even when its check-mode probe finds nothing to do or
        fails: the next node of a relay (relay_to_next) waits for this one's word, held (it reads this node's own
        copy) or failed."""
        return boolean(args.get("relay_to_next", False), strict=False)

    def _module_with(self, args, task_vars, check_mode=None, async_val=None):
        """The module run once with the task's check_mode or async_val set otherwise (as an async job for the
        latter), the task put back afterwards."""
        saved = self._task.check_mode, self._task.async_val
        try:
            if check_mode is not None:
                self._task.check_mode = check_mode
            if async_val is not None:
                self._task.async_val = async_val
            return self._execute_module(module_args=dict(args), task_vars=task_vars, wrap_async=bool(async_val))
        finally:
            self._task.check_mode, self._task.async_val = saved

    def _wait(self, jid, async_dir, args, interval, task_vars):
        """Until the job has finished: one cheap command (look_command) reads its status file and the progress
        file; a progress line every interval seconds. Then async_status returns the result, and one shell command
        removes the job's file (async_status's own clean-up would be another module run)."""
        host = (task_vars or {}).get("inventory_hostname", "")
        job_file = self._connection._shell.join_path(async_dir, jid)
        look = look_command(job_file, args["progress_file"], min(WAIT, interval))
        shown = time.monotonic()
        while True:
            looked = time.monotonic()
            job, progress = _json_or_none(self._low_level_execute_command(look).get("stdout") or "", SEPARATOR)
            if job is None or job.get("finished", True):  # the wrapper's own record says finished: false
                break
            if progress and time.monotonic() - shown >= interval:
                display.display(self.progress_line(host, args, progress), stderr=True)
                shown = time.monotonic()
            time.sleep(max(0.0, POLL - (time.monotonic() - looked)))
        status_args = {"jid": jid, "_async_dir": async_dir}
        status = self._execute_module(module_name="ansible.legacy.async_status", module_args=status_args,
                                      task_vars=task_vars)
        self._low_level_execute_command("rm -f %s" % shlex.quote(job_file))
        for key in ("ansible_job_id", "started", "finished", "results_file"):
            status.pop(key, None)
        return status
