#!/usr/bin/env bash
# A base for the execution environment where no registry is reachable: Debian bookworm from debootstrap with python3
# (the build adds python3-pip with apt-get, which stands in for dnf through the PKGMGR build argument). pip in the build trusts this host's CA bundle (PIP_CERT), as the lab's engine build does.
# Loaded into podman as localhost/dgx-spark-ee-base:<key>; prints that name. Rebuilt only when this script changes.
set -euo pipefail
cache=${DGX_SPARK_LAB_CACHE:-$HOME/.cache/dgx-spark-lab}
key=$(sha256sum "$0" | cut -c1-12)
image=localhost/dgx-spark-ee-base:$key
mirror=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ca_bundle=${LAB_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

if podman image exists "$image"; then
  printf '%s\n' "$image"; exit 0
fi
rootfs=$cache/ee-rootfs-$key
rm -rf "$rootfs"; mkdir -p "$cache"
echo "[lab] execution environment base: debootstrap (first build only)" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$rootfs" "$mirror" >"$cache/ee-debootstrap.log" 2>&1 \
  || { tail -20 "$cache/ee-debootstrap.log" >&2; exit 1; }
cp "$ca_bundle" "$rootfs/etc/ssl/build-ca.crt"
rm -rf "$rootfs/var/cache/apt/archives/"*.deb
tar -C "$rootfs" -c . | podman import --change 'ENV PIP_CERT=/etc/ssl/build-ca.crt' \
  --change 'ENV DEBIAN_FRONTEND=noninteractive' --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
rm -rf "$rootfs"
printf '%s\n' "$image"
