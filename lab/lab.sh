#!/usr/bin/env bash
# The lab: two simulated DGX Sparks (spark-2959 head, spark-ba63 worker; LAB_NODES=3 or 4 adds spark-lab3 and
# spark-lab4) as privileged podman containers with systemd, sshd, sudo, their own dockerd, a management network and
# the fabric twins (MTU 9000, real interface names, one subnet each; LAB_TOPOLOGY=ring cables three or four nodes
# in a ring on both QSFP ports).
#   lab.sh up | down | status | engine | model | trtllm | train | ee | reboot | shell NODE | scenario NODE SCENARIO
#          | thaw NODE | link-rate NODE MBIT
# LAB_INSTANCE=N (2 to 9) is another lab beside the first (make test runs the tests that need neither the engine
# image nor Kubernetes, and those of more nodes, on the second): its own containers, networks, volumes, state and SSH
# key, management 10.59.(62+N).0/24 and fabric 10.(10N).x.0/24 where the first has 10.10.x (podman refuses a subnet two
# networks share).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cache=$here/cache
instance=${LAB_INSTANCE:-1}
[[ $instance =~ ^[1-9]$ ]] || { echo "[lab] error: LAB_INSTANCE is 1 to 9, got '$instance'" >&2; exit 2; }
suffix=""; ((instance == 1)) || suffix=$instance
prefix=dgxspark-lab$suffix
mgmt_net=10.59.$((62 + instance))
fabric_net=10.$((10 * instance))
# LAB_NODES (2 to 4) simulated Sparks, head first. The fabric networks are bridges (docs/topologies.md): with
# LAB_TOPOLOGY=switch (the default) every node's port-1 twins on the same two subnets, two nodes being the direct pair
# as cabled today; with LAB_TOPOLOGY=ring (3 or 4 nodes) one bridge per twin of each link, node i's port 1 to node
# i+1's port 0, each link on its own two subnets, as fabric_plan('ring') plans them.
all_nodes=(spark-2959 spark-ba63 spark-lab3 spark-lab4)
node_count=${LAB_NODES:-2}
topology=${LAB_TOPOLOGY:-switch}
if [[ ${1:-} != up ]]; then  # the other commands act on the lab that is up, whatever its size and cabling
  if [[ -z ${LAB_NODES:-} ]]; then
    for count in 3 4; do podman container exists "$prefix-${all_nodes[count - 1]}" 2>/dev/null && node_count=$count; done
  fi
  [[ -n ${LAB_TOPOLOGY:-} ]] || ! podman network exists "$prefix-link0t0" 2>/dev/null || topology=ring
fi
[[ $node_count =~ ^[2-4]$ ]] || { echo "[lab] error: LAB_NODES is 2 to 4, got '$node_count'" >&2; exit 2; }
[[ $topology == switch || ($topology == ring && $node_count -ge 3) ]] ||
  { echo "[lab] error: LAB_TOPOLOGY is switch, or ring with LAB_NODES 3 or 4; got '$topology' with $node_count" >&2; exit 2; }
nodes=("${all_nodes[@]:0:$node_count}")
scenarios=(healthy degraded_link no_gpu nccl_slow nccl_hang k8s_api_down wol_unsupported)
doubles=(nvidia-smi ibdev2netdev ibv_devinfo show_gids rdma ethtool ib_write_bw ib_write_lat mpirun lab-link-wol)
nccl_tests=(all_reduce_perf all_gather_perf)

# node -> management address
declare -A mgmt_ip
for index in "${!all_nodes[@]}"; do mgmt_ip[${all_nodes[$index]}]=$mgmt_net.$((11 + index)); done
# QSFP port -> its twins' netdevs, PCI domain 0 first (module_utils/_topology.py)
port_twins=([0]="enp1s0f0np0 enP2p1s0f0np0" [1]="enp1s0f1np1 enP2p1s0f1np1")
# every network either cabling can use -> subnet gateway extra-options (gateways at .254 so .1/.2 stay the nodes')
fabric_opts="--internal -o mtu=9000"
declare -A net_args=(
  [$prefix-mgmt]="--subnet $mgmt_net.0/24 --gateway $mgmt_net.1"
  [$prefix-fab0]="--subnet $fabric_net.10.0/24 --gateway $fabric_net.10.254 $fabric_opts"
  [$prefix-fab1]="--subnet $fabric_net.11.0/24 --gateway $fabric_net.11.254 $fabric_opts"
)
for link in 0 1 2 3; do  # ring link i, twin t: 10.10.(10 + 2i + t).0/24 (the first instance's)
  for twin in 0 1; do
    net_args[$prefix-link${link}t$twin]="--subnet $fabric_net.$((10 + 2 * link + twin)).0/24 --gateway $fabric_net.$((10 + 2 * link + twin)).254 $fabric_opts"
  done
done
# the networks this lab's cabling uses
lab_networks() {
  local link twin
  echo "$prefix-mgmt"
  if [[ $topology == ring ]]; then
    for ((link = 0; link < node_count; link++)); do for twin in 0 1; do echo "$prefix-link${link}t$twin"; done; done
  else
    printf '%s\n' "$prefix-fab0" "$prefix-fab1"
  fi
}
# podman --network options cabling a node's fabric twins: node i is host i+1 of both switch subnets; in a ring it is
# the port-1 end (.1) of link i and the port-0 end (.2) of link i-1
fabric_network_opts() {
  local index=$1 twin netdevs
  if [[ $topology != ring ]]; then
    read -ra netdevs <<<"${port_twins[1]}"
    for twin in 0 1; do
      echo "--network=$prefix-fab$twin:ip=$fabric_net.1$twin.$((index + 1)),interface_name=${netdevs[twin]}"
    done
    return
  fi
  local -a ends=("1 $index 1" "0 $(((index - 1 + node_count) % node_count)) 2")
  local end port link host
  for end in "${ends[@]}"; do
    read -r port link host <<<"$end"
    read -ra netdevs <<<"${port_twins[$port]}"
    for twin in 0 1; do
      echo "--network=$prefix-link${link}t$twin:ip=$fabric_net.$((10 + 2 * link + twin)).$host,interface_name=${netdevs[twin]}"
    done
  done
}

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] error: %s\n' "$*" >&2; exit 1; }
container() { echo "$prefix-$1"; }
known_node() { [[ " ${nodes[*]} " == *" $1 "* ]] || die "unknown node '$1' (nodes: ${nodes[*]})"; }
# The lab's SSH key lives outside the checkout, where every inventory and test finds it under one name.
state=${DGX_SPARK_LAB_STATE:-$HOME/.local/state/dgx-spark-lab}${suffix:+-$suffix}
ssh_key=$state/id_ed25519
ssh_opts=(-i "$ssh_key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR -o ConnectTimeout=3)

podman_env() {
  export CONTAINERS_CONF
  CONTAINERS_CONF=$("$here/host_prep.sh")
}

ensure_ssh_key() {
  mkdir -p "$state"; chmod 700 "$state"
  [[ -f $ssh_key ]] || ssh-keygen -q -t ed25519 -N '' -C dgx-spark-lab -f "$ssh_key"
  cmp -s "$ssh_key.pub" "$state/authorized_keys" || cp "$ssh_key.pub" "$state/authorized_keys"
}

# Ansible keeps SSH masters (ControlPersist) for the lab here (inventory/lab.yml). A master outlives `down`, and
# after the next `up` it would multiplex onto a connection to a container that no longer exists: close them all.
control_dir=$state/cp
close_ssh_masters() {
  local sock
  for sock in "$control_dir"/*; do
    [[ -S $sock ]] || continue
    ssh -o ControlPath="$sock" -O exit lab-node >/dev/null 2>&1 || true
    rm -f "$sock"
  done
}

# Recabling (switch <-> ring): the other cabling's networks share its subnets, so they go first, and with them the
# nodes still on them (start_node recreates this lab's nodes; their disks, the docker volumes, stay).
retire_other_cabling() {
  local net wanted node name
  local -a retired=()
  wanted=" $(lab_networks | tr '\n' ' ') "
  for net in "${!net_args[@]}"; do
    [[ $wanted != *" $net "* ]] && podman network exists "$net" && retired+=("$net")
  done
  [[ ${#retired[@]} -gt 0 ]] || return 0
  for node in "${all_nodes[@]}"; do  # shut down together, as before moving the cables
    name=$(container "$node")
    podman container exists "$name" || continue
    [[ " $(podman inspect -f '{{range $net, $unused := .NetworkSettings.Networks}}{{$net}} {{end}}' "$name") " == \
       *" ${retired[0]} "* ]] && { podman rm -f -t 10 "$name" >/dev/null; log "$node removed for recabling"; } &
  done
  wait
  for net in "${retired[@]}"; do
    podman network rm -f "$net" >/dev/null
    log "network $net removed (recabled as $topology)"
  done
}

ensure_networks() {
  local net
  for net in $(lab_networks); do
    podman network exists "$net" && continue
    # shellcheck disable=SC2086  # the option string is ours, split on purpose
    podman network create ${net_args[$net]} "$net" >/dev/null
    log "network $net created"
  done
}

# The lab's Kubernetes parts (lab/k8s/build.py: the package repositories of the doubles, their Python libraries, the
# stand-in manifests and chart), built once into the lab cache; every node mounts them at /opt/dgx-spark-lab/k8s.
k8s_parts() { built python3 "$here/k8s/build.py"; }

# What lab.sh builds into the caches (node image, Kubernetes parts, engine, TRT-LLM base, training venv), one build at
# a time: two lab instances may come up together.
built() { mkdir -p "$cache"; flock "$cache/.build.lock" "$@"; }

# The training environment (lab/train/build_train_env.sh) lives in the lab cache, outside the checkout; every node
# mounts its directory, empty until `lab.sh train` builds the venv into it.
train_dir=${DGX_SPARK_LAB_CACHE:-$HOME/.cache/dgx-spark-lab}/train

mount_source() { podman inspect -f "{{range .Mounts}}{{if eq .Destination \"$2\"}}{{.Source}}{{end}}{{end}}" "$1"; }

# the networks a node is on: management and its fabric twins'
node_networks() {
  echo "$prefix-mgmt"
  fabric_network_opts "$1" | sed 's/^--network=\([^:]*\):.*/\1/'
}

start_node() {
  local node=$1 k8s=$2 name image owner index
  name=$(container "$node")
  for index in "${!all_nodes[@]}"; do [[ ${all_nodes[$index]} == "$node" ]] && break; done
  if [[ "$(podman inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" == true ]]; then
    owner=$(mount_source "$name" /opt/dgx-spark-lab/bin)
    if ! podman exec "$name" true >/dev/null 2>&1; then
      # podman's record outlived the process (host restarted under it): nothing to keep
      log "$node is marked running but does not answer; recreating it"
    elif [[ ! -d $owner ]]; then
      log "$node belongs to a checkout that no longer exists ($owner); recreating it"
    elif [[ $owner != "$here/doubles" ]]; then
      die "$node is running from another checkout ($owner); run its lab.sh down first"
    elif [[ $(mount_source "$name" /opt/dgx-spark-lab/k8s) != "$k8s" ]]; then
      log "$node mounts older Kubernetes parts; recreating it"
    elif [[ $(mount_source "$name" /opt/dgx-spark-lab/train) != "$train_dir" ]]; then
      log "$node does not mount the training environment; recreating it"
    elif [[ $(podman inspect -f '{{range $net, $unused := .NetworkSettings.Networks}}{{println $net}}{{end}}' "$name" |
              grep . | sort) != "$(node_networks "$index" | sort)" ]]; then
      log "$node is cabled for another topology; recreating it"
    else
      return 0
    fi
  fi
  podman rm -f "$name" >/dev/null 2>&1 || true
  image=$(built "$here/build_node_image.sh")
  local -a fabric_opts_node
  mapfile -t fabric_opts_node < <(fabric_network_opts "$index")
  # ping_group_range as Ubuntu sets it: unprivileged ping (jumbo, don't fragment) works as on a Spark
  podman run -d --name "$name" --hostname "$node" --privileged --systemd=always \
    --label dgx-spark-lab=$instance --sysctl net.ipv4.ping_group_range="0 2147483647" \
    --network "$prefix-mgmt:ip=${mgmt_ip[$node]}" \
    "${fabric_opts_node[@]}" \
    -v "$prefix-$node-docker:/var/lib/docker" \
    -v "$here/doubles:/opt/dgx-spark-lab/bin:ro" \
    -v "$repo/tests/fixtures:/opt/dgx-spark-lab/fixtures:ro" \
    -v "$k8s:/opt/dgx-spark-lab/k8s:ro" \
    -v "$train_dir:/opt/dgx-spark-lab/train:ro" \
    -v "$state/authorized_keys:/etc/dgx-spark-lab/authorized_keys:ro" \
    "$image" >/dev/null
  log "$node started"
}

install_doubles() {
  # one exec per node (each costs ~0.15 s here): every tool's link to the double, the default scenario
  # shellcheck disable=SC2016  # the script expands its own arguments
  podman exec "$(container "$1")" sh -c '
    for tool in $1; do ln -sfn /opt/dgx-spark-lab/bin/spark-double "/usr/local/bin/$tool"; done
    mkdir -p /opt/nccl-tests/build
    for tool in $2; do ln -sfn /opt/dgx-spark-lab/bin/spark-double "/opt/nccl-tests/build/$tool"; done
    test -s /etc/dgx-spark-lab/scenario || echo healthy > /etc/dgx-spark-lab/scenario' sh "${doubles[*]}" "${nccl_tests[*]}"
}

# Sleep and wake (lab/power.py): logind offers suspend (the node's /sys/power/state lists it), systemd-suspend.service
# asks the lab host to freeze the node, and at boot the node applies .link WakeOnLan= as udev does.
install_power() {
  podman exec -i "$(container "$1")" sh -s <<'SCRIPT'
set -e
mkdir -p /etc/systemd/system/systemd-suspend.service.d
cat >/etc/systemd/system/systemd-suspend.service.d/dgx-spark-lab.conf <<'UNIT'
# The lab's suspend: lab/doubles/lab-suspend asks lab/power.py on the lab host to freeze this node.
[Service]
ExecStart=
ExecStart=/opt/dgx-spark-lab/bin/lab-suspend
UNIT
cat >/etc/systemd/system/dgx-spark-lab-power.service <<'UNIT'
[Unit]
Description=Lab power: suspend offered to logind, Wake-on-LAN from .link files applied (udev's part)
Before=systemd-logind.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'mkdir -p /run/dgx-spark-lab && echo "freeze mem" >/run/dgx-spark-lab/power-state && mountpoint -q /sys/power/state || mount --bind /run/dgx-spark-lab/power-state /sys/power/state'
ExecStart=/usr/local/bin/lab-link-wol

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
if ! systemctl is-active -q dgx-spark-lab-power.service; then
  systemctl enable --now dgx-spark-lab-power.service >/dev/null 2>&1
  systemctl restart systemd-logind  # it read /sys/power/state when it started: suspend was not offered then
fi
SCRIPT
}

# The listener that freezes nodes asking to sleep and thaws them on a magic packet (lab/power.py).
power_pidfile=$state/power.pid
uplink=dgxlab$suffix-uplink
export DGX_SPARK_LAB_PREFIX=$prefix  # power.py's name for the nodes' containers
power_running() { [[ -f $power_pidfile ]] && kill -0 "$(cat "$power_pidfile")" 2>/dev/null; }
start_power() {
  local bridge
  bridge=$(podman network inspect -f '{{.NetworkInterface}}' "$prefix-mgmt")
  # The controller's own cable to the LAN's switch: the bridge keeps its carrier while every node sleeps (links
  # down), so a magic packet still goes out on it as it would on a real LAN.
  ip link show "$uplink" >/dev/null 2>&1 || ip link add "$uplink" type veth peer name "${uplink}p"
  ip link set "$uplink" master "$bridge" up
  ip link set "${uplink}p" up
  power_running && return 0
  setsid python3 "$here/power.py" serve "$state/power" "$bridge" "${nodes[@]}" >>"$state/power.log" 2>&1 </dev/null &
  echo $! >"$power_pidfile"
}
stop_power() {
  power_running && kill "$(cat "$power_pidfile")" 2>/dev/null
  rm -f "$power_pidfile"
  ip link del "$uplink" 2>/dev/null || true
}

# A tiny image in each node's docker (no registry is reachable): busybox, for smoke tests and image copies.
ensure_smoke_image() {
  local node=$1 name dir
  name=$(container "$node")
  podman exec "$name" docker image inspect lab/busybox:latest >/dev/null 2>&1 && return 0
  dir=$(mktemp -d)
  mkdir -p "$dir/bin"
  cp /bin/busybox "$dir/bin/busybox"
  for applet in sh ls cat echo sleep hostname ip wget nc; do ln -s busybox "$dir/bin/$applet"; done
  tar -C "$dir" -c . | podman exec -i "$name" docker import -c 'CMD ["/bin/sh"]' - lab/busybox:latest >/dev/null
  rm -rf "$dir"
}

wait_ready() {
  local node=$1 name deadline
  name=$(container "$node")
  deadline=$((SECONDS + 120))
  until ssh "${ssh_opts[@]}" "spark@${mgmt_ip[$node]}" true 2>/dev/null; do
    ((SECONDS < deadline)) || die "$node: sshd did not answer on ${mgmt_ip[$node]} within 120 s"
    sleep 1
  done
  until podman exec "$name" docker info >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$node: dockerd did not start within 120 s (podman exec $name journalctl -u docker)"
    sleep 1
  done
}

# The head serves the stand-in manifests and chart where the lab inventory's k8s_cluster_artifacts point.
ensure_artifact_server() {
  local name
  name=$(container "${nodes[0]}")
  podman exec "$name" systemctl is-active --quiet lab-k8s-artifacts && return 0
  podman exec "$name" systemd-run --quiet --unit lab-k8s-artifacts python3 -m http.server 8089 --bind 127.0.0.1 \
    --directory /opt/dgx-spark-lab/k8s/artifacts
}

cmd_up() {
  local start=$SECONDS node k8s
  podman_env
  ensure_ssh_key
  close_ssh_masters
  built "$here/build_node_image.sh" >/dev/null
  k8s=$(k8s_parts)
  mkdir -p "$train_dir"
  retire_other_cabling
  ensure_networks
  for node in "${nodes[@]}"; do start_node "$node" "$k8s"; done
  # a node kept running across a recabling has a new peer behind an old address: its links went down and up on a
  # real Spark, which forgets the neighbours; here the bridges stayed up
  for node in "${nodes[@]}"; do podman exec "$(container "$node")" ip neigh flush all >/dev/null; done
  local -a preparing=()
  for node in "${nodes[@]}"; do  # the nodes boot together, each made ready on its own
    (install_doubles "$node"; install_power "$node"; wait_ready "$node"; ensure_smoke_image "$node") &
    preparing+=($!)
  done
  for node in "${preparing[@]}"; do wait "$node" || die "a node did not come up (its error is above)"; done
  start_power
  ensure_artifact_server
  log "up in $((SECONDS - start)) s: ssh -i $ssh_key $(for node in "${nodes[@]}"; do printf 'spark@%s (%s) ' "${mgmt_ip[$node]}" "$node"; done)"
}

# Both nodes restart at once as after a power cut: every process in them ends, systemd boots them again (their disks,
# the docker volumes, stay). Returns once SSH and docker answer; what the nodes start by themselves is theirs.
cmd_reboot() {
  local start=$SECONDS node
  podman_env
  close_ssh_masters
  for node in "${nodes[@]}"; do podman container exists "$(container "$node")" || die "the lab is not up (lab.sh up)"; done
  for node in "${nodes[@]}"; do podman restart -t 10 "$(container "$node")" >/dev/null & done
  wait
  for node in "${nodes[@]}"; do wait_ready "$node"; done
  ensure_artifact_server
  log "both nodes restarted in $((SECONDS - start)) s"
}

# The head's container, which must be up
up_head() {
  local name
  name=$(container "${nodes[0]}")
  podman container exists "$name" || die "the lab is not up (lab.sh up)"
  echo "$name"
}

# An image archive (cache) loaded into the head's docker once per lab, tagged under the lab's name.
load_into_head() {
  local archive=$1 image=$2 tag=$3 name
  name=$(up_head)
  if ! podman exec "$name" docker image inspect "$image" >/dev/null 2>&1; then
    log "loading $image into ${nodes[0]}'s docker (once per lab)"
    podman exec -i "$name" docker load <"$archive" >/dev/null
  fi
  podman exec "$name" docker tag "$image" "$tag"
}

# The serving engine where a real Spark has its image and weights after a pull and a download: on the head only.
# The model_serving role copies both to the worker (p2p_image_copy, weight_sync) as it would on the real pair.
# `lab.sh model` puts only the tiny model there, for the tests that serve it with another image (TRT-LLM's double).
engine_tag=dgx-spark-lab/vllm:cpu
tiny_model=/home/spark/models/tiny-llama
engine_build() { built "$here/engine/build_engine_image.sh" | paste -sd' '; }  # "archive model_dir", both cached
put_model() {
  local name
  name=$(up_head)
  podman exec "$name" test -f "$tiny_model/config.json" && return
  podman exec "$name" mkdir -p "$(dirname "$tiny_model")"
  podman cp "$1" "$name:$tiny_model"
  podman exec "$name" chown -R spark:spark "$(dirname "$tiny_model")"
}
cmd_model() {
  local archive model
  podman_env
  read -r archive model < <(engine_build)
  put_model "$model"
  log "$tiny_model ready on ${nodes[0]}"
}
cmd_engine() {
  local archive model key
  podman_env
  read -r archive model < <(engine_build)
  key=$(basename "$archive" .tar); key=${key##*-}
  load_into_head "$archive" "localhost/vllm-lab:$key" "$engine_tag"
  put_model "$model"
  log "engine $engine_tag and $tiny_model ready on ${nodes[0]}"
}

# The TensorRT-LLM image double on the head (lab/trtllm): its base from debootstrap, the tool doubles built on it
# by the head's docker with the recorded trtllm output. Needs the tiny model (lab.sh model) to serve anything.
trtllm_tag=dgx-spark-lab/trtllm:double
cmd_trtllm() {
  local archive key context
  podman_env
  archive=$(built "$here/trtllm/build_base_image.sh")
  key=$(basename "$archive" .tar); key=${key##*-}
  load_into_head "$archive" "localhost/trtllm-lab-base:$key" dgx-spark-lab/trtllm-base
  context=$(mktemp -d)
  cp "$here/trtllm/Dockerfile" "$here/trtllm/trtllm_double.py" "$context/"
  cp -r "$repo/tests/fixtures/trtllm" "$context/recorded"
  tar -C "$context" -c . | podman exec -i "$(container "${nodes[0]}")" docker build -q -t "$trtllm_tag" - >/dev/null
  rm -rf "$context"
  log "TensorRT-LLM double $trtllm_tag ready on ${nodes[0]}"
}

cmd_down() {
  local node name net
  podman_env
  close_ssh_masters
  stop_power
  local -a removing=()
  for node in "${all_nodes[@]}"; do  # whatever LAB_NODES the lab came up with; the nodes shut down together
    name=$(container "$node")
    python3 "$here/power.py" thaw "$state/power" "$node"  # a sleeping node wakes to be taken down
    (
      if podman container exists "$name"; then
        # inner containers first, so their mounts and cgroups go with them
        podman exec "$name" sh -c 'ids=$(docker ps -aq 2>/dev/null); [ -z "$ids" ] || docker rm -f $ids >/dev/null' || true
        podman rm -f -t 20 "$name" >/dev/null
        log "$node removed"
      fi
      podman volume rm -f "$prefix-$node-docker" >/dev/null 2>&1 || true
    ) &
    removing+=($!)
  done
  for node in "${removing[@]}"; do wait "$node"; done
  for net in "${!net_args[@]}"; do
    podman network exists "$net" && podman network rm -f "$net" >/dev/null
  done
  log "down"
}

cmd_status() {
  local node name state
  podman_env
  for node in "${nodes[@]}"; do
    name=$(container "$node")
    state=$(podman inspect -f '{{.State.Status}}' "$name" 2>/dev/null || echo absent)
    if [[ $state == running ]]; then
      printf '%-11s %-8s mgmt %-12s ssh %-4s scenario %s\n' "$node" "$state" "${mgmt_ip[$node]}" \
        "$(ssh "${ssh_opts[@]}" "spark@${mgmt_ip[$node]}" true 2>/dev/null && echo ok || echo down)" \
        "$(podman exec "$name" cat /etc/dgx-spark-lab/scenario 2>/dev/null || echo '?')"
    else
      printf '%-11s %s\n' "$node" "$state"
    fi
  done
}

cmd_scenario() {
  local node=${1:-} scenario=${2:-}
  known_node "$node"
  [[ " ${scenarios[*]} " == *" $scenario "* ]] || die "unknown scenario '$scenario' (scenarios: ${scenarios[*]})"
  podman_env
  printf '%s\n' "$scenario" | podman exec -i "$(container "$node")" tee /etc/dgx-spark-lab/scenario >/dev/null
  log "$node: scenario $scenario"
}

# A node's fabric egress capped at MBIT Mbit/s on both twins (0: the cap removed), so a benchmark can make the links
# the bottleneck, as they are between real Sparks; here every node shares one machine's CPUs and memory instead.
cmd_link_rate() {
  local node=${1:-} rate=${2:-} pid dev
  known_node "$node"
  [[ $rate =~ ^[0-9]{1,6}$ ]] || die "link-rate needs Mbit/s as a number (0 removes the cap), got '$rate'"
  podman_env
  pid=$(podman inspect -f '{{.State.Pid}}' "$(container "$node")")
  # the node's own links (its network namespace; /sys/class/net would be the host's, the mount namespace is not entered)
  for dev in $(nsenter -t "$pid" -n ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' \
                 | grep -E '^en(p|P2p)1s0f[01]np[01]$'); do
    if [[ $rate == 0 ]]; then
      nsenter -t "$pid" -n tc qdisc del dev "$dev" root 2>/dev/null || true
    else
      nsenter -t "$pid" -n tc qdisc replace dev "$dev" root tbf rate "${rate}mbit" burst 256kb latency 100ms
    fi
  done
  if [[ $rate == 0 ]]; then log "$node: fabric egress uncapped"; else log "$node: fabric egress capped at $rate Mbit/s"; fi
}

# torch for the training jobs: the venv built once into the directory every node mounts.
cmd_train() {
  podman_env
  built "$here/train/build_train_env.sh" >/dev/null
  log "training venv ready on every node at /opt/dgx-spark-lab/train/venv"
}

cmd_thaw() {
  local node=${1:-}
  known_node "$node"
  podman_env
  python3 "$here/power.py" thaw "$state/power" "$node"
}

cmd_shell() {
  local node=${1:-}
  known_node "$node"
  podman_env
  exec podman exec -it "$(container "$node")" bash -l
}

# The execution environment (execution-environment.yml) built as `make ee` builds it, where no registry and no Galaxy
# are reachable: on the Debian base of lab/ee (apt-get as its package manager), the collection's dependencies from
# the Galaxy double serving the collections the `ansible` package installed. Needs no running lab.
cmd_ee() {
  local venv=$repo/.venv/bin galaxy port base rc=0
  podman_env
  base=$("$here/ee/build_base_image.sh")
  galaxy=$(mktemp)
  "$venv/python" "$here/galaxy_api_double.py" >"$galaxy" &  # the collections of the venv's `ansible` package
  local pid=$! tries
  for tries in $(seq 50); do port=$(head -1 "$galaxy") && [[ -n $port ]] && break; sleep 0.2; done
  [[ -n $port ]] || { kill "$pid" 2>/dev/null; rm -f "$galaxy"; die "the Galaxy double did not start"; }
  EE_BASE_IMAGE=$base EE_PKGMGR=/usr/bin/apt-get EE_GALAXY_SERVER=http://127.0.0.1:$port/ \
    EE_BUILD_ARGS=--network=host "$repo/scripts/build_ee.sh" || rc=$?
  kill "$pid"; rm -f "$galaxy"
  ((rc == 0)) && log "execution environment ${EE_TAG:-dgx-spark-ee:latest} built on $base"
  return "$rc"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  engine) cmd_engine ;;
  model) cmd_model ;;
  reboot) cmd_reboot ;;
  trtllm) cmd_trtllm ;;
  train) cmd_train ;;
  shell) cmd_shell "${2:-}" ;;
  scenario) cmd_scenario "${2:-}" "${3:-}" ;;
  thaw) cmd_thaw "${2:-}" ;;
  link-rate) cmd_link_rate "${2:-}" "${3:-}" ;;
  ee) cmd_ee ;;
  *) echo "usage: $0 up|down|status|engine|model|trtllm|train|ee|reboot|shell NODE|scenario NODE SCENARIO|thaw NODE|link-rate NODE MBIT" >&2
     exit 2 ;;
esac
