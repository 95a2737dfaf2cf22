"""node_files on a real directory tree: one call makes the directories and files, a second changes nothing."""

from __future__ import annotations

import os
import stat

from ansible_collections.dgx_spark.cluster.plugins.modules import node_files


def args(tmp_path, **extra):
    base = dict(directories=[{"path": str(tmp_path / "lib" / "dgx-spark")}],
                files=[{"path": str(tmp_path / "lib" / "dgx-spark" / "helper.py"), "content": "print('hi')\n",
                        "mode": "0755"},
                       {"path": str(tmp_path / "unit.service"), "content": "[Unit]\n"}])
    base.update(extra)
    return base


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_one_call_makes_every_directory_and_file_and_a_second_changes_nothing(tmp_path, module_runner):
    result, failed = module_runner(node_files.main, args(tmp_path))
    assert not failed and result["changed"]
    helper = tmp_path / "lib" / "dgx-spark" / "helper.py"
    assert result["changed_paths"] == [str(tmp_path / "lib" / "dgx-spark"), str(helper), str(tmp_path / "unit.service")]
    assert helper.read_text() == "print('hi')\n" and mode(helper) == 0o755
    assert mode(tmp_path / "unit.service") == 0o644 and mode(tmp_path / "lib" / "dgx-spark") == 0o755
    again = module_runner(node_files.main, args(tmp_path))[0]
    assert (again["changed"], again["changed_paths"]) == (False, [])


def test_only_what_differs_changes_content_replaced_whole_and_mode_set(tmp_path, module_runner):
    module_runner(node_files.main, args(tmp_path))
    unit = tmp_path / "unit.service"
    unit.write_text("[Unit]\nedited by hand\n")
    os.chmod(tmp_path / "lib" / "dgx-spark" / "helper.py", 0o700)
    result = module_runner(node_files.main, dict(args(tmp_path), _ansible_diff=True))[0]
    assert result["changed_paths"] == [str(tmp_path / "lib" / "dgx-spark" / "helper.py"), str(unit)]
    assert unit.read_text() == "[Unit]\n" and mode(tmp_path / "lib" / "dgx-spark" / "helper.py") == 0o755
    assert [d["before"] for d in result["diff"]] == ["[Unit]\nedited by hand\n"]  # the mode change has no text diff
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib", "unit.service"]  # no staged file left


def test_check_mode_reports_what_would_change_and_touches_nothing(tmp_path, module_runner):
    result, failed = module_runner(node_files.main, dict(args(tmp_path), _ansible_check_mode=True, _ansible_diff=True))
    assert not failed and result["changed"] and len(result["changed_paths"]) == 3
    assert [d["after"] for d in result["diff"]] == ["(directory)\n", "print('hi')\n", "[Unit]\n"]
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_refused_before_anything_is_touched(tmp_path, module_runner):
    bad_mode = args(tmp_path, files=[{"path": str(tmp_path / "x"), "content": "", "mode": "rw-r--r--"}])
    result, failed = module_runner(node_files.main, bad_mode)
    assert failed and "files[0].mode" in result["msg"] and "octal file mode" in result["msg"]
    relative = args(tmp_path, files=[{"path": "etc/x", "content": ""}])
    result, failed = module_runner(node_files.main, relative)
    assert failed and "files[0].path" in result["msg"] and "absolute path" in result["msg"]
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_or_a_file_in_the_way_is_named(tmp_path, module_runner):
    result, failed = module_runner(node_files.main, dict(directories=[], files=[
        {"path": str(tmp_path / "absent" / "x"), "content": ""}]))
    assert failed and "add it to directories" in result["msg"]
    (tmp_path / "lib").write_text("")
    result, failed = module_runner(node_files.main, dict(directories=[{"path": str(tmp_path / "lib")}], files=[]))
    assert failed and "is not a directory" in result["msg"]
