"""p2p_image_copy between the lab nodes' real dockers over the fabric: copy, no-op, broken stream, retry."""

from __future__ import annotations

import json
import re
import time

import pytest
from labkit import async_job_files, fabric, lab, module, module_run, playbook, ssh

HEAD_FABRIC = fabric("10.10.10.1")
IMAGE = "lab/p2p-test:1"
IMAGE2 = "lab/p2p-test:2"  # IMAGE plus one small layer
IMAGE3 = "lab/p2p-test:3"  # IMAGE plus a layer that deletes, replaces a directory and links (whiteouts in the tar)
# 48 MiB of random data on top of busybox: large enough for many frames, built on the head's docker
BUILD = ("printf 'FROM lab/busybox\\nRUN dd if=/dev/urandom of=/blob bs=1M count=48 2>/dev/null\\n' "
         "| docker build -q --network host -t %s - >/dev/null")
# docker whose save runs at about 16 MiB/s: a copy long enough to show its progress
SLOW = """sudo tee /usr/local/bin/docker-slow >/dev/null <<'EOF'
#!/bin/sh
if [ "$1" = save ]; then
  docker "$@" | python3 -c 'import sys, time
while True:
    data = sys.stdin.buffer.read(1 << 20)
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    time.sleep(0.06)'
  exit 0
fi
exec docker "$@"
EOF
sudo chmod 755 /usr/local/bin/docker-slow"""
# docker whose first load fails (after reading its input), as a load without the held layers would
REFUSING_ONCE = """sudo tee /usr/local/bin/docker-refusing-once >/dev/null <<'EOF'
#!/bin/sh
if [ "$1" = load ] && [ ! -e /tmp/docker-refused ]; then
  cat >/dev/null; touch /tmp/docker-refused; echo 'Error: simulated load failure' >&2; exit 1
fi
exec docker "$@"
EOF
sudo chmod 755 /usr/local/bin/docker-refusing-once"""
# docker whose load leaves the tag on a different image with the same layers (a config field outside the compared
# ones changed), as a load of a config damaged in flight would
CONFIG_CHANGING = """sudo tee /usr/local/bin/docker-config-changing >/dev/null <<'EOF'
#!/bin/sh
if [ "$1" = load ]; then
  out=$(docker load) || exit 1
  echo "$out"
  tag=$(echo "$out" | sed -n 's/^Loaded image: //p' | head -n 1)
  printf 'FROM %s\\nEXPOSE 4321\\n' "$tag" | docker build -q --network host -t "$tag" - >/dev/null
  exit 0
fi
exec docker "$@"
EOF
sudo chmod 755 /usr/local/bin/docker-config-changing"""
TRUNCATING = ("printf '#!/bin/sh\\n[ \"$1\" = save ] && { docker \"$@\" | head -c 20000000; exit 0; }\\n"
              "exec docker \"$@\"\\n' | sudo tee /usr/local/bin/docker-truncating >/dev/null "
              "&& sudo chmod 755 /usr/local/bin/docker-truncating")

# docker whose save tags a second name on the image: an archive that would tag more than was asked for
EXTRA_TAG = ("printf '#!/bin/sh\\n[ \"$1\" = save ] && exec docker save \"$2\" lab/p2p-evil:1\\n"
             "exec docker \"$@\"\\n' | sudo tee /usr/local/bin/docker-extra-tag >/dev/null "
             "&& sudo chmod 755 /usr/local/bin/docker-extra-tag")
# a port scanner on the head: connects to the worker's listener port and hangs up, every 2 ms, for 60 s
SCANNER = fabric("nohup python3 -c 'import socket, time\nend = time.time() + 60\nwhile time.time() < end:\n"
                 "    try:\n        socket.create_connection((\"10.10.10.2\", %d), timeout=0.2).close()\n"
                 "    except OSError:\n        pass\n    time.sleep(0.002)' </dev/null >/dev/null 2>&1 & echo $! > "
                 "/tmp/scanner.pid")
SCAN_PORT = 47001


def image_id(node, image=IMAGE):
    out = ssh(node, "docker image inspect --format '{{.Id}}' %s" % image, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def fabric_ssh_connections():
    """The worker's SSH connections to the head over the fabric, by local address and port."""
    out = ssh("spark-ba63", "ss -Htn state established '( dport = :22 )' dst %s" % HEAD_FABRIC).stdout
    return [line.split()[2] for line in out.splitlines()]


def layers(node, image):
    return json.loads(ssh(node, "docker image inspect --format '{{json .RootFS.Layers}}' %s" % image).stdout)


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
        ssh(node, SLOW)
        ssh(node, REFUSING_ONCE)
        ssh(node, CONFIG_CHANGING)
        ssh(node, EXTRA_TAG)
    yield
    for node in ("spark-2959", "spark-ba63"):
        ssh(node, "docker image rm -f %s %s %s >/dev/null 2>&1; docker image prune -f >/dev/null; "
                  "sudo rm -f /usr/local/bin/docker-truncating /usr/local/bin/docker-slow /usr/local/bin/docker-refusing-once "
                  "/usr/local/bin/docker-config-changing /usr/local/bin/docker-extra-tag "
                  "/tmp/docker-refused" % (IMAGE, IMAGE2, IMAGE3), check=False)


def test_a_broken_stream_keeps_the_previous_image():
    old = image_id("spark-ba63")
    assert old and old != image_id("spark-2959")
    rc, result = module("spark-ba63", "p2p_image_copy",
                        {"image": IMAGE, "source_host": HEAD_FABRIC, "docker": "docker-truncating"})
    assert rc != 0 and "the image archive ended early" in result["msg"] and "Retry the task" in result["msg"], result
    assert image_id("spark-ba63") == old


def test_an_archive_that_tags_another_image_is_refused_before_it_loads():
    old = image_id("spark-ba63")
    ssh("spark-2959", "docker tag %s lab/p2p-evil:1" % IMAGE)
    try:
        rc, result = module("spark-ba63", "p2p_image_copy",
                            {"image": IMAGE, "source_host": HEAD_FABRIC, "docker": "docker-extra-tag"})
    finally:
        ssh("spark-2959", "docker image rm lab/p2p-evil:1 >/dev/null")
    assert rc != 0 and "tagged lab/p2p-evil:1, lab/p2p-test:1, not only lab/p2p-test:1" in result["msg"], result
    assert image_id("spark-ba63") == old and image_id("spark-ba63", "lab/p2p-evil:1") is None


def test_check_mode_reports_without_copying():
    rc, result = module("spark-ba63", "p2p_image_copy", {"image": IMAGE, "source_host": HEAD_FABRIC}, "--check")
    assert rc == 0 and result["changed"] is True and result["transferred"] is False
    assert image_id("spark-ba63") != image_id("spark-2959")


def test_copy_then_nothing_to_do_with_a_port_scan_going_on():
    ssh("spark-2959", SCANNER % SCAN_PORT)
    try:
        rc, result = module("spark-ba63", "p2p_image_copy", {"image": IMAGE, "source_host": HEAD_FABRIC,
                                                             "port": SCAN_PORT})
    finally:
        ssh("spark-2959", "kill $(cat /tmp/scanner.pid) 2>/dev/null; rm -f /tmp/scanner.pid", check=False)
    assert rc == 0 and result["changed"] is True and result["transferred"] is True, result
    # the scanner's connections came first and were dropped; the listener went on waiting for its sender
    assert result["refused_connections"] >= 1, result
    assert result["bytes"] > 48 << 20 and result["throughput_mib_s"] > 0
    assert re.match(r"^hmac-sha256:[0-9a-f]{64}$", result["checksum"]), result  # keyed by the token, both ends
    assert image_id("spark-ba63") == image_id("spark-2959") == result["dest_id_after"]
    after_copy = fabric_ssh_connections()
    rc, again = module("spark-ba63", "p2p_image_copy", {"image": IMAGE, "source_host": HEAD_FABRIC})
    assert rc == 0 and again["changed"] is False and again["transferred"] is False
    assert again["compared_by"] == "image id"
    # one SSH connection to the head carried the comparison, the job and the sender, then the next task's calls
    assert len(after_copy) == 1 and fabric_ssh_connections() == after_copy
    time.sleep(10 + 3)  # _ssh_share.PERSIST idle, and a margin
    assert fabric_ssh_connections() == []


def test_the_same_layers_under_another_config_are_copied_over():
    # the worker's tag moved to the image plus EXPOSE: the same layers and compared config fields, another image ID
    ssh("spark-ba63", "printf 'FROM %s\\nEXPOSE 4321\\n' | docker build -q --network host -t %s - >/dev/null"
        % (IMAGE, IMAGE))
    assert image_id("spark-ba63") != image_id("spark-2959")
    rc, result = module("spark-ba63", "p2p_image_copy", {"image": IMAGE, "source_host": HEAD_FABRIC})
    assert rc == 0 and result["transferred"] is True and result["compared_by"] == "image id", result
    assert image_id("spark-ba63") == image_id("spark-2959")
    assert result["bytes"] < 1 << 20  # every layer was held: the config and the manifest crossed


def test_a_new_version_sends_only_its_new_layer():
    # runs after the copy above: the worker holds IMAGE, whose layers are IMAGE2's base
    ssh("spark-2959", "printf 'FROM %s\\nRUN dd if=/dev/urandom of=/top bs=1M count=2 2>/dev/null\\n' "
                      "| docker build -q --network host -t %s - >/dev/null" % (IMAGE, IMAGE2))
    base = layers("spark-2959", IMAGE)
    assert layers("spark-2959", IMAGE2)[:len(base)] == base
    rc, result = module("spark-ba63", "p2p_image_copy", {"image": IMAGE2, "source_host": HEAD_FABRIC})
    assert rc == 0 and result["transferred"] is True, result
    assert result["layers_left_out"] == sorted(base) and result["bytes_left_out"] > 48 << 20
    # docker 20.10's legacy layout: each layer directory's json placed it in the chain, nothing was hashed
    assert result["layers_hashed"] == 0
    assert 2 << 20 < result["bytes"] < 4 << 20  # the new layer and the metadata, not the 48 MiB below it
    assert image_id("spark-ba63", IMAGE2) == image_id("spark-2959", IMAGE2) == result["dest_id_after"]
    assert ssh("spark-ba63", "docker run --rm %s busybox wc -c /top /blob" % IMAGE2).stdout.split()[:4:2] == \
        ["2097152", "50331648"]


def test_a_failed_load_without_the_held_layers_is_redone_with_every_layer():
    ssh("spark-ba63", "docker image rm -f %s >/dev/null; rm -f /tmp/docker-refused" % IMAGE2)
    rc, result, stderr = module_run("spark-ba63", "p2p_image_copy", {
        "image": IMAGE2, "source_host": HEAD_FABRIC, "docker": "docker-refusing-once"})
    assert rc == 0 and result["transferred"] is True, result
    assert "copying every layer" in " ".join(result.get("warnings", []) + [stderr])
    assert "simulated load failure" in " ".join(result.get("warnings", []) + [stderr])
    assert result["layers_left_out"] == [] and result["bytes"] > 48 << 20  # the second attempt sent it all
    assert image_id("spark-ba63", IMAGE2) == image_id("spark-2959", IMAGE2)


def test_a_long_copy_shows_its_progress():
    ssh("spark-ba63", "docker image rm -f %s %s >/dev/null; docker image prune -f >/dev/null" % (IMAGE, IMAGE2))
    jobs_before = async_job_files("spark-ba63")
    rc, result, stderr = module_run("spark-ba63", "p2p_image_copy", {
        "image": IMAGE, "source_host": HEAD_FABRIC, "docker": "docker-slow", "progress_interval": 0.5,
        "skip_present_layers": False})  # every layer, whatever else the worker holds: the size is known
    assert rc == 0 and result["transferred"] is True and result["seconds"] > 2, result
    lines = [line for line in stderr.splitlines() if line.startswith("spark-ba63: %s " % IMAGE)]
    assert lines, stderr
    mib = [float(line.split()[2]) for line in lines]
    assert mib == sorted(mib) and 0 < mib[-1] <= 50 and "of ~" in lines[-1] and "MiB/s" in lines[-1], lines
    assert image_id("spark-ba63") == image_id("spark-2959")
    # neither the progress file nor the async job's own file (j<id>.<pid>) stays behind
    assert ssh("spark-ba63", "ls ~/.ansible_async | grep -c p2p_image_copy", check=False).stdout.strip() == "0"
    assert async_job_files("spark-ba63") == jobs_before


def test_the_sender_reads_the_head_s_layer_store_as_root():
    # runs after the progress test: the worker holds IMAGE, the base of IMAGE3
    ssh("spark-2959", "printf 'FROM %s\\nRUN mkdir -p /d/sub && echo a > /d/a && echo b > /d/sub/b && ln /d/a /d/hard "
                      "&& ln -s /d/a /d/sym\\nRUN rm /blob /d/a && rm -rf /d/sub && mkdir /d/sub && echo n > /d/sub/new\\n' "
                      "| docker build -q --network host -t %s - >/dev/null" % (IMAGE, IMAGE3))
    listing = "docker run --rm %s sh -c 'ls -R / | grep -c blob; cat /d/hard /d/sub/new; ls /d/sub; readlink /d/sym'"
    expected = ssh("spark-2959", listing % IMAGE3, check=False).stdout
    for skip_present_layers in (True, False):
        ssh("spark-ba63", "docker image rm -f %s >/dev/null 2>&1" % IMAGE3, check=False)
        rc, result = module("spark-ba63", "p2p_image_copy", {"image": IMAGE3, "source_host": HEAD_FABRIC,
                                                             "source_become": True,
                                                             "skip_present_layers": skip_present_layers})
        assert rc == 0 and result["export"] == "layer store" and result["layers_hashed"] == 0, result
        assert re.match(r"^hmac-sha256:[0-9a-f]{64}$", result["checksum"])
        # docker load checked each rebuilt layer tar against the image's diff IDs: the same image ID
        assert image_id("spark-ba63", IMAGE3) == image_id("spark-2959", IMAGE3) == result["dest_id_after"]
        assert ssh("spark-ba63", listing % IMAGE3, check=False).stdout == expected == "0\na\nn\nnew\n/d/a\n"
        if skip_present_layers:
            assert result["layers_left_out"] == sorted(layers("spark-2959", IMAGE)) and result["bytes"] < 1 << 20
        else:
            assert result["layers_left_out"] == [] and result["bytes"] > 48 << 20


def test_a_layer_store_that_does_not_match_its_image_fails_the_load():
    # one byte of the top layer's file changed in the head's overlay2 diff: the rebuilt tar is not the diff ID
    ssh("spark-ba63", "docker image rm -f %s >/dev/null 2>&1" % IMAGE3, check=False)
    upper = ssh("spark-2959", "docker image inspect --format '{{.GraphDriver.Data.UpperDir}}' %s" % IMAGE3).stdout.strip()
    ssh("spark-2959", "printf X | sudo dd of=%s/d/sub/new bs=1 count=1 conv=notrunc status=none" % upper)
    rc, result = module("spark-ba63", "p2p_image_copy", {"image": IMAGE3, "source_host": HEAD_FABRIC,
                                                         "source_become": True})
    assert rc != 0 and "docker load failed" in result["msg"] and "Retry the task" in result["msg"], result
    assert image_id("spark-ba63", IMAGE3) is None
    ssh("spark-2959", "docker image rm -f %s >/dev/null" % IMAGE3)


def test_a_loaded_image_other_than_the_source_s_is_refused_and_untagged():
    # both nodes use overlay2: the same image has the same ID (the SHA-256 of its config), whatever else matches
    ssh("spark-ba63", "docker image rm -f %s >/dev/null 2>&1; docker image prune -f >/dev/null" % IMAGE, check=False)
    rc, result = module("spark-ba63", "p2p_image_copy", {"image": IMAGE, "source_host": HEAD_FABRIC,
                                                         "docker": "docker-config-changing"})
    assert rc != 0 and "does not match the source" in result["msg"], result
    assert "the destination has no such image" in result["msg"] and image_id("spark-ba63") is None


def test_missing_source_image_is_named():
    rc, result = module("spark-ba63", "p2p_image_copy", {"image": "lab/absent:1", "source_host": HEAD_FABRIC})
    assert rc != 0 and fabric("image lab/absent:1 is not on the source 10.10.10.1") in result["msg"]


def test_hostile_image_reference_is_refused():
    rc, result = module("spark-ba63", "p2p_image_copy", {"image": "x; reboot", "source_host": HEAD_FABRIC})
    assert rc != 0 and "image 'x; reboot' is not allowed" in result["msg"]
