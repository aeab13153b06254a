#!/usr/bin/env bash
# Debian packages the tests and the local cluster need, installed when missing:
#   prometheus  the Prometheus server and promtool (metrics checks, alert rule tests)
#   iproute2    ip link / addr / route: the real node's pod bridge, the blackhole routes
#   util-linux  unshare: Kueue's manager in a mount namespace of its own
#   docker.io   dockerd, containerd, runc and a BuildKit-capable client for `make images`
#   debootstrap the images' Debian base where the official python image cannot be pulled
# Needs root (apt-get); `make test` and .ci/run call it. Changes nothing when all are present.
set -euo pipefail
packages=(prometheus iproute2 util-linux docker.io debootstrap)
need=()
for pkg in "${packages[@]}"; do
  # Docker from Docker's own packages (docker-ce) conflicts with docker.io: any dockerd will do.
  [[ $pkg == docker.io ]] && command -v dockerd >/dev/null && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
((${#need[@]})) || exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "install-system-packages: need root to apt-get install ${need[*]} (run as root, or install them)" >&2
  exit 1
fi
echo "install-system-packages: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
