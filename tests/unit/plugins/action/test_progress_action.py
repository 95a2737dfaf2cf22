"""The progress lines the p2p_image_copy and weight_sync actions print from their module's progress file."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.plugin_utils._progress_action import _json_or_none, amount_line


def test_amount_with_the_expected_size():
    assert amount_line({"bytes": 3 << 30, "seconds": 6.0, "expected": 12 << 30}) == \
        "3072 MiB of ~12288 MiB (25%), 512 MiB/s"


def test_amount_without_a_size_never_claims_a_percentage():
    assert amount_line({"bytes": 5 << 20, "seconds": 0, "expected": None}) == "5 MiB"
    # the stream can outgrow the image size (tar headers): never 100% before the end
    assert "(99%)" in amount_line({"bytes": 11, "seconds": 1, "expected": 10})


def test_job_and_progress_are_read_from_one_command():
    job, progress = _json_or_none('{"started": 1, "finished": 0}\n--sep--\n{"bytes": 5}', "--sep--")
    assert job == {"started": 1, "finished": 0} and progress == {"bytes": 5}
    # a progress file not written yet, or a job file half written: None, never an exception
    assert _json_or_none('{"started": 1, "finished": 0}\n--sep--\n', "--sep--")[1] is None
    assert _json_or_none('{"started": 1, "fin\n--sep--\n{"bytes": 5}', "--sep--")[0] is None
