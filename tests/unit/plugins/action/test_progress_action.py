"""The progress lines the p2p_image_copy and weight_sync actions print from their module's progress file."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

from ansible_collections.dgx_spark.cluster.plugins.plugin_utils._progress_action import (
    SEPARATOR, _json_or_none, amount_line, look_command)


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


def running_record(jid):
    """What async_wrapper's jwrite puts in the job file while the module runs."""
    return json.dumps({"started": True, "finished": False, "ansible_job_id": jid})


def look(job_file, progress_file, wait):
    started = time.monotonic()
    out = subprocess.run(["sh", "-c", look_command(str(job_file), str(progress_file), wait)], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return _json_or_none(out, SEPARATOR), time.monotonic() - started


def test_a_look_waits_on_the_node_until_the_job_ends(tmp_path):
    job_file, progress_file = tmp_path / "j1.42", tmp_path / "progress.json"
    job_file.write_text(running_record("j1.42"))
    progress_file.write_text('{"bytes": 7}')

    def finish():
        time.sleep(0.3)
        job_file.with_suffix(".tmp").write_text('{"changed": true, "bytes": 9}')
        os.rename(job_file.with_suffix(".tmp"), job_file)  # as jwrite replaces the record
    writer = threading.Thread(target=finish)
    writer.start()
    (job, progress), seconds = look(job_file, progress_file, wait=20)
    writer.join()
    # the result, seen once written, long before the 20 s the look may wait
    assert job == {"changed": True, "bytes": 9} and progress == {"bytes": 7} and seconds < 10


def test_a_look_at_a_running_job_returns_after_its_wait_with_the_record(tmp_path):
    job_file = tmp_path / "j2.42"
    job_file.write_text(running_record("j2.42"))
    (job, progress), _seconds = look(job_file, tmp_path / "absent.json", wait=0.2)
    assert job["finished"] is False and progress is None


def test_a_look_at_an_unknown_record_does_not_wait(tmp_path):
    job_file = tmp_path / "j3.42"
    job_file.write_text('{"started": 1, "finished": 0}')  # not async_wrapper's format: the caller paces the looks
    (job, _progress), seconds = look(job_file, tmp_path / "absent.json", wait=20)
    assert job == {"started": 1, "finished": 0} and seconds < 10
