"""serving_wait against a real local HTTP server answering with the recorded vLLM bodies (docker is a double
printing the container's state)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.dgx_spark.cluster.plugins.modules import serving_wait

SERVED = "DeepSeek-R1-Distill-Qwen-1.5B"  # the id in the recorded /v1/models answer


def docker_double(fake_tool, status="running", exit_code=0):
    return fake_tool("docker", json.dumps([{"State": {"Status": status, "ExitCode": exit_code}}]))


def wait(module_runner, api, **extra):
    return module_runner(serving_wait.main, dict({"container": "dgx-spark-serve-m-r0", "url": api["url"],
                                                  "timeout": 5, "interval": 0.1}, **extra))


def test_ready_means_the_served_name_is_listed_and_a_real_completion_answers(module_runner, api, fake_tool):
    docker_double(fake_tool)
    result, failed = wait(module_runner, api, served_name=SERVED)
    assert not failed and result["models"] == [SERVED] and result["completion_tokens"] == 150
    assert result["completion"].startswith("\n\nVermont")
    post = [r for r in api["requests"] if r[0] == "POST"]
    assert post == [("POST", "/v1/completions", {"model": SERVED, "prompt": "The DGX Spark", "max_tokens": 8,
                                                 "temperature": 0})]


def test_another_served_name_fails_at_once_naming_what_is_listed(module_runner, api, fake_tool):
    docker_double(fake_tool)
    result, failed = wait(module_runner, api, served_name="openai/gpt-oss-120b")
    assert failed and "/v1/models lists ['%s'] (HTTP 200), not openai/gpt-oss-120b" % SERVED in result["msg"]
    assert result["elapsed"] < 5 and not [r for r in api["requests"] if r[0] == "POST"]


def test_a_failed_completion_fails_with_the_status_and_the_engine_s_answer(module_runner, api, fake_tool):
    docker_double(fake_tool)
    api["completion_status"] = 500
    result, failed = wait(module_runner, api, served_name=SERVED)
    assert failed and result["msg"].startswith("no completion from %s: HTTP 500" % SERVED)
    assert "engine dead" in result["msg"]


def test_without_a_served_name_the_health_answer_is_enough(module_runner, api, fake_tool):
    docker_double(fake_tool)
    result, failed = wait(module_runner, api)
    assert not failed and result["status"] == 200 and "models" not in result
    assert [r[1] for r in api["requests"]] == ["/health"]


def test_an_exited_container_fails_at_once_with_its_exit_code(module_runner, api, fake_tool):
    docker_double(fake_tool, status="exited", exit_code=137)
    result, failed = wait(module_runner, api, served_name=SERVED)
    assert failed and "is exited (exit code 137)" in result["msg"] and result["exit_code"] == 137
    assert api["requests"] == []


PEER = {"rank": 1, "container": "dgx-spark-serve-m-r1", "address": "10.10.10.2", "local": False, "first": True}


def test_a_rank_on_another_node_whose_container_exited_fails_the_wait_at_once_naming_it(
        module_runner, api, fake_tool):
    docker_double(fake_tool)
    ssh = fake_tool("ssh", json.dumps([{"State": {"Status": "exited", "ExitCode": 137}}]))
    result, failed = wait(module_runner, api, served_name=SERVED, peers=[PEER])
    assert failed and result["msg"].startswith(
        "rank 1's container dgx-spark-serve-m-r1 on 10.10.10.2 is exited (exit code 137) after 0 s")
    assert (result["peer"]["state"], result["peer"]["exit_code"]) == ("exited", 137) and api["requests"] == []
    argv = ssh.with_suffix(".argv").read_text().splitlines()
    assert argv == ["-o BatchMode=yes -o ConnectTimeout=5 10.10.10.2 docker inspect dgx-spark-serve-m-r1"]


RUNNING = json.dumps([{"State": {"Status": "running", "ExitCode": 0}}])
CREATED = json.dumps([{"State": {"Status": "created", "ExitCode": 0}}])  # its unit still waits for its own peers


def ssh_double(fake_tool, answers):
    """ssh answering call n with answers[n] ((stdout, rc)), the last one from then on."""
    ssh = fake_tool("ssh")
    calls = ssh.with_suffix(".argv")
    cases = "".join('  %d) printf "%%s" \'%s\'; exit %d;;\n' % (n + 1, out, rc) for n, (out, rc) in enumerate(answers))
    ssh.write_text("#!/bin/sh\n"
                   'printf "%%s\\n" "$*" >> "%s"\n'
                   'case $(wc -l < "%s") in\n%s  *) printf "%%s" \'%s\'; exit %d;;\nesac\n'
                   % (calls, calls, cases, answers[-1][0], answers[-1][1]))
    return ssh


@pytest.mark.parametrize("first", [(CREATED, 0), ("", 255)])  # not started yet; its node silent over SSH
def test_a_rank_not_started_yet_or_a_silent_node_does_not_end_the_wait(module_runner, api, fake_tool, first):
    docker_double(fake_tool)
    ssh = ssh_double(fake_tool, [first, (RUNNING, 0)])
    result, failed = wait(module_runner, api, served_name=SERVED, peers=[PEER])
    assert not failed and result["completion_tokens"] == 150
    # asked while waiting, then once more when the head had answered
    assert len(ssh.with_suffix(".argv").read_text().splitlines()) == 2


@pytest.mark.parametrize("answer, state", [((CREATED, 0), "created"), (("", 255), "unknown (its node did not answer")])
def test_ready_means_every_peer_runs_once_the_head_answered(module_runner, api, fake_tool, answer, state):
    docker_double(fake_tool)
    ssh_double(fake_tool, [answer])
    result, failed = wait(module_runner, api, served_name=SERVED, peers=[PEER])
    assert failed and result["msg"].startswith("rank 1's container dgx-spark-serve-m-r1 on 10.10.10.2 is " + state)
    assert result["msg"].endswith("answered: the group is not whole") and result["completion_tokens"] == 150


def test_a_peer_removed_by_docker_fails_the_wait(module_runner, api, fake_tool):
    docker_double(fake_tool)
    fake_tool("ssh", "", rc=1, stderr="Error: No such object: dgx-spark-serve-m-r1")
    result, failed = wait(module_runner, api, peers=[PEER])
    assert failed and "is absent (exit code None)" in result["msg"]


def test_a_hostile_peer_is_refused_before_any_command(module_runner, api, fake_tool):
    docker = docker_double(fake_tool)
    ssh = fake_tool("ssh", "")
    result, failed = wait(module_runner, api, peers=[dict(PEER, address="10.10.10.2;reboot")])
    assert failed and "peers[0].address '10.10.10.2;reboot' is not allowed" in result["msg"]
    assert not ssh.with_suffix(".argv").exists() and not docker.with_suffix(".argv").exists()
