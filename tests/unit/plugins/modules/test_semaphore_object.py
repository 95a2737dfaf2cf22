"""semaphore_object's comparison: what the API returns holds what was asked for (the module against the Semaphore
double is in tests/lab/test_semaphore_configure.py)."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.modules import semaphore_object


def test_what_semaphore_returns_holds_what_was_asked():
    wanted = {"name": "t", "survey_vars": [{"name": "job", "type": "", "required": True}], "inventory_id": 5}
    found = {"id": 9, "name": "t", "inventory_id": 5, "last_task": None,
             "survey_vars": [{"name": "job", "type": "", "required": True, "values": None, "description": ""}]}
    assert semaphore_object.same(wanted, found)
    assert not semaphore_object.same(dict(wanted, inventory_id=6), found)
    assert not semaphore_object.same(dict(wanted, survey_vars=[]), found)
    assert semaphore_object.same({"env": ""}, {"env": None}) and not semaphore_object.same({"a": 1}, {"a": "1"})
