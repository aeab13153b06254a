#!/usr/bin/env bash
# kind's node image, assembled here as `kind build node-image` does it (sigs.k8s.io/kind
# v0.33.0: pkg/build/nodeimage, images/base), from what this project builds instead of what
# kind downloads: the base is Debian's packages (systemd, iptables, runc, ...) on the
# project's Debian base; containerd, crictl and the CNI plugins, kubeadm, kubelet and kubectl
# come from the binary cache (hack/build-binaries.sh); the images kubeadm runs (API server,
# controller manager, scheduler, kube-proxy, etcd, CoreDNS) and the sandbox image are packed
# from the same binaries and preloaded into the node's containerd, so nothing is pulled. The
# CNI is a static bridge config (hack/kind/node/rootfs), used with `disableDefaultCNI`
# (kindnetd's image cannot be pulled here).
#
#   bash hack/kind/node-image.sh      # prints the image name; builds it only when its inputs changed
#
# Builds in the Docker daemon the caller's docker talks to (apt needs its network). Needs the
# project's base image (images/debian-base.sh) and the binaries (make binaries).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../versions.env
source "$repo/hack/versions.env"
cache_root=${DENSENET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/densenet-operator}
bin_dir=$cache_root/bin
cni_dir=$cache_root/cni-plugins-$CNI_PLUGINS_VERSION
base_image=${KIND_BASE_IMAGE:-densenet-base:bookworm}
log() { echo "[kind-node-image] $*" >&2; }
fail() { log "$*"; exit 1; }

# Debian's packages a node needs (kind's list, less what only its other features use: NFS,
# iSCSI, fuse-overlayfs, nftables mode).
packages="systemd conntrack iptables iproute2 ethtool util-linux mount kmod libseccomp2 runc"
packages+=" ca-certificates procps bash"
binaries=(kubeadm kubelet kubectl containerd containerd-shim-runc-v2 ctr crictl kube-apiserver
  kube-controller-manager kube-scheduler kube-proxy etcd coredns pause)
for b in "${binaries[@]}"; do
  [[ -x $bin_dir/$b ]] || fail "$bin_dir/$b is missing: run make binaries"
done
[[ -x $cni_dir/bridge ]] || fail "$cni_dir has no CNI plugins: run make binaries"
docker image inspect "$base_image" >/dev/null 2>&1 ||
  fail "$base_image is missing: bash images/debian-base.sh (make images builds it)"

# Image names: the Kubernetes components under the names kubeadm asks for; etcd, CoreDNS and
# pause under ours, at the versions really built (kubeadm v1.36.3 would ask for etcd 3.6.8-0
# and CoreDNS v1.14.2: the kind config in hack/kind-e2e.sh points it at these).
k8s=$KUBERNETES_VERSION
etcd_image=densenet.local/etcd:$ETCD_VERSION
coredns_image=densenet.local/coredns:$COREDNS_VERSION
pause_image=densenet.local/pause:$PAUSE_VERSION

base_key=$( (echo "$packages"; docker image inspect --format '{{.Id}}' "$base_image") | sha256sum | cut -c1-12)
kind_base=densenet.local/kind-base:$base_key
node_key=$( (echo "$base_key"; cat "$repo/hack/versions.env" "$0" "$repo/hack/devcluster/ociarchive.py"
  find "$here/node" -type f | sort | xargs cat) | sha256sum | cut -c1-12)
node_image=densenet.local/kind-node:$k8s-$node_key
if docker image inspect "$node_image" >/dev/null 2>&1; then
  echo "$node_image"
  exit 0
fi

build=densenet-kind-build-$$
work=$(mktemp -d)
cleanup() { docker rm -f -v "$build" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
start=$(date +%s)

if ! docker image inspect "$kind_base" >/dev/null 2>&1; then
  log "installing the node's Debian packages on $base_image"
  docker run -d --name "$build" --entrypoint sleep "$base_image" infinity >/dev/null
  # shellcheck disable=SC2086 # the package list is words
  docker exec -e DEBIAN_FRONTEND=noninteractive "$build" sh -euc "
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $packages >/dev/null
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
    # systemd as a container's init, as kind's base does: only the units a node needs start
    # (containerd, the kubelet), none of udev, getty, tmpfiles cleanup or the kernel log.
    rm -f /lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service \
      /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    echo ReadKMsg=no >>/etc/systemd/journald.conf
    ln -sf /lib/systemd/systemd /sbin/init
    systemctl mask systemd-binfmt.service >/dev/null 2>&1"
  docker commit --change 'ENTRYPOINT []' --change 'CMD []' "$build" "$kind_base" >/dev/null
  docker rm -f -v "$build" >/dev/null
fi

log "packing the control-plane, etcd, CoreDNS and pause images"
pack() { # NAME BINARY PATH [USER]
  PYTHONPATH=$repo/hack python3 -m devcluster.ociarchive "$1" "$bin_dir/$2" "$3" \
    "$work/$2.tar" --user "${4:-0:0}"
}
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  pack "registry.k8s.io/$c:$k8s" "$c" "/usr/local/bin/$c"
done
pack "$etcd_image" etcd /usr/local/bin/etcd
pack "$coredns_image" coredns /coredns
pack "$pause_image" pause /pause 65535:65535
# kube-proxy programs iptables: its image is the node's Debian base with the binary.
docker run -d --name "$build" --entrypoint sleep "$kind_base" infinity >/dev/null
docker cp -L "$bin_dir/kube-proxy" "$build:/usr/local/bin/kube-proxy"
docker commit --change 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]' --change 'CMD []' "$build" "registry.k8s.io/kube-proxy:$k8s" >/dev/null
docker rm -f -v "$build" >/dev/null
docker save "registry.k8s.io/kube-proxy:$k8s" -o "$work/kube-proxy.tar"
docker rmi "registry.k8s.io/kube-proxy:$k8s" >/dev/null

log "assembling $node_image"
docker run -d --name "$build" --entrypoint sleep --security-opt seccomp=unconfined "$kind_base" infinity >/dev/null
for b in kubeadm kubelet kubectl; do docker cp -L "$bin_dir/$b" "$build:/usr/bin/$b"; done
for b in containerd containerd-shim-runc-v2 ctr crictl; do docker cp -L "$bin_dir/$b" "$build:/usr/local/bin/$b"; done
docker exec "$build" mkdir -p /opt/cni/bin /etc/kubernetes/manifests
docker cp "$cni_dir/." "$build:/opt/cni/bin/"
tar -C "$here/node/rootfs" --owner=0 --group=0 -c . | docker cp - "$build:/"
docker exec "$build" sh -euc "
  sed -i 's/@PAUSE_VERSION@/$PAUSE_VERSION/' /etc/containerd/config.toml
  echo $k8s >/kind/version
  systemctl enable containerd.service kubelet.service >/dev/null 2>&1"

# The images kubeadm will ask for, as kind checks them: its list for this version, less the
# ones pointed elsewhere (etcd, CoreDNS, pause, above).
wanted=$(docker exec "$build" kubeadm config images list --kubernetes-version "$k8s" |
  grep -v -e /etcd: -e /coredns -e /pause:)
for image in $wanted; do
  [[ -f $work/$(basename "${image%%:*}").tar ]] ||
    fail "kubeadm $k8s asks for $image, which this script does not pack"
done

# Preload them as kind does: containerd in the build container, `ctr images import` of each
# archive, pinned so the kubelet's image garbage collection keeps them.
docker exec -d "$build" containerd
for _ in $(seq 30); do docker exec "$build" ctr version >/dev/null 2>&1 && break; sleep 0.5; done
for archive in "$work"/*.tar; do
  out=$(docker exec -i "$build" ctr --namespace=k8s.io images import \
    --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - <"$archive" 2>&1) ||
    fail "ctr images import of $(basename "$archive") failed: $out"
done
log "preloaded: $(docker exec "$build" ctr --namespace=k8s.io images list --quiet 2>/dev/null |
  grep -v -e '^sha256:' -e '^import-' | tr '\n' ' ')"
docker exec "$build" sh -c 'pkill containerd; while pgrep containerd >/dev/null; do sleep 0.2; done
  rm -rf /run/containerd'

docker commit "$build" "$node_image-commit" >/dev/null
# systemd is told to stop by SIGRTMIN+3 (SIGTERM re-executes it); `docker commit --change`
# cannot set a stop signal on Debian's Docker 20.10, a one-line build can.
printf '%s\n' "FROM $node_image-commit" 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
  'CMD []' 'ENV container=docker' 'STOPSIGNAL SIGRTMIN+3' "LABEL densenet.dev/kind-node-key=$node_key" |
  DOCKER_BUILDKIT=0 docker build -q -t "$node_image" - >/dev/null 2>&1 ||
  fail "docker build of $node_image from $node_image-commit failed"
docker rmi "$node_image-commit" >/dev/null
size=$(docker image inspect --format '{{.Size}}' "$node_image")
log "built $node_image in $(($(date +%s) - start)) s ($((size / 1000000)) MB)"
echo "$node_image"
