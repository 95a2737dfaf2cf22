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
