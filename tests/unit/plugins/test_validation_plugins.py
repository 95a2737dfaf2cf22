"""The validation vocabulary as Ansible sees it: the test `valid`, the filters, the working_dir lookup."""

from __future__ import annotations

import os

import pytest

from ansible.errors import AnsibleFilterError, AnsibleLookupError
from ansible_collections.dgx_spark.cluster.plugins.filter.validation import FilterModule
from ansible_collections.dgx_spark.cluster.plugins.lookup.working_dir import LookupModule
from ansible_collections.dgx_spark.cluster.plugins.test.valid import TestModule as ValidTestPlugin

VALID = ValidTestPlugin().tests()["valid"]
FILTERS = FilterModule().filters()


def test_the_test_and_the_modules_share_one_rule():
    assert VALID("enp1s0f1np1", "netdev") and not VALID("enp1s0f1np1;", "netdev")
    assert VALID(9000, "mtu") and not VALID(90000, "mtu")
    with pytest.raises(AnsibleFilterError, match="unknown kind"):
        VALID("x", "nic")


def test_validation_problems_wants_triples_and_reports_in_order():
    assert FILTERS["validation_problems"]([["a", "10.10.10.1/24", "ipv4_interface"], ["b", "x", "ipv4"]]) == [
        "b 'x' is not allowed: must be an IPv4 address such as 10.10.10.1"]
    with pytest.raises(AnsibleFilterError, match="list of \\[field, value, kind\\]"):
        FILTERS["validation_problems"]([["a", "b"]])
    assert FILTERS["host_var_checks"](["h"], {"h": {"x": 1}}, "x", "mtu") == [["x of h", 1, "mtu"]]


def test_working_dir_is_where_the_run_started_not_the_playbook_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lookup = LookupModule()
    assert lookup.run([]) == [str(tmp_path)]
    assert lookup.run(["reports"]) == [os.path.join(str(tmp_path), "reports")]
    for bad in ("/etc", "../up", "a/../../b"):
        with pytest.raises(AnsibleLookupError, match="relative paths without"):
            lookup.run([bad])
