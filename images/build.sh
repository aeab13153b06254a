#!/usr/bin/env bash
# `make images`: build densenet-operator:$IMAGE_TAG and densenet-trainer:$IMAGE_TAG (default dev)
# from Dockerfile.operator and Dockerfile.trainer, then print their sizes.
#
# The base is the Dockerfiles' default (the official python image, pinned by digest) unless
# BASE_IMAGE is set. Where that base is not present and cannot be pulled (no registry), the
# project's own base built from Debian's packages (images/debian-base.sh) takes over, and this
# script says so. A CA bundle for pip inside the build (a TLS-intercepting proxy's, as on this
# project's CI machine) goes in as a BuildKit secret, never into a layer: PIP_CERT, else
# SSL_CERT_FILE, else the host's /etc/ssl/certs/ca-certificates.crt when present.
#
# Environment: IMAGE_TAG, BASE_IMAGE, TRAINER_LOCK (requirements/trainer.lock), IMAGES (which to
# build: "operator trainer"), DOCKER (the docker client).
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${IMAGE_TAG:-dev}
images=${IMAGES:-operator trainer}
log() { echo "[images] $*" >&2; }

# A client that builds with BuildKit: `docker buildx` where the plugin exists, else a client
# older than 23 whose built-in builder BuildKit is (Debian's docker.io 20.10). A newer client
# without buildx refuses DOCKER_BUILDKIT=1, so it is skipped.
pick_client() {
  local c
  for c in ${DOCKER:-} docker /usr/bin/docker; do
    command -v "$c" >/dev/null || continue
    if "$c" buildx version >/dev/null 2>&1; then
      echo "$c buildx build --load"
      return
    fi
    local major
    major=$("$c" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1) || true
    if [[ $major =~ ^[0-9]+$ ]] && ((major < 23)); then
      echo "env DOCKER_BUILDKIT=1 $c build"
      return
    fi
  done
  log "no docker client that builds with BuildKit: install the buildx plugin (or Debian's docker.io)"
  exit 1
}
build_cmd=$(pick_client)
docker=${build_cmd#env DOCKER_BUILDKIT=1 }
docker=${docker%% *}
if ! "$docker" info >/dev/null 2>&1; then
  log "no Docker daemon answers: start one (bash hack/dockerd.sh start, or systemctl start docker)"
  exit 1
fi

default_base=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile.operator)
base=${BASE_IMAGE:-}
if [[ -z $base ]]; then
  if "$docker" image inspect "$default_base" >/dev/null 2>&1 ||
    timeout 120 "$docker" pull --quiet "$default_base" >/dev/null 2>&1; then
    base=$default_base
  else
    base=densenet-base:bookworm
    log "the official base $default_base cannot be pulled here (no registry?):"
    log "building on the project's Debian base instead, BASE_IMAGE=$base (images/debian-base.sh)"
    DOCKER=$docker bash images/debian-base.sh "$base"
  fi
fi

secret=()
ca=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
if [[ -r $ca ]]; then
  secret=(--secret "id=pip-ca,src=$ca")
fi

for image in $images; do
  args=(--build-arg "BASE_IMAGE=$base" --label "org.opencontainers.image.base.name=$base")
  if [[ $image == trainer && -n ${TRAINER_LOCK:-} ]]; then
    args+=(--build-arg "TRAINER_LOCK=$TRAINER_LOCK")
  fi
  log "building densenet-$image:$tag on $base"
  start=$(date +%s)
  $build_cmd --progress plain "${secret[@]}" "${args[@]}" -f "Dockerfile.$image" \
    -t "densenet-$image:$tag" . >"${TMPDIR:-/tmp}/densenet-$image-build.log" 2>&1 || {
    log "building densenet-$image failed; the last lines of ${TMPDIR:-/tmp}/densenet-$image-build.log:"
    tail -25 "${TMPDIR:-/tmp}/densenet-$image-build.log" >&2
    exit 1
  }
  log "densenet-$image:$tag built in $(($(date +%s) - start)) s"
done
for image in $images; do
  size=$("$docker" image inspect --format '{{.Size}}' "densenet-$image:$tag")
  printf '[images] densenet-%s:%s %d MB\n' "$image" "$tag" "$((size / 1000000))" >&2
done
