"""The shared input rules: extra arguments for a command line."""

from __future__ import annotations

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _validate


@pytest.mark.parametrize("args, message", [
    (["--use_paged_context_fmha", "enable", "--multiple_profiles=enable"], None),
    (["--workers", "4"], "extra[0] '--workers' is not allowed: --workers is set elsewhere"),
    (["--workers=4"], "extra[0] '--workers=4' is not allowed: --workers is set elsewhere"),
    (["stray"], "extra[0] 'stray' is not allowed: a value must follow an --option"),
    (["--opt", "a b"], "extra[1] 'a b' is not allowed"),
    (["--opt;reboot"], "extra[0] '--opt;reboot' is not allowed"),
    ("--opt", "extra must be a list of strings"),
])
def test_extra_args_pair_options_and_values_and_keep_reserved_options_out(args, message):
    found = _validate.extra_args_problem("extra", args, ("--workers",), "is set elsewhere")
    assert found == message if message is None else message in found


VLLM_RESERVED = ("--port", "--tensor-parallel-size", "-tp", "--api-key", "--served-model-name")


@pytest.mark.parametrize("args, reached", [
    (["--tensor_parallel_size=4"], "--tensor-parallel-size"),  # vLLM reads '_' as '-'
    (["--api_key", "x"], "--api-key"),
    (["--por=9000"], "--port"),  # argparse expands a unique prefix
    (["--served", "other"], "--served-model-name"),
    (["--tensor", "4"], "--tensor-parallel-size"),
    (["--enforce-eager", "--max-num-seqs", "4", "--portal=x"], None),  # not a prefix of a reserved option
])
def test_reserved_options_are_caught_in_every_spelling_a_parser_accepts(args, reached):
    found = _validate.extra_args_problem("extra_args", args, VLLM_RESERVED, "is set by the role")
    if reached is None:
        assert found is None
    else:
        assert "is not allowed: %s is set by the role" % reached in found
        assert args[0].split("=")[0] == reached or "(a parser reads %s as %s)" % (args[0].split("=")[0], reached) \
            in found


def test_a_prefix_of_a_trt_build_option_is_refused():
    assert _validate.reserved_flag("--output", ("--checkpoint_dir", "--output_dir")) == "--output_dir"
    assert _validate.reserved_flag("--output-dir", ("--output_dir",)) == "--output_dir"
    assert _validate.reserved_flag("--use_fp8", ("--output_dir",)) is None


@pytest.mark.parametrize("kind, good, bad", [
    ("netdev", ["enp1s0f1np1", "enP2p1s0f1np1", "bond0.100"], ["", ".", "..", "eth 0", "a" * 16, "eth;0"]),
    ("rdma_device", ["rocep1s0f1", "mlx5_0"], ["", "roce p1", "x;y"]),
    ("ipv4_interface", ["10.10.10.1/24", "10.0.0.0/31"], ["10.10.10.1", "10.10.10.0/24", "10.10.10.255/24",
                                                          "300.1.1.1/24", "10.10.10.1/33", None]),
    ("ipv4_host", ["10.10.10.1", "10.10.10.1/24"], ["10.10.10", "10.10.10.0/24", "host"]),
    ("ipv4_network", ["192.168.0.0/16", "10.96.0.0/12"], ["192.168.0.1/16", "10.96.0.0", "10.96.0.0/40"]),
    ("byte_size", ["1G", "512M", "4096"], ["1T", "1 G", "", "-1G"]),
    ("unprivileged_port", [1024, 65535, "8000"], [80, 65536, True, "80", "http", None]),
    ("mtu", [9000, 1280], [1279, 9217]),
    ("lock_token", ["a" * 16, "Ab_-" * 32], ["a" * 15, "a" * 129, "x" * 16 + ";", None]),
])
def test_every_kind_accepts_its_values_and_names_the_rule_for_others(kind, good, bad):
    for value in good:
        assert _validate.problem("f", value, kind) is None, value
    for value in bad:
        expected = ("f is required: it must be %s" if value is None else "f %r is not allowed: must be %s" % (value, "%s"))
        assert _validate.problem("f", value, kind) == expected % _validate.rule(kind)


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown kind 'nic' .*netdev"):
        _validate.problem("f", "x", "nic")


def test_problems_name_each_list_item_and_each_bad_environment_entry():
    found = _validate.problems([
        ("interfaces[]", ["enp1s0f1np1", "eth 0"], "netdev"),
        ("env", {"NCCL_DEBUG": "WARN", "BAD NAME": "x", "OK": "a b", "N": 3}, "env"),
        ("devices[]", "not-a-list", "rdma_device"),
        ("mtu", 9000, "mtu"),
    ])
    assert found == [
        "interfaces[1] 'eth 0' is not allowed: must be a network interface name (at most 15 letters, digits and "
        "'_.:-')",
        "env key 'BAD NAME' is not allowed: must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
        "env.OK 'a b' is not allowed: must be letters, digits and '_.,:/=+@%-' (no spaces or quotes)",
        "devices must be a list, got 'not-a-list'",
    ]
    assert _validate.first_problem([("env", ["x"], "env")]).startswith("env must be a mapping of ")


def test_host_var_checks_name_each_host_and_say_a_missing_variable_is_required():
    checks = _validate.host_var_checks(["a", "b"], {"a": {"fabric_address": "10.10.10.1/24"}, "b": {}},
                                       "fabric_address", "ipv4_interface")
    assert _validate.problems(checks) == [
        "fabric_address of b is required: it must be an IPv4 host address with its prefix length, such as "
        "10.10.10.1/24"]
