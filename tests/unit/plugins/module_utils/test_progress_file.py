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
