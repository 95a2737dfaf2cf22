#!/usr/bin/env bash
# The lab's training environment: a real virtualenv with torch 2.13.0+cpu (the local wheel) and numpy, built once
# with the node image's own Python into <cache>/train/venv. Every node mounts <cache>/train read-only at
# /opt/dgx-spark-lab/train (lab.sh), so the venv is where the inventory's tiny-regression job looks for it.
# Prints the directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${DGX_SPARK_LAB_CACHE:-$HOME/.cache/dgx-spark-lab}
dir=$cache/train
key=$(sha256sum "$0" | cut -c1-12)
wheels=${LAB_WHEELS:-/opt/wheels}
ca_bundle=${LAB_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
mkdir -p "$dir"
if [[ -f $dir/venv/.complete-$key ]]; then
  echo "$dir"; exit 0
fi
image=$("$here/../build_node_image.sh")
echo "[lab] training venv: torch 2.13.0+cpu and numpy (once)" >&2
rm -rf "$dir/venv" "$cache/train-pip"
# the node image has no ensurepip (Debian's python3-venv): pip itself comes as a wheel, run from the wheel
python3 -m pip download -q --no-deps --dest "$cache/train-pip" pip >"$cache/train-pip.log" 2>&1 \
  || { tail -20 "$cache/train-pip.log" >&2; exit 1; }
podman run --rm --network host -v "$dir:/opt/dgx-spark-lab/train" -v "$wheels:/wheels:ro" \
  -v "$cache/train-pip:/pip:ro" -v "$ca_bundle:/tmp/ca.crt:ro" "$image" sh -c '
    python3 -m venv --without-pip /opt/dgx-spark-lab/train/venv &&
    /opt/dgx-spark-lab/train/venv/bin/python3 "$(ls /pip/pip-*.whl)/pip" install -q --disable-pip-version-check \
      --no-cache-dir --cert /tmp/ca.crt --find-links /wheels pip "torch==2.13.0+cpu" numpy' >>"$cache/train-pip.log" 2>&1 \
  || { tail -20 "$cache/train-pip.log" >&2; exit 1; }
touch "$dir/venv/.complete-$key"
echo "$dir"
