#!/usr/bin/env bash
# Start a Docker daemon when none answers, and stop only the one this script started:
#   bash hack/dockerd.sh start    # no-op when a daemon already answers
#   bash hack/dockerd.sh stop     # stops the daemon `start` started, nothing else
# .ci/run calls both; a developer's own daemon (systemd's) is left alone. Needs root.
set -euo pipefail
state=${DENSENET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/densenet-operator}/dockerd
pidfile=$state/dockerd.pid
log() { echo "[dockerd] $*" >&2; }
client=docker
command -v /usr/bin/docker >/dev/null && client=/usr/bin/docker

case ${1:-} in
start)
  if "$client" info >/dev/null 2>&1; then
    log "a Docker daemon already answers; using it"
    exit 0
  fi
  command -v dockerd >/dev/null || { log "dockerd is missing: make system-packages"; exit 1; }
  mkdir -p "$state"
  # setsid: the daemon outlives this script and is not in the caller's process group.
  setsid dockerd --pidfile "$state/daemon.pid" >"$state/dockerd.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 60); do
    "$client" info >/dev/null 2>&1 && { log "dockerd started (log: $state/dockerd.log)"; exit 0; }
    sleep 0.5
  done
  log "dockerd did not answer within 30 s; last lines of $state/dockerd.log:"
  tail -5 "$state/dockerd.log" >&2
  exit 1
  ;;
stop)
  [[ -s $pidfile ]] || exit 0
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    log "dockerd stopped"
  fi
  rm -f "$pidfile"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
