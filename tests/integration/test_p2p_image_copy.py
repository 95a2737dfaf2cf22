"""p2p_image_copy between the lab nodes' real dockers over the fabric: copy, no-op, broken stream, retry."""

from __future__ import annotations

import pytest
from labkit import lab, module, playbook, ssh

HEAD_FABRIC = "10.10.10.1"
IMAGE = "lab/p2p-test:1"
# 48 MiB of random data on top of busybox: large enough for many frames, built on the head's docker
BUILD = ("printf 'FROM lab/busybox\\nRUN dd if=/dev/urandom of=/blob bs=1M count=48 2>/dev/null\\n' "
         "| docker build -q --network host -t %s - >/dev/null")
TRUNCATING = ("printf '#!/bin/sh\\n[ \"$1\" = save ] && { docker \"$@\" | head -c 20000000; exit 0; }\\n"
              "exec docker \"$@\"\\n' | sudo tee /usr/local/bin/docker-truncating >/dev/null "
              "&& sudo chmod 755 /usr/local/bin/docker-truncating")


def image_id(node):
    out = ssh(node, "docker image inspect --format '{{.Id}}' %s" % IMAGE, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture(scope="module", autouse=True)
def images():
    lab("up")
    fabric = playbook("fabric.yml")  # SSH trust between the nodes
    assert fabric.returncode == 0, fabric.stdout[-3000:]
    ssh("spark-2959", BUILD % IMAGE)
    # the worker holds an older, different image under the same tag
    ssh("spark-ba63", "printf 'FROM lab/busybox\\nRUN echo old > /old\\n' | docker build -q --network host -t %s - "
                      ">/dev/null" % IMAGE)
    for node in ("spark-2959", "spark-ba63"):
        ssh(node, TRUNCATING)
    yield
    for node in ("spark-2959", "spark-ba63"):
        ssh(node, "docker image rm -f %s >/dev/null 2>&1; docker image prune -f >/dev/null; "
                  "sudo rm -f /usr/local/bin/docker-truncating" % IMAGE, check=False)


def test_a_broken_stream_keeps_the_previous_image():
    old = image_id("spark-ba63")
    assert old and old != image_id("spark-2959")
    rc, result = module("spark-ba63", "p2p_image_copy",
                        {"image": IMAGE, "source_host": HEAD_FABRIC, "docker": "docker-truncating"})
    assert rc != 0 and "docker load failed" in result["msg"] and "Retry the task" in result["msg"], result
    assert image_id("spark-ba63") == old


def test_check_mode_reports_without_copying():
    rc, result = module("spark-ba63", "p2p_image_copy", {"image": IMAGE, "source_host": HEAD_FABRIC}, "--check")
    assert rc == 0 and result["changed"] is True and result["transferred"] is False
    assert image_id("spark-ba63") != image_id("spark-2959")


def test_copy_then_nothing_to_do():
    rc, result = module("spark-ba63", "p2p_image_copy", {"image": IMAGE, "source_host": HEAD_FABRIC})
    assert rc == 0 and result["changed"] is True and result["transferred"] is True, result
    assert result["bytes"] > 48 << 20 and len(result["sha256"]) == 64 and result["throughput_mib_s"] > 0
    assert image_id("spark-ba63") == image_id("spark-2959") == result["dest_id_after"]
    rc, again = module("spark-ba63", "p2p_image_copy", {"image": IMAGE, "source_host": HEAD_FABRIC})
    assert rc == 0 and again["changed"] is False and again["transferred"] is False
    assert again["compared_by"] == "image id"


def test_missing_source_image_is_named():
    rc, result = module("spark-ba63", "p2p_image_copy", {"image": "lab/absent:1", "source_host": HEAD_FABRIC})
    assert rc != 0 and "image lab/absent:1 is not on the source 10.10.10.1" in result["msg"]


def test_hostile_image_reference_is_refused():
    rc, result = module("spark-ba63", "p2p_image_copy", {"image": "x; reboot", "source_host": HEAD_FABRIC})
    assert rc != 0 and "image 'x; reboot' is not allowed" in result["msg"]
