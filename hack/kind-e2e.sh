#!/usr/bin/env bash
# End-to-end check of the chart on a kind cluster, for machines with a Docker daemon:
# create a kind cluster, build and load the operator and trainer images, helm install the
# chart, apply examples/cpu-smoke.yaml, wait for Succeeded and check the trainer's and the
# operator's metrics. The install/job/metrics steps are tests/deploy/e2e.py, the very
# functions the local end-to-end tests (tests/deploy/test_e2e.py) call.
#
# Needs: docker, kind, helm, and the repository's .venv (`make venv`). Not run in this
# repository's CI: its machine has no Docker daemon.
#
#   hack/kind-e2e.sh                 # cluster densenet-e2e, deleted at the end
#   KEEP_CLUSTER=1 hack/kind-e2e.sh  # keep it for a look around
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cluster=${KIND_CLUSTER:-densenet-e2e}
tag=${IMAGE_TAG:-0.1.0-e2e}
operator_image=densenet-operator:$tag
trainer_image=densenet-trainer:$tag
python=$repo/.venv/bin/python

for tool in docker kind helm; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is missing" >&2; exit 2; }
done
[[ -x $python ]] || { echo "kind-e2e: $python is missing: run make venv" >&2; exit 2; }
docker info >/dev/null 2>&1 || { echo "kind-e2e: the Docker daemon is not reachable" >&2; exit 2; }

kubeconfig=$(mktemp)
cleanup() {
  rm -f "$kubeconfig"
  if [[ ${KEEP_CLUSTER:-0} != 1 ]]; then kind delete cluster --name "$cluster" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "kind-e2e: building $operator_image and $trainer_image"
docker build -f "$repo/Dockerfile.operator" -t "$operator_image" "$repo"
docker build -f "$repo/Dockerfile.trainer" -t "$trainer_image" "$repo"

echo "kind-e2e: creating kind cluster $cluster"
kind create cluster --name "$cluster" --kubeconfig "$kubeconfig" --wait 120s
kind load docker-image --name "$cluster" "$operator_image" "$trainer_image"

cd "$repo"  # tests.deploy.e2e is imported from the repository root
"$python" -m tests.deploy.e2e \
  --kubeconfig "$kubeconfig" --helm "$(command -v helm)" \
  --namespace densenet-system --jobs-namespace default \
  --job "$repo/examples/cpu-smoke.yaml" \
  --set image.repository=densenet-operator --set "image.tag=$tag" --set image.pullPolicy=Never \
  --set "operator.trainerImage=$trainer_image" \
  --timeout 900
