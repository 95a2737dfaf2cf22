from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.modules import gpu_vram_facts


def _meminfo(tmp_path, fixture_body):
    path = tmp_path / "meminfo"
    path.write_text(fixture_body("derived/proc_meminfo_gb10.txt"))
    return str(path)


def test_gb10_reports_unified_memory_from_meminfo(tmp_path, fake_tool, module_runner, fixture_body):
    tool = fake_tool("nvidia-smi", fixture_body("derived/nvidia_smi_gb10_module_query.txt"))
    result, failed = module_runner(gpu_vram_facts.main, {"meminfo_path": _meminfo(tmp_path, fixture_body)})
    assert not failed and result["changed"] is False
    facts = result["ansible_facts"]["gpu_vram"]
    assert facts["unified_memory"] is True
    assert facts["source"] == "/proc/meminfo"
    assert facts["total_mib"] == 125442076 // 1024
    assert facts["available_mib"] == 120133924 // 1024
    assert facts["gpus"][0]["name"] == "NVIDIA GB10"
    assert facts["gpus"][0]["memory_total_mib"] is None
    assert facts["driver_version"] == "580.126.09"
    # exactly one call, the CSV query without header or units
    calls = (tool.parent / "nvidia-smi.argv").read_text().splitlines()
    assert calls == ["--query-gpu=index,name,uuid,pci.bus_id,driver_version,compute_cap,memory.total,"
                     "memory.used,memory.free --format=csv,noheader,nounits"]


def test_discrete_sums_gpu_memory(fake_tool, module_runner, fixture_body):
    fake_tool("nvidia-smi", fixture_body("derived/nvidia_smi_2x_a6000_module_query.txt"))
    result, failed = module_runner(gpu_vram_facts.main, {"meminfo_path": "/nonexistent"})
    facts = result["ansible_facts"]["gpu_vram"]
    assert not failed
    assert (facts["gpu_count"], facts["total_mib"], facts["available_mib"]) == (2, 98280, 97028)
    assert facts["source"] == "nvidia-smi" and facts["unified_memory"] is False


def test_missing_driver_fails_with_a_hint(fake_tool, module_runner, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    result, failed = module_runner(gpu_vram_facts.main, {})
    assert failed
    assert "nvidia-smi not found" in result["msg"] and "fail_on_missing=false" in result["msg"]


def test_missing_driver_empty_result_when_allowed(module_runner, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    result, failed = module_runner(gpu_vram_facts.main, {"fail_on_missing": False})
    facts = result["ansible_facts"]["gpu_vram"]
    assert not failed
    assert facts["present"] is False and facts["gpus"] == [] and facts["total_mib"] is None
    assert "not found" in facts["error"]


def test_nonzero_exit_reports_rc_and_driver_message(fake_tool, module_runner, fixture_body):
    fake_tool("nvidia-smi", fixture_body("derived/nvidia_smi_driver_not_loaded.txt"), rc=9)
    result, failed = module_runner(gpu_vram_facts.main, {})
    assert failed and result["rc"] == 9
    assert "couldn't communicate with the NVIDIA driver" in result["msg"]


def test_garbage_output_fails_naming_the_problem(fake_tool, module_runner, fixture_body):
    fake_tool("nvidia-smi", fixture_body("nvidia-smi/gb10_table_obrienlabs_blog.txt"))
    result, failed = module_runner(gpu_vram_facts.main, {})
    assert failed
    assert "not the CSV that was queried" in result["msg"]


def test_garbage_output_empty_result_when_allowed(fake_tool, module_runner, fixture_body):
    fake_tool("nvidia-smi", "Segmentation fault\n")
    result, failed = module_runner(gpu_vram_facts.main, {"fail_on_missing": False})
    assert not failed
    assert result["ansible_facts"]["gpu_vram"]["present"] is False


def test_hung_driver_times_out(fake_tool, module_runner, tmp_path):
    tool = fake_tool("nvidia-smi")
    tool.write_text("#!/bin/sh\nsleep 30\n")
    result, failed = module_runner(gpu_vram_facts.main, {"timeout": 1})
    assert failed and "did not answer within 1 s" in result["msg"]


def test_unreadable_meminfo_on_unified_memory_fails(fake_tool, module_runner, fixture_body):
    fake_tool("nvidia-smi", fixture_body("derived/nvidia_smi_gb10_module_query.txt"))
    result, failed = module_runner(gpu_vram_facts.main, {"meminfo_path": "/nonexistent/meminfo"})
    assert failed and "/nonexistent/meminfo could not be read" in result["msg"]
