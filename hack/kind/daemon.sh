#!/usr/bin/env bash
# kind's own Docker daemon, its network, and the host rules that keep that network
# off the outside world. kind starts its nodes `--privileged`, which fails on a host whose
# capability bounding set lacks a capability Docker asks for (here CAP_SYS_RESOURCE): this
# daemon's default runtime is hack/kind/oci_runtime.py, which fits each container to the
# bounding set and the hard rlimits before runc runs it. The daemon is kind's alone (its own
# socket, data and state), so the Docker daemon of builds and other tests is left as it is.
#
#   bash hack/kind/daemon.sh start   # daemon, network and rules (each only when missing)
#   bash hack/kind/daemon.sh stop    # every kind cluster on it, the network, the rules, the daemon
#   bash hack/kind/daemon.sh host    # prints its DOCKER_HOST
#
# Needs root, Debian's docker.io (dockerd, runc) and iptables. The daemon leaves the host's
# iptables alone (--iptables=false: no NAT, so no route out of the node) and forwards nothing;
# two FORWARD rules drop anything that would still leave the network's bridge. The network is
# not --internal: Docker publishes no port on one, and kind reads the API server's host port
# (Docker's userland proxy on 127.0.0.1).
# What else a kind node changes on the host, put back by `stop`: the kubelet's kernel tunables
# (it sets them in /proc/sys, which is the host's: vm.overcommit_memory, kernel.panic, ...; the
# list is hack/devcluster/hostkernel.py's, which tests/cluster checks this copy against), and
# /lib/modules, which kind mounts into its nodes and Docker creates when the host has none.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${DENSENET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/densenet-operator}/kind
run=/run/densenet-kind
host=unix://$run/docker.sock
network=${KIND_NETWORK:-densenet-kind}
bridge=dnkind0
subnet=${KIND_SUBNET:-10.89.0.0/24}
# The daemon's default bridge, which nothing uses. Not `--bridge none`: with it, dockerd deletes
# the host's docker0 at start (Docker removes its default bridge interface when told to use
# none), and the daemon that builds images can then start no container.
default_bridge=dnkind1
default_address=${KIND_DEFAULT_BRIDGE_ADDRESS:-10.89.1.1/24}
log() { echo "[kind-daemon] $*" >&2; }
docker_kind() { DOCKER_HOST=$host docker "$@"; }
tunables=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
# Nothing enters or leaves the network's bridge except between its own ports.
rules=("-i $bridge ! -o $bridge" "-o $bridge ! -i $bridge" "-i $default_bridge" "-o $default_bridge")
rule() { # -I|-C|-D RULE
  # shellcheck disable=SC2086 # the rule is words
  iptables -w "$1" FORWARD $2 -j DROP -m comment --comment densenet-kind
}

start() {
  ((EUID == 0)) || { log "needs root (dockerd, iptables)"; exit 1; }
  for tool in dockerd runc iptables docker ip; do
    command -v "$tool" >/dev/null || { log "$tool is missing: make system-packages"; exit 1; }
  done
  mkdir -p "$run"
  if [[ ! -f $run/tunables ]]; then
    for t in "${tunables[@]}"; do echo "$t $(cat "/proc/sys/$t")"; done >"$run/tunables"
    [[ -e /lib/modules ]] || touch "$run/no-lib-modules"
  fi
  for r in "${rules[@]}"; do rule -C "$r" 2>/dev/null || rule -I "$r"; done
  if ! ip link show "$default_bridge" >/dev/null 2>&1; then
    ip link add "$default_bridge" type bridge
    ip addr add "$default_address" dev "$default_bridge"
  fi
  if ! docker_kind info >/dev/null 2>&1; then
    mkdir -p "$cache/docker"
    echo '{}' >"$run/daemon.json"  # never the host's /etc/docker/daemon.json
    # The runtime notes here what it dropped from which container.
    DENSENET_KIND_RUNTIME_LOG=$cache/oci-runtime.log setsid dockerd --config-file "$run/daemon.json" --host "$host" --pidfile "$run/dockerd.pid" \
      --data-root "$cache/docker" --exec-root "$run/exec" \
      --bridge "$default_bridge" --iptables=false --ip-forward=false --ip-masq=false \
      --add-runtime "densenet-kind=$here/oci_runtime.py" --default-runtime densenet-kind \
      >"$cache/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 60); do docker_kind info >/dev/null 2>&1 && break; sleep 0.5; done
    docker_kind info >/dev/null 2>&1 || {
      log "dockerd did not answer within 30 s; last lines of $cache/dockerd.log:"
      tail -5 "$cache/dockerd.log" >&2
      exit 1
    }
    log "kind's dockerd started ($host, log $cache/dockerd.log)"
  fi
  if ! docker_kind network inspect "$network" >/dev/null 2>&1; then
    docker_kind network create --subnet "$subnet" \
      -o "com.docker.network.bridge.name=$bridge" "$network" >/dev/null
  fi
}

stop() {
  if docker_kind info >/dev/null 2>&1; then
    local nodes
    nodes=$(docker_kind ps -aq --filter label=io.x-k8s.kind.cluster)
    [[ -z $nodes ]] || docker_kind rm -f -v $nodes >/dev/null
    docker_kind network rm "$network" >/dev/null 2>&1 || true
  fi
  for r in "${rules[@]}"; do
    while rule -C "$r" 2>/dev/null; do rule -D "$r"; done
  done
  if [[ -s $run/dockerd.pid ]]; then
    local pid
    pid=$(cat "$run/dockerd.pid")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      log "kind's dockerd stopped"
    fi
  fi
  ip link del "$default_bridge" 2>/dev/null || true
  if [[ -f $run/tunables ]]; then
    while read -r t value; do echo "$value" >"/proc/sys/$t"; done <"$run/tunables"
  fi
  if [[ -f $run/no-lib-modules ]]; then rmdir /lib/modules 2>/dev/null || true; fi
  # Whatever the daemon left mounted under its state (network namespaces), deepest first.
  awk -v run="$run/" 'index($5, run) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    xargs -r -n1 umount -l
  rm -rf "$run"
}

case ${1:-} in
start) start ;;
stop) stop ;;
host) echo "$host" ;;
*) echo "usage: $0 start|stop|host" >&2; exit 2 ;;
esac
