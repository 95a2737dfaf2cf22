"""serving_info: one look at a node - its serving containers (docker is a double that answers `ps` and `inspect`),
its memory (nvidia-smi replays a recorded query), the swap lock's presence, files' hashes, units' states (systemctl
replays `systemctl show`) and, only where rank 0 of the model runs, a real completion from a local API answering with
the recorded vLLM bodies."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import stat

from ansible_collections.dgx_spark.cluster.plugins.modules import serving_info

SERVED = "DeepSeek-R1-Distill-Qwen-1.5B"  # the id in the recorded /v1/models answer


def record(name, model="m", rank=0, state="running"):
    """A `docker inspect` record with the labels the role sets and the API key in the environment."""
    return {"Id": name + "-id", "Name": "/" + name, "State": {"Status": state, "Running": state == "running"},
            "Config": {"Env": ["VLLM_API_KEY=sk-secret-value", "PATH=/usr/bin"],
                       "Labels": {"dgx-spark.role": "serving", "dgx-spark.model": model, "dgx-spark.rank": str(rank)}}}


def docker_double(fake_tool, records, images=()):
    """docker that lists the records' ids for `ps`, prints the records for `inspect` and knows only `images` (its
    `image inspect` prints an ID for them and exits 1 for any other, as docker does)."""
    tool = fake_tool("docker")
    (tool.parent / "inspect.json").write_text(json.dumps(records))
    tool.write_text("#!/bin/sh\n"
                    'printf "%%s\\n" "$*" >> "%s.argv"\n'
                    'if [ "$1" = image ]; then for known in %s; do [ "$known" = "$6" ] && echo "sha256:id-of-$6" && exit 0; done; '
                    'echo "Error: No such image: $6" >&2; exit 1; fi\n'
                    'if [ "$1" = ps ]; then printf "%s\\n"; else cat "%s"; fi\n'
                    % (tool, " ".join(images), "\\n".join(r["Id"] for r in records), tool.parent / "inspect.json"))
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return tool


def look(module_runner, fake_tool, fixture_body, records, **args):
    docker_double(fake_tool, records)
    fake_tool("nvidia-smi", fixture_body("derived/nvidia_smi_2x_a6000_module_query.txt"))
    fake_tool("systemctl", "ActiveState=active\nUnitFileState=enabled\n")
    return module_runner(serving_info.main, args)


def probe_of(api, model="m"):
    return {"model": model, "served_name": SERVED, "port": int(api["url"].rsplit(":", 1)[1].split("/")[0])}


def test_one_look_gives_containers_without_secrets_user_memory_lock_files_and_units(
        tmp_path, module_runner, fake_tool, fixture_body):
    lock = tmp_path / "serving.lock"
    lock.write_text("{}")
    program = tmp_path / "watchdog.py"
    program.write_bytes(b"print('watching')\n")
    result, failed = look(module_runner, fake_tool, fixture_body, [record("m-r0"), record("old-r0-previous")],
                          lock_path=str(lock), files=[str(program), str(tmp_path / "absent")],
                          units=["dgx-spark-serving-watchdog.service"])
    assert not failed and result["changed"] is False, result
    assert [c["Name"] for c in result["containers"]] == ["/m-r0", "/old-r0-previous"]
    assert result["containers"][0]["Config"]["Env"] == ["VLLM_API_KEY=********", "PATH=/usr/bin"]
    assert result["user"] == pwd.getpwuid(os.geteuid()).pw_name
    # two RTX A6000: the node's memory is theirs, from the one CSV query
    assert (result["memory"]["source"], result["memory"]["unified_memory"], result["memory"]["gpu_count"]) == (
        "nvidia-smi", False, 2)
    assert result["memory"]["total_mib"] == 2 * result["memory"]["gpus"][0]["memory_total_mib"]
    assert result["lock_present"] is True
    assert result["files"] == {str(program): hashlib.sha256(b"print('watching')\n").hexdigest(),
                               str(tmp_path / "absent"): None}
    assert result["units"] == {"dgx-spark-serving-watchdog.service": {"active": "active", "enabled": "enabled"}}
    assert "probe" not in result  # none asked
    lock.unlink()
    result, failed = look(module_runner, fake_tool, fixture_body, [], lock_path=str(lock), memory=False)
    assert not failed and result["lock_present"] is False and result["containers"] == [] and "memory" not in result


def test_rank_0_of_the_model_is_asked_for_a_real_completion(module_runner, fake_tool, fixture_body, api):
    result, failed = look(module_runner, fake_tool, fixture_body, [record("m-r0")], probe=probe_of(api))
    assert not failed, result
    probe = result["probe"]
    assert (probe["ran"], probe["container"], probe["status"], probe["problem"]) == (True, "m-r0", 200, None)
    assert probe["models"] == [SERVED] and probe["completion_tokens"] == 150 and probe["elapsed"] >= 0
    assert [r[:2] for r in api["requests"]] == [("GET", "/health"), ("GET", "/v1/models"), ("POST", "/v1/completions")]


def test_rank_0_answers_while_the_node_is_asked_the_rest(module_runner, fake_tool, fixture_body, api, tmp_path):
    """systemctl answers only once the completion has been asked (or after 10 s, as inactive): a look that asked
    rank 0 only after the node's units would find the unit inactive."""
    completing = tmp_path / "completing"
    api["while_completing"] = completing.touch
    docker_double(fake_tool, [record("m-r0")])
    fake_tool("nvidia-smi", fixture_body("derived/nvidia_smi_2x_a6000_module_query.txt"))
    systemctl = fake_tool("systemctl")
    systemctl.write_text("#!/bin/sh\nfor i in $(seq 500); do [ -e %s ] && break; sleep 0.02; done\n"
                         'if [ -e %s ]; then echo ActiveState=active; else echo ActiveState=inactive; fi\n'
                         % (completing, completing))
    result, failed = module_runner(serving_info.main, {"probe": probe_of(api),
                                                       "units": ["dgx-spark-serving-watchdog.service"]})
    assert not failed and result["probe"]["problem"] is None, result
    assert result["units"]["dgx-spark-serving-watchdog.service"]["active"] == "active"


def test_no_request_where_rank_0_of_the_model_does_not_run(module_runner, fake_tool, fixture_body, api):
    for records in ([record("m-r1", rank=1)], [record("other-r0", model="other")],
                    [record("m-r0", state="exited")], [record("m-r0-previous")]):
        result, failed = look(module_runner, fake_tool, fixture_body, records, probe=probe_of(api))
        assert not failed and result["probe"]["ran"] is False, records
        assert result["probe"]["problem"] == "rank 0 of m does not run here"
    assert api["requests"] == []


def test_a_failing_completion_is_a_problem_reported_not_a_failed_look(module_runner, fake_tool, fixture_body, api):
    api["completion_status"] = 500
    result, failed = look(module_runner, fake_tool, fixture_body, [record("m-r0")], probe=probe_of(api))
    assert not failed and result["probe"]["ran"] is True
    assert result["probe"]["problem"].startswith("no completion from %s: HTTP 500" % SERVED)
    assert result["probe"]["completion_tokens"] == 0


def test_without_a_driver_the_look_fails_saying_what_to_check(module_runner, fake_tool, fixture_body):
    docker_double(fake_tool, [])
    fake_tool("nvidia-smi", fixture_body("derived/nvidia_smi_driver_not_loaded.txt"), rc=9)
    result, failed = module_runner(serving_info.main, {})
    assert failed and "nvidia-smi exited with rc=9" in result["msg"] and result["rc"] == 9


def test_images_and_directories_a_launch_needs_on_the_head(tmp_path, module_runner, fake_tool, fixture_body):
    model_dir, not_a_dir = tmp_path / "models" / "tiny", tmp_path / "weights.bin"
    model_dir.mkdir(parents=True)
    not_a_dir.write_text("x")
    docker_double(fake_tool, [], images=["vllm/vllm-openai:v0.11.0"])
    result, failed = module_runner(serving_info.main, {
        "memory": False, "images": ["vllm/vllm-openai:v0.11.0", "nvcr.io/nvidia/absent:1"],
        "directories": [str(model_dir), str(not_a_dir), str(tmp_path / "absent")]})
    assert not failed, result
    assert result["images"] == {"vllm/vllm-openai:v0.11.0": "sha256:id-of-vllm/vllm-openai:v0.11.0",
                                "nvcr.io/nvidia/absent:1": None}
    assert result["directories"] == {str(model_dir): "directory", str(not_a_dir): "other", str(tmp_path / "absent"): None}
