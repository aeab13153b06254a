#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok, helm), Kubeflow's training-operator for the
# peer benchmark (~3 min cold), Kueue, a real node's parts (kubelet,
# containerd and its runc shim, ctr, crictl, the CNI plugins, the pause binary;
# ~12 min cold), and kind with kubeadm for its node image, from their Go
# modules and sources at the versions pinned in hack/versions.env, into a
# per-user cache keyed by version. A binary that is already cached is not
# rebuilt. Prints the bin directory on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${DENSENET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/densenet-operator}
bin_dir="$cache_root/bin"
src_root="$cache_root/src"
mkdir -p "$bin_dir" "$src_root"

log() { printf '[build-binaries] %s\n' "$*" >&2; }

# cached NAME VERSION -> path of the cached binary
cached() { printf '%s/%s-%s/%s' "$bin_dir" "$1" "$2" "$1"; }

install_binary() { # NAME VERSION BUILT_FILE
  local dest
  dest=$(cached "$1" "$2")
  mkdir -p "$(dirname "$dest")"
  mv "$3" "$dest.tmp" && mv "$dest.tmp" "$dest"
  ln -sfn "$dest" "$bin_dir/$1"
}

build_kubernetes() {
  local v=$KUBERNETES_VERSION
  local needed=()
  local all=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy kubeadm)
  for c in "${all[@]}"; do
    [[ -x $(cached "$c" "$v") ]] || needed+=("$c")
  done
  if ((${#needed[@]} == 0)); then
    for c in "${all[@]}"; do ln -sfn "$(cached "$c" "$v")" "$bin_dir/$c"; done
    return
  fi
  log "building ${needed[*]} $v (cold: ~10 min on 2 cores)"
  local mod="$src_root/kubernetes-$v"
  mkdir -p "$mod"
  local minor=${v#v1.}; minor=${minor%%.*}
  local staging_v="v0.${v#v1.}"
  local upstream_mod
  upstream_mod=$(cd "$mod" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  {
    echo "module densenet.local/kubernetes-wrapper"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    echo "replace ("
    grep -E '=> \./staging/' "$upstream_mod" | awk -v sv="$staging_v" '{print "\t" $1 " => " $1 " " sv}'
    echo ")"
  } >"$mod/go.mod"
  cat >"$mod/tools.go" <<GO
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubeadm"
)
GO
  (cd "$mod" && go mod tidy -e >/dev/null 2>&1 || true; cd "$mod" && GOFLAGS=-mod=mod go mod download >/dev/null)
  local ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  for c in "${needed[@]}"; do
    log "go build $c"
    (cd "$mod" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$mod/$c.out" "k8s.io/kubernetes/cmd/$c")
    install_binary "$c" "$v" "$mod/$c.out"
  done
}

build_etcd() {
  local v=$ETCD_VERSION
  if [[ -x $(cached etcd "$v") ]]; then ln -sfn "$(cached etcd "$v")" "$bin_dir/etcd"; return; fi
  log "building etcd $v"
  local mod="$src_root/etcd-$v"
  mkdir -p "$mod"
  printf 'module densenet.local/etcd-wrapper\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$v" >"$mod/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$mod/tools.go"
  (cd "$mod" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true)
  (cd "$mod" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -ldflags "-s -w" -o "$mod/etcd.out" go.etcd.io/etcd/server/v3)
  install_binary etcd "$v" "$mod/etcd.out"
}

build_go_install() { # NAME VERSION PACKAGE [EXTRA_LDFLAGS]
  local name=$1 v=$2 pkg=$3 extra=${4:-}
  if [[ -x $(cached "$name" "$v") ]]; then ln -sfn "$(cached "$name" "$v")" "$bin_dir/$name"; return; fi
  log "building $name $v"
  local gobin="$src_root/gobin-$name-$v"
  mkdir -p "$gobin"
  CGO_ENABLED=0 GOBIN="$gobin" go install -ldflags "-s -w $extra" "$pkg@$v"
  install_binary "$name" "$v" "$gobin/$name"
}

stage_kwok_stages() {
  # Standalone kwok needs its stage definitions; they ship inside the module.
  local dir="$cache_root/kwok-stages-$KWOK_VERSION"
  [[ -d $dir ]] && return
  local src
  src=$(GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$dir.tmp"
  cp -r "$src/kustomize/stage" "$dir.tmp/"
  chmod -R u+w "$dir.tmp"
  mv "$dir.tmp" "$dir"
}

stage_training_operator_crd() {
  # The TFJob CRD for the peer benchmark, from the same module as the controller.
  local dir="$cache_root/training-operator-$TRAINING_OPERATOR_VERSION"
  [[ -f $dir/kubeflow.org_tfjobs.yaml ]] && return
  local src
  src=$(GOFLAGS=-mod=mod go mod download -json "github.com/kubeflow/training-operator@$TRAINING_OPERATOR_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$dir"
  cp "$src/manifests/base/crds/kubeflow.org_tfjobs.yaml" "$dir/kubeflow.org_tfjobs.yaml.tmp"
  mv "$dir/kubeflow.org_tfjobs.yaml.tmp" "$dir/kubeflow.org_tfjobs.yaml"
}

stage_kueue_manifests() {
  # Kueue's CRDs and webhook manifests, from the module its manager is built from
  # (devcluster up --with kueue applies them; hack/devcluster/kueue.py).
  local dir="$cache_root/kueue-$KUEUE_VERSION"
  [[ -f $dir/webhooks.yaml ]] && return
  local src
  src=$(GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$dir/crds"
  cp "$src"/config/components/crd/bases/*.yaml "$dir/crds/"
  cp "$src/config/components/webhook/manifests.yaml" "$dir/webhooks.yaml.tmp"
  mv "$dir/webhooks.yaml.tmp" "$dir/webhooks.yaml"
}

build_cni_plugins() {
  # The reference plugins a node's containerd calls (its conf in hack/devcluster/realnode.py),
  # in one directory of their own: containerd's CNI bin_dirs.
  local v=$CNI_PLUGINS_VERSION dir="$cache_root/cni-plugins-$CNI_PLUGINS_VERSION"
  local plugins=(main/bridge main/loopback ipam/host-local meta/portmap)
  [[ -x $dir/portmap ]] && return
  log "building CNI plugins $v"
  mkdir -p "$dir.tmp"
  for p in "${plugins[@]}"; do
    CGO_ENABLED=0 GOBIN="$dir.tmp" go install -ldflags "-s -w" "github.com/containernetworking/plugins/plugins/$p@$v"
  done
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

build_pause() {
  # The sandbox ("pause") binary, compiled from the Kubernetes module's own source, as its
  # build/pause/Makefile does (static, -Os); realnode.py packs it into an image.
  local v=$PAUSE_VERSION
  [[ -x $(cached pause "$v") ]] && { ln -sfn "$(cached pause "$v")" "$bin_dir/pause"; return; }
  local src
  src=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  log "compiling pause $v"
  gcc -Os -Wall -Werror -static -DVERSION="v$v-densenet" -o "$src_root/pause.out" "$src/build/pause/linux/pause.c"
  install_binary pause "$v" "$src_root/pause.out"
}

build_device_plugin() {
  # The fake accelerators' device plugin (hack/deviceplugin, ours), keyed by its sources.
  local src="$here/deviceplugin" v
  v=$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-12)
  [[ -x $(cached fake-device-plugin "$v") ]] && { ln -sfn "$(cached fake-device-plugin "$v")" "$bin_dir/fake-device-plugin"; return; }
  log "building fake-device-plugin $v"
  (cd "$src" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$src_root/fake-device-plugin.out" .)
  install_binary fake-device-plugin "$v" "$src_root/fake-device-plugin.out"
}

build_etcd
build_go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
stage_kwok_stages
build_go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
build_kubernetes
build_go_install training-operator.v1 "$TRAINING_OPERATOR_VERSION" github.com/kubeflow/training-operator/cmd/training-operator.v1
stage_training_operator_crd
build_go_install kueue "$KUEUE_VERSION" sigs.k8s.io/kueue/cmd/kueue
stage_kueue_manifests
# A real node: containerd and its runc shim, the CRI client, cluster DNS, the CNI plugins,
# pause.
# The release's version strings (its Makefile sets them at link time; the CRI reports it).
containerd_ld="-X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION#v}"
for c in containerd containerd-shim-runc-v2 ctr; do
  build_go_install "$c" "$CONTAINERD_VERSION" "github.com/containerd/containerd/v2/cmd/$c" "$containerd_ld"
done
build_go_install coredns "$COREDNS_VERSION" github.com/coredns/coredns
build_go_install crictl "$CRI_TOOLS_VERSION" sigs.k8s.io/cri-tools/cmd/crictl "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION"
build_cni_plugins
build_pause
build_device_plugin
# kind (its node image also takes kubeadm, built with the control plane above).
build_go_install kind "$KIND_VERSION" sigs.k8s.io/kind
echo "$bin_dir"
