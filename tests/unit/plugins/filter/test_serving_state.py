"""What serves and whether it is healthy, from the serving containers' labels and a probe of rank 0."""

from __future__ import annotations

import json

from ansible_collections.dgx_spark.cluster.plugins.filter.serving import FilterModule

FILTERS = FilterModule().filters()
TP2 = {"hosts": ["spark-2959", "spark-ba63"]}
ANSWERS = {"status": 200, "completion_tokens": 8}  # serving_wait's result on rank 0


def inspected(*containers):
    """`docker inspect` JSON for (name, state, exit code, config, rank, ranks) tuples: the fields the filters read."""
    return json.dumps([{"Name": "/" + name, "State": {"Status": state, "Running": state == "running", "ExitCode": code},
                        "Config": {"Labels": {"dgx-spark.role": "serving", "dgx-spark.model": "m",
                                              "dgx-spark.config": config, "dgx-spark.rank": str(rank),
                                              "dgx-spark.ranks": str(ranks), "dgx-spark.port": "8000",
                                              "dgx-spark.served-name": "tiny"}}}
                       for name, state, code, config, rank, ranks in containers])


HEAD = inspected(("m-r0", "running", 0, "abc", 0, 2))
WORKER = inspected(("m-r1", "running", 0, "abc", 1, 2))
WORKER_KILLED = inspected(("m-r1", "exited", 137, "abc", 1, 2))


def test_reuse_only_when_exactly_the_planned_ranks_run_this_configuration():
    reusable = FILTERS["serving_reusable"]
    assert reusable({"spark-2959": HEAD, "spark-ba63": WORKER}, TP2, "abc") is True
    assert reusable({"spark-2959": HEAD, "spark-ba63": WORKER}, TP2, "other") is False
    assert reusable({"spark-2959": HEAD, "spark-ba63": WORKER_KILLED}, TP2, "abc") is False
    assert reusable({"spark-2959": HEAD, "spark-ba63": ""}, {"hosts": ["spark-2959"]}, "abc") is True
    assert reusable({"spark-2959": HEAD, "spark-ba63": WORKER}, {"hosts": ["spark-2959"]}, "abc") is False
    assert reusable({"spark-2959": "", "spark-ba63": ""}, TP2, "abc") is False


def test_healthy_needs_every_rank_running_and_a_real_completion():
    state = FILTERS["serving_status"]({"spark-2959": HEAD, "spark-ba63": WORKER}, ANSWERS)
    assert (state["state"], state["model"], state["config"], state["port"], state["served_name"]) == \
        ("healthy", "m", "abc", 8000, "tiny")
    ranks = [(r["rank"], r["host"], r["state"]) for r in state["ranks"]]
    assert ranks == [(0, "spark-2959", "running"), (1, "spark-ba63", "running")]
    assert state["report"][0] == "m (config abc, served as tiny on port 8000): healthy"


def test_a_killed_worker_is_named_although_the_head_answers_health():
    state = FILTERS["serving_status"]({"spark-2959": HEAD, "spark-ba63": WORKER_KILLED},
                                      {"status": 200, "msg": "no completion from tiny: HTTP None no JSON answer"})
    assert state["state"] == "broken"
    assert state["problems"] == ["rank 1 on spark-ba63 is down: container m-r1 exited (exit code 137)"]


def test_a_missing_rank_is_named():
    state = FILTERS["serving_status"]({"spark-2959": HEAD, "spark-ba63": ""}, ANSWERS)
    assert state["problems"] == ["rank 1: no container on any node"]


def test_running_ranks_that_do_not_answer_a_completion_are_broken():
    state = FILTERS["serving_status"]({"spark-2959": HEAD, "spark-ba63": WORKER},
                                      {"status": 200, "completion_tokens": 0, "msg": "no completion from tiny: HTTP 500"})
    assert state["state"] == "broken"
    assert "a real completion failed (no completion from tiny: HTTP 500)" in state["problems"][0]
    unlisted = FILTERS["serving_status"]({"spark-2959": HEAD, "spark-ba63": WORKER},
                                         {"status": 200, "msg": "http://127.0.0.1:8000/v1/models lists [], not tiny"})
    assert "a real completion failed (http://127.0.0.1:8000/v1/models lists [], not tiny)" in unlisted["problems"][0]
    down = FILTERS["serving_status"]({"spark-2959": HEAD, "spark-ba63": WORKER}, {"status": None})
    assert down["problems"] == ["rank 0 on spark-2959: /health answered nothing"]


def test_leftovers_of_two_configurations_are_reported():
    stale = inspected(("old-r1", "running", 0, "zzz", 1, 2))
    state = FILTERS["serving_status"]({"spark-2959": HEAD, "spark-ba63": stale}, ANSWERS)
    assert state["state"] == "broken" and state["config"] is None
    assert state["problems"][0].startswith("containers of 2 configurations are present")


def test_nothing_serving_is_stopped_not_broken():
    state = FILTERS["serving_status"]({"spark-2959": "", "spark-ba63": ""})
    assert (state["state"], state["problems"]) == ("stopped", [])
    assert state["report"] == ["nothing serves: no serving container on any node"]


def test_an_unreachable_node_is_named_and_never_healthy():
    state = FILTERS["serving_status"]({"spark-2959": HEAD, "spark-ba63": ""}, ANSWERS, ["spark-ba63"])
    assert state["state"] == "broken"
    assert state["problems"] == ["spark-ba63 is unreachable: its containers could not be checked",
                                 "rank 1: no container on any reachable node"]
    blind = FILTERS["serving_status"]({"spark-2959": "", "spark-ba63": ""}, None, ["spark-2959", "spark-ba63"])
    assert blind["state"] == "unknown" and len(blind["problems"]) == 2
