#!/usr/bin/env bash
# End-to-end check of the chart on a kind cluster: build the operator and trainer images,
# create a kind cluster, `kind load` the images, helm install the chart, apply
# examples/cpu-smoke.yaml, wait for Succeeded and check the trainer's and the operator's
# metrics. The install/job/metrics steps are tests/deploy/e2e.py, the very functions the local
# end-to-end tests (tests/deploy/test_e2e.py) call.
#
# kind here runs on what hack/kind provides, because this machine has no image registry and no
# CAP_SYS_RESOURCE in its capability bounding set: a node image assembled from the binary
# cache (hack/kind/node-image.sh), and kind's own Docker daemon, whose runtime fits kind's
# privileged nodes to the host, on a network with no way out (hack/kind/daemon.sh).
#
# Needs root, Debian's docker.io, the binaries (make binaries: kind, kubeadm, helm, ...) and the
# repository's .venv (make venv). `make kind-e2e` runs it with those prerequisites.
#
#   hack/kind-e2e.sh                 # cluster densenet-e2e and kind's daemon removed at the end
#   KEEP_CLUSTER=1 hack/kind-e2e.sh  # keep them for a look around; `make kind-down` removes them
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cluster=${KIND_CLUSTER:-densenet-e2e}
tag=${IMAGE_TAG:-0.1.0-e2e}
operator_image=densenet-operator:$tag
trainer_image=densenet-trainer:$tag
python=$repo/.venv/bin/python
t0=$(date +%s)
step() { echo "kind-e2e: [$(($(date +%s) - t0)) s] $*"; }

[[ -x $python ]] || { echo "kind-e2e: $python is missing: run make venv" >&2; exit 2; }
command -v docker >/dev/null || { echo "kind-e2e: docker is missing: make system-packages" >&2; exit 2; }
docker info >/dev/null 2>&1 || { echo "kind-e2e: the Docker daemon is not reachable: make docker-daemon" >&2; exit 2; }
bin_dir=$(bash "$here/build-binaries.sh")
kind=$bin_dir/kind
helm=$bin_dir/helm

work=$(mktemp -d)
kind_host=$(bash "$here/kind/daemon.sh" host)
started_daemon=0
DOCKER_HOST=$kind_host docker info >/dev/null 2>&1 || started_daemon=1
on_kind() { env DOCKER_HOST="$kind_host" KIND_EXPERIMENTAL_DOCKER_NETWORK=densenet-kind "$@"; }
cleanup() {
  rm -rf "$work"
  if [[ ${KEEP_CLUSTER:-0} == 1 ]]; then
    echo "kind-e2e: kept cluster $cluster (DOCKER_HOST=$kind_host); make kind-down removes it"
    return
  fi
  on_kind "$kind" delete cluster --name "$cluster" >/dev/null 2>&1 || true
  if ((started_daemon)); then bash "$here/kind/daemon.sh" stop; fi
}
trap cleanup EXIT

step "building $operator_image and $trainer_image (make images)"
IMAGE_TAG=$tag bash "$repo/images/build.sh"
step "the node image (hack/kind/node-image.sh)"
node_image=$(bash "$here/kind/node-image.sh")
step "kind's Docker daemon and network (hack/kind/daemon.sh)"
bash "$here/kind/daemon.sh" start
if ! on_kind docker image inspect "$node_image" >/dev/null 2>&1; then
  docker save "$node_image" | on_kind docker load >/dev/null
fi

# kind's configuration for this node image: the node's own CNI (no kindnetd image here);
# kubeadm pointed at the etcd and CoreDNS images built here; the kubelet allowed on cgroup v1.
cat >"$work/cluster.yaml" <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  disableDefaultCNI: true
kubeadmConfigPatches:
- |
  kind: ClusterConfiguration
  etcd:
    local: {imageRepository: densenet.local, imageTag: $ETCD_VERSION}
  dns: {imageRepository: densenet.local, imageTag: $COREDNS_VERSION}
- |
  kind: KubeletConfiguration
  failCgroupV1: false
  resolvConf: /kind/pod-resolv.conf
YAML
step "creating kind cluster $cluster from $node_image"
on_kind "$kind" create cluster --name "$cluster" --image "$node_image" --config "$work/cluster.yaml" \
  --kubeconfig "$work/kubeconfig" --wait 180s
step "kind load of $operator_image and $trainer_image"
docker save "$operator_image" "$trainer_image" -o "$work/images.tar"
on_kind "$kind" load image-archive "$work/images.tar" --name "$cluster"
rm -f "$work/images.tar"

# The host reaches the node's API server on the node's address on kind's network (its
# certificate names it), not through Docker's userland proxy on 127.0.0.1.
node_ip=$(on_kind docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \
  "$cluster-control-plane")
sed -i "s#server: https://.*#server: https://$node_ip:6443#" "$work/kubeconfig"

step "helm install and examples/cpu-smoke.yaml to Succeeded (tests/deploy/e2e.py)"
cd "$repo"  # tests.deploy.e2e is imported from the repository root
# The node has this machine's CPUs (2 here) next to the control plane: 100m per worker.
"$python" -m tests.deploy.e2e \
  --kubeconfig "$work/kubeconfig" --helm "$helm" \
  --namespace densenet-system --jobs-namespace default \
  --job "$repo/examples/cpu-smoke.yaml" --cpu-request "${KIND_E2E_CPU_REQUEST:-100m}" \
  --set image.repository=densenet-operator --set "image.tag=$tag" --set image.pullPolicy=Never \
  --set "operator.trainerImage=$trainer_image" \
  --timeout 900
step "passed"
