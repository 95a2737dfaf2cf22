#!/usr/bin/env bash
# Builds the lab node image (Debian bookworm, systemd, sshd, sudo, python3, docker.io) from debootstrap:
# no registry is reachable. Cached: rebuilt only when this script changes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=$here/cache
image=${LAB_NODE_IMAGE:-localhost/dgx-spark-lab-node}
mirror=${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
key=$(sha256sum "$0" | cut -c1-12)
tag=$image:$key

if podman image exists "$tag"; then
  echo "$tag"; exit 0
fi
rootfs=$cache/rootfs-$key
rm -rf "$rootfs"; mkdir -p "$cache"
echo "[lab] debootstrap bookworm into $rootfs (first build only)" >&2
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,openssh-server,sudo,python3,iproute2,iputils-ping,ca-certificates,procps,kmod,less \
  bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }

in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"; chmod +x "$rootfs/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
echo "[lab] installing docker.io, skopeo and tools in the node image" >&2
in_root apt-get install -y -qq --no-install-recommends docker.io skopeo rsync pigz netcat-openbsd curl jq \
  openssh-client iptables netplan.io open-iscsi nfs-common multipath-tools python3-apt \
  >"$cache/apt-node.log" 2>&1 || { tail -20 "$cache/apt-node.log" >&2; exit 1; }
in_root apt-get clean
# apt on a node reads only the repositories the roles add (the lab's, mounted): no mirror is asked at run time
rm -f "$rootfs/etc/apt/sources.list" "$rootfs"/etc/apt/sources.list.d/*
rm -rf "$rootfs"/var/lib/apt/lists/*
rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/etc/resolv.conf"

# The admin user (passwordless sudo) and one without sudo, for the preflight failure test.
in_root useradd -m -s /bin/bash -G docker spark
in_root useradd -m -s /bin/bash nosudo
echo 'spark ALL=(ALL) NOPASSWD:ALL' > "$rootfs/etc/sudoers.d/spark"; chmod 0440 "$rootfs/etc/sudoers.d/spark"
# Keys come from the lab's authorized_keys mount; sshd keys are made at first boot.
rm -f "$rootfs"/etc/ssh/ssh_host_*
cat > "$rootfs/etc/ssh/sshd_config.d/lab.conf" <<'CONF'
PasswordAuthentication no
AuthorizedKeysFile .ssh/authorized_keys /etc/dgx-spark-lab/authorized_keys
UseDNS no
CONF
cat > "$rootfs/etc/systemd/system/lab-ssh-keys.service" <<'UNIT'
[Unit]
Description=Generate sshd host keys for the lab node
Before=ssh.service
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
UNIT
in_root systemctl enable lab-ssh-keys.service ssh.service docker.service >/dev/null 2>&1
# inner dockerd: overlay2 on the node's /var/lib/docker volume, no iptables games with the host's podman rules
mkdir -p "$rootfs/etc/docker"
printf '{\n  "storage-driver": "overlay2",\n  "iptables": false,\n  "ip-masq": false,\n  "bridge": "none"\n}\n' \
  > "$rootfs/etc/docker/daemon.json"
# Each node gets its own machine-id at first boot (an image's would be shared, and with it every ID systemd derives
# from it). udev has no devices to manage in a container; left running (multipath-tools brings it) it would rewrite
# the veths' MAC addresses from that ID, the same on both nodes.
: > "$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
# units that make no sense in a container
for unit in systemd-resolved systemd-timesyncd getty@tty1 console-getty systemd-networkd systemd-udevd \
  systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger; do
  in_root systemctl mask "$unit" >/dev/null 2>&1 || true
done

echo "[lab] importing $tag" >&2
tar -C "$rootfs" -c . | podman import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$tag" >/dev/null
podman tag "$tag" "$image:latest"
rm -rf "$rootfs"
echo "$tag"
