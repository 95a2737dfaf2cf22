"""The progress line p2p_image_copy's action plugin prints from the module's progress file."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.action.p2p_image_copy import progress_line


def test_progress_line_with_the_expected_size():
    line = progress_line("spark-ba63", "nvcr.io/nvidia/vllm:25.11-py3",
                         {"bytes": 3 << 30, "seconds": 6.0, "expected": 12 << 30})
    assert line == "spark-ba63: nvcr.io/nvidia/vllm:25.11-py3 3072 MiB of ~12288 MiB (25%), 512 MiB/s"


def test_progress_line_without_a_size_never_claims_a_percentage():
    line = progress_line("spark-ba63", "lab/img:2", {"bytes": 5 << 20, "seconds": 0, "expected": None})
    assert line == "spark-ba63: lab/img:2 5 MiB"
    # the stream can outgrow the image size (tar headers): never 100% before the end
    assert "(99%)" in progress_line("h", "i", {"bytes": 11, "seconds": 1, "expected": 10})
