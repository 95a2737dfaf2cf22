# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run argv lists (never shell strings) and fail with a message a user can act on."""

from __future__ import annotations

TAIL_LINES = 20
TIMED_OUT_RC = 124  # coreutils timeout(1)


def tail(text, lines=TAIL_LINES):
    """The last lines of a tool's output, for error messages."""
    return "\n".join((text or "").rstrip().splitlines()[-lines:])


class CommandRunner:
    """Wraps AnsibleModule.run_command for argv lists with consistent failure reports."""

    def __init__(self, module):
        self.module = module

    def which(self, name, hint):
        """Absolute path of executable `name`, or fail naming it and what to install."""
        path = self.module.get_bin_path(name)
        if not path:
            self.module.fail_json(msg="%s not found on the target's PATH: %s" % (name, hint), rc=None,
                                  stdout="", stderr="")
        return path

    def run(self, argv, timeout=None, **kwargs):
        """(rc, stdout, stderr) of argv; kwargs go to run_command (data=, environ_update=, cwd=).

        With timeout (seconds) the command runs under coreutils timeout(1), killed 5 s after a TERM
        it ignores; rc is then TIMED_OUT_RC.
        """
        if isinstance(argv, str):
            raise TypeError("argv must be a list, not a shell string")
        argv = [str(arg) for arg in argv]
        if timeout:
            timeout_bin = self.module.get_bin_path("timeout")
            if timeout_bin:
                argv = [timeout_bin, "--kill-after=5", str(int(timeout))] + argv
        return self.module.run_command(argv, **kwargs)

    def fail(self, msg, argv, rc, stdout, stderr, **extra):
        """fail_json with the command, rc, output and the tail of stderr in the message."""
        detail = tail(stderr) or tail(stdout)
        if detail:
            msg = "%s\n%s" % (msg, detail)
        self.module.fail_json(msg=msg, cmd=list(argv), rc=rc, stdout=stdout, stderr=stderr, **extra)

    def check(self, argv, what, hint="", **kwargs):
        """Run argv and fail unless it exits 0; returns stdout."""
        rc, stdout, stderr = self.run(argv, **kwargs)
        if rc != 0:
            msg = "%s failed (rc=%s)" % (what, rc)
            if hint:
                msg += ": " + hint
            self.fail(msg, argv, rc, stdout, stderr)
        return stdout
