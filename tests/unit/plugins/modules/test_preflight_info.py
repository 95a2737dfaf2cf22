"""preflight_info: one look at a node for preflight - sudo (a double answering as sudo -n does without a rule), the
commands missing from PATH, df for each path's nearest existing ancestor (the real df, and a double recording its
argv) and ip's link list."""

from __future__ import annotations

from ansible_collections.dgx_spark.cluster.plugins.filter.preflight import disk_checks
from ansible_collections.dgx_spark.cluster.plugins.modules import preflight_info

DF_LINE = "/dev/nvme0n1p2 3936820989952 211416436736 3525373886464 6% /var/lib/docker"


def test_sudo_refused_missing_commands_and_df_of_the_nearest_existing_ancestor(tmp_path, module_runner, fake_tool):
    fake_tool("sudo", rc=1, stderr="sudo: a password is required\n")
    df = fake_tool("df", DF_LINE + "\n")
    (tmp_path / "data").mkdir()
    result, failed = module_runner(preflight_info.main, {
        "commands": ["sudo", "no-such-command-here", "df"],
        "disk_paths": [str(tmp_path / "data" / "not" / "yet"), str(tmp_path / "data")]})
    assert not failed and result["changed"] is False
    assert result["sudo"] == {"rc": 1, "stderr": "sudo: a password is required\n"}
    assert (tmp_path / "bin" / "sudo.argv").read_text() == "-n true\n"
    assert result["missing_commands"] == ["no-such-command-here"]
    assert df.with_suffix(".argv").read_text() == "-P -B1 -- %s\n" % (tmp_path / "data") * 2
    assert result["df_lines"] == [DF_LINE, DF_LINE]
    assert "links" not in result


def test_real_df_line_is_what_the_role_judges(tmp_path, module_runner, fake_tool):
    fake_tool("sudo")
    result, failed = module_runner(preflight_info.main, {"disk_paths": [str(tmp_path / "absent")]})
    assert not failed and result["sudo"]["rc"] == 0
    judged = disk_checks(result["df_lines"], [{"path": str(tmp_path / "absent"), "min_free_gib": 0}])
    assert judged[0]["ok"] and judged[0]["free_gib"] >= 0, judged


def test_a_df_error_is_its_line_and_links_come_from_ip(tmp_path, module_runner, fake_tool):
    fake_tool("df", stderr="df: /x: Input/output error\n", rc=1)
    fake_tool("ip", '[{"ifname": "enp1s0f1np1", "flags": ["UP"], "operstate": "UP", "mtu": 9000}]\n')
    result, failed = module_runner(preflight_info.main, {"sudo": False, "disk_paths": ["/"], "links": True})
    assert not failed and "sudo" not in result
    assert result["df_lines"] == ["df: /x: Input/output error"]
    assert '"enp1s0f1np1"' in result["links"]


def test_without_ip_or_sudo_the_answers_are_a_shells(tmp_path, module_runner, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    result, failed = module_runner(preflight_info.main, {"links": True, "commands": ["ip"]})
    assert not failed
    assert result["sudo"] == {"rc": 127, "stderr": "sudo: command not found"}
    assert result["links"] == "" and result["missing_commands"] == ["ip"]
