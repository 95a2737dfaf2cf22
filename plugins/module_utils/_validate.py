# -*- coding: utf-8 -*-
# Copyright: dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a user string must look like before it may reach a command line, and one way to check it.

Each pattern comes with the rule a rejection states, so every module and filter words it the same way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Characters a value may have on a command line: no spaces, quotes, $, ;, |, &, backslash or globs.
SAFE_VALUE = r"[A-Za-z0-9_.,:/=+@%-]"
SAFE_RULE = "letters, digits and '_.,:/=+@%-'"
IMAGE = (r"[a-z0-9][a-z0-9._-]*(:[0-9]{1,5})?(/[a-z0-9][a-z0-9._-]*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
         r"(@sha256:[a-f0-9]{64})?")

PATTERNS = {
    "host": (r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$", "an IP address or host name"),
    "user": (r"^[a-z_][a-z0-9_-]{0,31}$", "a user name"),
    "path": (r"^/(?!.*/\.\.(/|$))[A-Za-z0-9._/@+-]{0,1023}$",
             "an absolute path of letters, digits and '._/@+-', without '..'"),
    "command": (r"^[A-Za-z0-9_./-]{1,255}$", "a command name or absolute path"),
    "container": (r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", "a container name (letters, digits, '_.-')"),
    "word": (r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", "a word of letters, digits and '_.-'"),
    "arg_flag": (r"^--[a-z0-9][a-z0-9_-]{0,63}(=%s{1,256})?$" % SAFE_VALUE,
                 "--option or --option=value with value of " + SAFE_RULE),
    "arg_value": ("^%s{1,256}$" % SAFE_VALUE, SAFE_RULE),
    "url": (r"^https?://[A-Za-z0-9._~:/?#@!$&()*+,;=%-]+$", "an http(s) URL"),
    "image": ("^" + IMAGE + "$", "[registry[:port]/]name[:tag][@sha256:digest], lowercase name"),
    "image_or_id": ("^" + IMAGE + "$|^sha256:[a-f0-9]{64}$",
                    "[registry[:port]/]name[:tag][@sha256:digest] or sha256:<image id>"),
    "hf_repo": (r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$",
                "ORG/NAME of letters, digits and '._-' (a Hugging Face repository id)"),
}

# Options for every ssh the modules run between the Sparks: never prompt, give up on a dead peer quickly.
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]


def problem(field, value, kind, patterns=None):
    """None when value matches (patterns or PATTERNS)[kind]; else the message naming the field, the value and the
    rule."""
    pattern, rule = (patterns or PATTERNS)[kind]
    if isinstance(value, str) and re.match(pattern, value):
        return None
    return "%s %r is not allowed: must be %s" % (field, value, rule)


def extra_args_problem(field, args, reserved, reserved_rule):
    """None when args are `--option`, `--option=value` or a value right after an `--option`, each of safe characters
    and none in reserved; else the problem, naming field[index] and the rule (reserved_rule says who sets a reserved
    option)."""
    if not isinstance(args, list):
        return "%s must be a list of strings, got %r" % (field, args)
    expect_value = False
    for index, arg in enumerate(args):
        where = "%s[%d]" % (field, index)
        if not isinstance(arg, str):
            return "%s %r is not allowed: must be a string" % (where, arg)
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            found = problem(where, arg, "arg_flag") or (
                "%s %r is not allowed: %s %s" % (where, arg, flag, reserved_rule) if flag in reserved else None)
            expect_value = "=" not in arg
        elif expect_value:
            found = problem(where, arg, "arg_value")
            expect_value = False
        else:
            found = "%s %r is not allowed: a value must follow an --option" % (where, arg)
        if found:
            return found
    return None


def first_problem(checks):
    """The first problem of (field, value, kind) checks, or None when all pass."""
    for field, value, kind in checks:
        found = problem(field, value, kind)
        if found:
            return found
    return None
