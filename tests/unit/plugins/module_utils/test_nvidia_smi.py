from __future__ import annotations

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils._nvidia_smi import (
    GPU_QUERY_FIELDS,
    NvidiaSmiParseError,
    gpu_record,
    node_summary,
    parse_meminfo,
    parse_query_csv,
)

# Every query-output fixture, with the fields its command asked for (from the fixture header).
QUERY_FIXTURES = {
    "nvidia-smi/gb10_query_csv_unsloth_pr10703.txt": ["index", "name", "memory.total", "memory.free"],
    "nvidia-smi/gb10_query_noheader_llamaswap_782.txt": ["memory.used", "memory.total", "utilization.memory"],
    "nvidia-smi/gb10_query_csv_header_partial_curriculum_audit.txt":
        ["name", "memory.total", "memory.free", "memory.used", "temperature.gpu", "power.draw"],
    "nvidia-smi/discrete_query_csv_header_2x_rtx_a6000.txt":
        ["index", "name", "memory.total", "memory.used", "memory.free", "utilization.gpu"],
    "nvidia-smi/discrete_query_csv_header_rtx4050_laptop.txt":
        ["name", "memory.total", "memory.used", "driver_version", "compute_cap"],
    "derived/nvidia_smi_gb10_module_query.txt": list(GPU_QUERY_FIELDS),
    "derived/nvidia_smi_2x_a6000_module_query.txt": list(GPU_QUERY_FIELDS),
}


def test_every_query_fixture_is_covered(fixture_files):
    query_files = {f for f in fixture_files("nvidia-smi") if "_query_" in f and "compute_apps" not in f}
    assert query_files and query_files <= set(QUERY_FIXTURES)


@pytest.mark.parametrize("path", sorted(p for p in QUERY_FIXTURES if "gb10" in p))
def test_gb10_memory_fields_are_none(path, fixture_body):
    rows = parse_query_csv(fixture_body(path), QUERY_FIXTURES[path])
    assert len(rows) == 1
    assert rows[0]["memory.total"] is None
    assert gpu_record(rows[0])["unified_memory"] is True


def test_gb10_row_keeps_other_values(fixture_body):
    rows = parse_query_csv(fixture_body("nvidia-smi/gb10_query_csv_header_partial_curriculum_audit.txt"),
                           QUERY_FIXTURES["nvidia-smi/gb10_query_csv_header_partial_curriculum_audit.txt"])
    assert rows[0]["name"] == "NVIDIA GB10"
    assert rows[0]["temperature.gpu"] == "39"
    assert rows[0]["power.draw"] == "3.74"


def test_discrete_units_and_indent_are_stripped(fixture_body):
    rows = parse_query_csv(fixture_body("nvidia-smi/discrete_query_csv_header_2x_rtx_a6000.txt"),
                           QUERY_FIXTURES["nvidia-smi/discrete_query_csv_header_2x_rtx_a6000.txt"])
    assert [r["index"] for r in rows] == [0, 1]
    assert [r["memory.total"] for r in rows] == [49140, 49140]
    assert [r["memory.free"] for r in rows] == [48507, 48521]


def test_shell_prompt_line_is_skipped(fixture_body):
    rows = parse_query_csv(fixture_body("nvidia-smi/discrete_query_csv_header_rtx4050_laptop.txt"),
                           QUERY_FIXTURES["nvidia-smi/discrete_query_csv_header_rtx4050_laptop.txt"])
    assert rows == [{"name": "NVIDIA GeForce RTX 4050 Laptop GPU", "memory.total": 6141, "memory.used": 0,
                     "driver_version": "592.82", "compute_cap": "8.9"}]


def test_human_table_is_rejected(fixture_body):
    with pytest.raises(NvidiaSmiParseError):
        parse_query_csv(fixture_body("nvidia-smi/gb10_table_arctictraining_pr345.txt"), GPU_QUERY_FIELDS)


def test_wrong_field_count_names_the_row(fixture_body):
    with pytest.raises(NvidiaSmiParseError, match="row 1 has 3 values, the query asked for 9"):
        parse_query_csv(fixture_body("nvidia-smi/gb10_query_noheader_llamaswap_782.txt"), GPU_QUERY_FIELDS)


def test_header_of_other_fields_is_rejected(fixture_body):
    with pytest.raises(NvidiaSmiParseError, match="does not match the queried fields"):
        parse_query_csv(fixture_body("nvidia-smi/gb10_query_csv_unsloth_pr10703.txt"), GPU_QUERY_FIELDS)


def test_mismatched_header_is_rejected():
    with pytest.raises(NvidiaSmiParseError, match="header"):
        parse_query_csv("index, name\n0, x\n", ["index", "uuid"])


def test_non_numeric_memory_is_rejected():
    with pytest.raises(NvidiaSmiParseError, match="memory.total"):
        parse_query_csv("0, GPU, lots\n", ["index", "name", "memory.total"])


def test_unified_summary_comes_from_meminfo(fixture_body):
    gpus = [gpu_record(r) for r in parse_query_csv(fixture_body("derived/nvidia_smi_gb10_module_query.txt"),
                                                   GPU_QUERY_FIELDS)]
    summary = node_summary(gpus, fixture_body("derived/proc_meminfo_gb10.txt"))
    assert summary == {"unified_memory": True, "total_mib": 125442076 // 1024,
                       "available_mib": 120133924 // 1024, "source": "/proc/meminfo"}


def test_unified_summary_without_meminfo_fails():
    with pytest.raises(NvidiaSmiParseError):
        node_summary([{"unified_memory": True}], None)


def test_discrete_summary_sums_gpus(fixture_body):
    gpus = [gpu_record(r) for r in parse_query_csv(fixture_body("derived/nvidia_smi_2x_a6000_module_query.txt"),
                                                   GPU_QUERY_FIELDS)]
    assert node_summary(gpus) == {"unified_memory": False, "total_mib": 98280, "available_mib": 97028,
                                  "source": "nvidia-smi"}


def test_meminfo_without_memtotal_is_rejected():
    with pytest.raises(NvidiaSmiParseError):
        parse_meminfo("MemFree: 10 kB\n")
