#!/usr/bin/env bash
# The base of the lab's TensorRT-LLM image double: Debian bookworm from debootstrap (no registry is reachable) with
# what NVIDIA's two-Spark TensorRT-LLM recipe relies on in its container - OpenMPI's mpirun and orted, mpi4py, sshd
# and ssh - plus python3-yaml for the extra-options file. lab/trtllm/Dockerfile adds the tool doubles on top.
# Cached as a docker-archive; prints its path. Rebuilt only when this script changes.
set -euo pipefail
cache=${DGX_SPARK_LAB_CACHE:-$HOME/.cache/dgx-spark-lab}
key=$(sha256sum "$0" | cut -c1-12)
image=localhost/trtllm-lab-base:$key
archive=$cache/images/trtllm-lab-base-$key.tar
mirror=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ -f $archive ]]; then
  printf '%s\n' "$archive"; exit 0
fi
rootfs=$cache/trtllm-rootfs-$key
rm -rf "$rootfs"; mkdir -p "$cache/images"
echo "[lab] TensorRT-LLM base image: debootstrap (first build only)" >&2
debootstrap --variant=minbase \
  --include=python3,python3-yaml,python3-mpi4py,openmpi-bin,openssh-server,openssh-client,procps,curl,ca-certificates \
  bookworm "$rootfs" "$mirror" >"$cache/trtllm-debootstrap.log" 2>&1 \
  || { tail -20 "$cache/trtllm-debootstrap.log" >&2; exit 1; }
# No host keys baked into the image: each container makes its own at start (ssh-keygen -A).
rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/etc/ssh/ssh_host_"*
tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
rm -f "$archive.tmp"
podman save --format docker-archive -o "$archive.tmp" "$image" >/dev/null
mv "$archive.tmp" "$archive"
podman rmi "$image" >/dev/null 2>&1 || true
rm -rf "$rootfs"
printf '%s\n' "$archive"
