# -*- coding: utf-8 -*-
# Copyright: (c) 2026, dgx_spark.cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one validation vocabulary: what a value of each kind must look like before it may reach a host.

Each kind comes with the rule a rejection states, so modules, filters and the roles' YAML (through the test plugin
``dgx_spark.cluster.valid`` and the filter ``dgx_spark.cluster.validation_problems``) word it the same way.
"""

from __future__ import annotations

import ipaddress
import re

# Characters a value may have on a command line: no spaces, quotes, $, ;, |, &, backslash or globs.
SAFE_VALUE = r"[A-Za-z0-9_.,:/=+@%-]"
SAFE_RULE = "letters, digits and '_.,:/=+@%-'"
IMAGE = (r"[a-z0-9][a-z0-9._-]*(:[0-9]{1,5})?(/[a-z0-9][a-z0-9._-]*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
         r"(@sha256:[a-f0-9]{64})?")

# kind: (regular expression, the rule a rejection states)
PATTERNS = {
    "host": (r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$", "an IP address or host name"),
    "user": (r"^[a-z_][a-z0-9_-]{0,31}$", "a user name"),
    "path": (r"^/(?!.*/\.\.(/|$))[A-Za-z0-9._/@+-]{0,1023}$",
             "an absolute path of letters, digits and '._/@+-', without '..'"),
    "relative_path": (r"^(?!/)(?!(.*/)?\.\.(/|$))[A-Za-z0-9._/@+-]{1,1023}$",
                      "a relative path of letters, digits and '._/@+-', without '..' (a file inside a project)"),
    "command": (r"^[A-Za-z0-9_./-]{1,255}$", "a command name or absolute path"),
    "command_name": (r"^[A-Za-z0-9._+-]{1,255}$", "a command name (letters, digits and '._+-')"),
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
    # IFNAMSIZ is 16 with the NUL, as ip(8) accepts
    "netdev": (r"^(?!\.{1,2}$)[A-Za-z0-9][A-Za-z0-9_.:-]{0,14}$",
               "a network interface name (at most 15 letters, digits and '_.:-')"),
    "rdma_device": (r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", "an RDMA device name (letters, digits and '_.:-')"),
    "env_name": (r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
    "env_value": ("^%s{0,256}$" % SAFE_VALUE, SAFE_RULE + " (no spaces or quotes)"),
    "byte_size": (r"^[0-9]{1,12}[KMG]?$", "a byte count with an optional K, M or G suffix, such as 4G"),
    "registry": (r"^[a-z0-9][a-z0-9.-]*(:[0-9]{1,5})?$", "a registry host[:port]"),
    "version": (r"^v?[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,6}$", "a release version such as 1.31.14 or v25.10.1"),
    "package_version": (r"^[0-9][A-Za-z0-9.+~-]{0,63}$", "a Debian package version such as 1.31.14-1.1"),
    "dns_subdomain": (r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                      "a lowercase RFC 1123 name (letters, digits, '-' and '.'), as Kubernetes names nodes"),
    "sha256": (r"^[a-f0-9]{64}$", "a SHA-256 digest of 64 lowercase hex digits"),
    "apt_uri": (r"^(https?|file)://[A-Za-z0-9._~:/@%+-]+/$", "an http(s) or file URI of a package repository, "
                "ending in /"),
    "duration": (r"^[0-9]{1,6}[smh]$", "a duration such as 90s, 15m or 2h"),
    "file_mode": (r"^[0-7]{3,4}$", "an octal file mode of 3 or 4 digits, such as 0644"),
    "mac": (r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$", "a MAC address such as 80:fa:5b:80:dd:69"),
    "train_run": (r"^[a-z0-9][a-z0-9._-]{0,63}(-[0-9]{8}t[0-9]{6})?$",
                  "a training run id (<job>-<YYYYMMDD>t<HHMMSS>, as train.yml names a run) or a job key (its latest run)"),
    "name_prefix": (r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,40}$",
                    "1 to 41 letters, digits, spaces and '._-' (the prefix of the objects' names)"),
    "pixi_env": (r"^[a-z0-9][a-z0-9_-]{0,63}$", "a pixi environment name (lowercase letters, digits, '_-')"),
    "lock_token": (r"^[A-Za-z0-9_-]{16,128}$", "16 to 128 letters, digits, '_' or '-'"),
    "relay_id": (r"^[A-Za-z0-9_-]{8,64}$", "8 to 64 letters, digits, '_' or '-'"),
    "api_key": (r"^[A-Za-z0-9._~+/=-]{16,256}$", "16 to 256 letters, digits and '._~+/=-' (for example the output "
                "of `openssl rand -hex 32`)"),
    # docker run's --gpus, --shm-size, --ulimit and --device as the serving role passes them
    "gpus": (r"^(|all|[0-9]{1,2}|device=[0-9]{1,2}(,[0-9]{1,2})*)$", "'', all, a count or device=N[,N...]"),
    "shm_size": (r"^([0-9]{1,6}[bkmg]?)?$", "a size such as 16g (empty for the default)"),
    "ulimit": (r"^[a-z]{2,12}=-?[0-9]{1,12}(:-?[0-9]{1,12})?$", "NAME=soft[:hard], such as memlock=-1"),
    "device": (r"^/dev(?!.*/\.\.?(/|$))/[A-Za-z0-9._/-]{1,255}$", "a device path under /dev, without '.' or '..'"),
}


def _ipv4(value):
    ipaddress.IPv4Address(value)
    return value.count(".") == 3


def _ipv4_interface(value):
    """A host address with its prefix length, as an interface carries it (not the network or broadcast address)."""
    if "/" not in value:
        return False
    iface = ipaddress.IPv4Interface(value)
    return iface.network.prefixlen >= 31 or iface.ip not in (iface.network.network_address,
                                                             iface.network.broadcast_address)


def _ipv4_network(value):
    return "/" in value and bool(ipaddress.IPv4Network(value, strict=True))


def ipv4_range(value):
    """'A-B' (first and last address) or a CIDR -> (first, last) IPv4Address; ValueError when it is neither."""
    if "/" in value:
        network = ipaddress.IPv4Network(value, strict=True)
        return network[0], network[-1]
    first, sep, last = value.partition("-")
    if not sep or not _ipv4(first) or not _ipv4(last):
        raise ValueError(value)
    first, last = ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)
    if first > last:
        raise ValueError(value)
    return first, last


# Directories a model or a cache must never be (copied over a peer's, mounted into an engine, written as root):
# the system's own and the home directories themselves; nothing below the first group either.
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr")
SYSTEM_DIRS = SYSTEM_TREES + ("/", "/home", "/media", "/mnt", "/opt", "/root", "/snap", "/srv", "/tmp", "/var",
                              "/var/lib", "/var/tmp", "/usr/local")
PLAIN_PATH = r"^/[A-Za-z0-9._/@+-]{0,1023}$"


def _data_dir(value):
    """A plain absolute path (no '//', '.', '..'; a trailing '/' aside) that is not a system directory, a home
    directory itself, or below one of the system trees."""
    path = value.rstrip("/") or "/"
    if not re.match(PLAIN_PATH, value) or (path != "/" and {"", ".", ".."} & set(path.split("/")[1:])):
        return False
    home = re.match(r"^/home/[^/]+$", path) is not None
    return path not in SYSTEM_DIRS and not home and not any(path.startswith(tree + "/") for tree in SYSTEM_TREES)


def _model_dir(value):
    """A data directory none of whose parts is hidden ('~/.ssh', '~/.config' are not models)."""
    return _data_dir(value) and not any(part.startswith(".") for part in value.rstrip("/").split("/")[1:])


def _secret_url(value):
    """An https URL, or plain http to this node's own loopback: where a token may be sent."""
    match = re.match(PATTERNS["url"][0], value) and re.match(r"^(https?)://(?:[^/@]*@)?(\[[^]]*\]|[^/:?#]*)", value)
    if not match:
        return False
    host = match.group(2).strip("[]").lower()
    return match.group(1) == "https" or host in ("localhost", "::1") or (_ipv4(host) and host.startswith("127."))


# kind: (check of a string value, the rule a rejection states); a check may raise ValueError for "no"
STRING_CHECKS = {
    "secret_url": (_secret_url, "an https URL, or http to this node's loopback (127.0.0.1, localhost): a token is "
                                "never sent in clear over a network"),
    "data_dir": (_data_dir, "a plain absolute path (no '//', '.' or '..' parts) below the system's and the users' "
                            "own directories, not one of them (not /, /etc, /home, /home/<user>, /root, /var/lib, "
                            "nor anything under /etc, /usr, /proc, /sys, /dev, /boot, /run, /bin, /sbin, /lib)"),
    "model_dir": (_model_dir, "a model directory: a plain absolute path without hidden parts below the system's "
                              "and the users' own directories, not one of them (such as /home/nvidia/models/x or "
                              "/var/lib/models/x; not /home/nvidia, ~/.ssh or anything under /etc or /usr)"),
    "ipv4": (_ipv4, "an IPv4 address such as 10.10.10.1"),
    "ipv4_interface": (_ipv4_interface, "an IPv4 host address with its prefix length, such as 10.10.10.1/24"),
    "ipv4_host": (lambda value: _ipv4(value.split("/", 1)[0]) and ("/" not in value or _ipv4_interface(value)),
                  "an IPv4 address, with or without its prefix length"),
    "ipv4_network": (_ipv4_network, "an IPv4 network in CIDR notation, such as 192.168.0.0/16"),
    "ipv4_range": (ipv4_range, "an IPv4 range FIRST-LAST (first <= last) or a CIDR, such as "
                               "192.168.86.200-192.168.86.220"),
}
# kind: (low, high) for integers (booleans are not integers here)
INT_RANGES = {
    "port": (1, 65535),
    "unprivileged_port": (1024, 65535),
    "mtu": (1280, 9216),
    "seconds": (1, 86400),
    "grace_seconds": (0, 3600),
    "count": (1, 1000000),
}


# kind: (kind of every key, kind of every value) for mappings
MAPPINGS = {
    "env": ("env_name", "env_value"),
}


def kinds():
    """Every kind a value can be checked against."""
    return sorted(set(PATTERNS) | set(STRING_CHECKS) | set(INT_RANGES) | set(MAPPINGS))


def rule(kind):
    """What a value of this kind must be, in words."""
    if kind in INT_RANGES:
        return "an integer %d..%d" % INT_RANGES[kind]
    if kind in MAPPINGS:
        return "a mapping of %s to %s" % tuple(rule(part) for part in MAPPINGS[kind])
    return (PATTERNS.get(kind) or STRING_CHECKS[kind])[1]


def _mapping_problems(field, value, kind):
    if not isinstance(value, dict):
        return ["%s must be %s, got %r" % (field, rule(kind), value)]
    key_kind, value_kind = MAPPINGS[kind]
    found = []
    for key in value:
        found.append(problem("%s key" % field, key, key_kind)
                     or problem("%s.%s" % (field, key), value[key] if isinstance(value[key], str) else str(value[key]),
                                value_kind))
    return [item for item in found if item]


def _matches(value, kind, patterns):
    if kind in patterns:
        return isinstance(value, str) and re.match(patterns[kind][0], value) is not None
    if kind in INT_RANGES:
        low, high = INT_RANGES[kind]
        number = value if isinstance(value, int) and not isinstance(value, bool) else (
            int(value) if isinstance(value, str) and value.isdigit() else None)
        return number is not None and low <= number <= high
    check = STRING_CHECKS[kind][0]
    try:
        return isinstance(value, str) and bool(check(value))
    except ValueError:
        return False


def problem(field, value, kind, patterns=None):
    """None when value is of the kind (patterns, else the collection's vocabulary); else the message naming the
    field, the value and the rule. An unknown kind is a KeyError naming the known ones."""
    patterns = patterns or PATTERNS
    if kind not in patterns and kind not in STRING_CHECKS and kind not in INT_RANGES and kind not in MAPPINGS:
        raise KeyError("unknown kind %r (known: %s)" % (kind, ", ".join(kinds())))
    if kind in MAPPINGS:
        found = _mapping_problems(field, value, kind)
        return found[0] if found else None
    if _matches(value, kind, patterns):
        return None
    if value is None:
        return "%s is required: it must be %s" % (field, patterns[kind][1] if kind in patterns else rule(kind))
    return "%s %r is not allowed: must be %s" % (field, value, patterns[kind][1] if kind in patterns else rule(kind))


def _flag_name(flag):
    """A flag as an argparse-style parser compares it: '-' and '_' alike (vLLM's parser turns one into the other)."""
    return flag.replace("_", "-")


def reserved_flag(flag, reserved):
    """The reserved option flag would reach, or None. A parser like argparse expands a unique prefix ('--por' is
    '--port') and vLLM's reads '_' as '-': every prefix of a reserved option, in either spelling, reaches it."""
    name = _flag_name(flag)
    for option in reserved:
        wanted = _flag_name(option)
        same_kind = name.startswith("--") == wanted.startswith("--")  # '-t' abbreviates '-tp', not '--tensor...'
        if name.strip("-") and same_kind and wanted.startswith(name):
            return option
    return None


def extra_args_problem(field, args, reserved, reserved_rule):
    """None when args are `--option`, `--option=value` or a value right after an `--option`, each of safe characters
    and none reaching a reserved option (in another spelling or as a prefix, reserved_flag); else the problem,
    naming field[index] and the rule (reserved_rule says who sets a reserved option)."""
    if not isinstance(args, list):
        return "%s must be a list of strings, got %r" % (field, args)
    expect_value = False
    for index, arg in enumerate(args):
        where = "%s[%d]" % (field, index)
        if not isinstance(arg, str):
            return "%s %r is not allowed: must be a string" % (where, arg)
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            reached = reserved_flag(flag, reserved)
            spelled = "" if reached == flag else " (a parser reads %s as %s)" % (flag, reached)
            found = problem(where, arg, "arg_flag") or (
                "%s %r is not allowed: %s %s%s" % (where, arg, reached, reserved_rule, spelled) if reached else None)
            expect_value = "=" not in arg
        elif expect_value:
            found = problem(where, arg, "arg_value")
            expect_value = False
        else:
            found = "%s %r is not allowed: a value must follow an --option" % (where, arg)
        if found:
            return found
    return None


def problems(checks):
    """Every problem of (field, value, kind) checks, in order (empty when all pass). A field ending in [] holds a
    list whose every item is of the kind (named field[index]); a mapping kind (env) names each bad key or value."""
    found = []
    for field, value, kind in checks:
        if field.endswith("[]"):
            if not isinstance(value, (list, tuple)):
                found.append("%s must be a list, got %r" % (field[:-2], value))
                continue
            found.extend(problem("%s[%d]" % (field[:-2], index), item, kind) for index, item in enumerate(value))
        elif kind in MAPPINGS:
            found.extend(_mapping_problems(field, value, kind))
        else:
            found.append(problem(field, value, kind))
    return [item for item in found if item]


def host_var_checks(hosts, hostvars, name, kind):
    """(field, value, kind) checks of inventory variable name on each host: "<name> of <host>"."""
    return [("%s of %s" % (name, host), (hostvars.get(host) or {}).get(name), kind) for host in hosts]


def first_problem(checks):
    """The first problem of (field, value, kind) checks, or None when all pass."""
    found = problems(checks)
    return found[0] if found else None


# Options for every ssh the modules run between the Sparks: never prompt, give up on a dead peer quickly.
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
