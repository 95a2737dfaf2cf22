"""The progress file a long job rewrites and removes."""

from __future__ import annotations

import json

from ansible_collections.dgx_spark.cluster.plugins.module_utils import _progress_file


def test_the_writer_replaces_the_file_whole_and_remove_takes_the_temporary_too(tmp_path):
    path = str(tmp_path / "progress.json")
    _progress_file.write_progress(path, {"bytes": 5, "seconds": 0.5})
    assert json.loads((tmp_path / "progress.json").read_text()) == {"bytes": 5, "seconds": 0.5}
    (tmp_path / "progress.json.tmp").write_text("{\"bytes\": 6")  # a job killed mid-write
    _progress_file.remove(path)
    assert list(tmp_path.iterdir()) == []
    _progress_file.remove(path)  # nothing left: no error


NAME = "p2p_image_copy-%s.json" % ("0f" * 16)


def test_only_a_file_named_as_the_action_plugin_names_them_and_not_there_yet_is_accepted(tmp_path):
    assert _progress_file.problem(str(tmp_path / NAME)) is None
    for path in ("/etc/shadow", str(tmp_path / "progress.json"), "relative/" + NAME, str(tmp_path / (NAME + "x"))):
        assert "is not allowed: the action plugin sets it" in _progress_file.problem(path), path
    (tmp_path / NAME).write_text("someone else's")  # the module would remove it at the end: refused
    assert "it exists already" in _progress_file.problem(str(tmp_path / NAME))


def test_the_writer_never_writes_through_a_link(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep")
    path = tmp_path / NAME
    (tmp_path / (NAME + ".tmp")).symlink_to(target)  # planted where the writer puts its temporary
    _progress_file.write_progress(str(path), {"bytes": 1})
    assert target.read_text() == "keep" and json.loads(path.read_text()) == {"bytes": 1}
