#!/usr/bin/env bash
# Host fixes podman needs on this kind of machine, applied idempotently by lab.sh:
# - cgroup controllers still attached to the v2 hierarchy are moved to v1 mounts (podman 4 here runs cgroup v1);
# - a containers.conf whose default ulimits stay within this host's hard limits;
# - /dev/mqueue, which ansible-navigator asks for before it runs an execution environment with podman.
set -euo pipefail
conf_dir=${LAB_CONF_DIR:-$(cd "$(dirname "$0")" && pwd)/cache}

if [[ -r /sys/fs/cgroup/unified/cgroup.controllers ]]; then
  for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
    mkdir -p "/sys/fs/cgroup/$c"
    mountpoint -q "/sys/fs/cgroup/$c" || mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
  done
fi

mkdir -p /dev/mqueue "$conf_dir"
nofile=$(ulimit -Hn)
[[ $nofile == unlimited ]] && nofile=1048576
conf="$conf_dir/containers.conf"
want=$(cat <<CONF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]
CONF
)
[[ -f $conf && "$(cat "$conf")" == "$want" ]] || printf '%s\n' "$want" > "$conf"
echo "$conf"
