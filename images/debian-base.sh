#!/usr/bin/env bash
# The project's own base image, built from Debian's packages, for machines that cannot pull the
# official python image (no registry, or a registry that is not allowed). It gives what the
# Dockerfiles use from python:3.11-slim-bookworm: python3 (3.11), venv with ensurepip,
# ca-certificates and useradd. `make images` runs it when the official base cannot be pulled.
#
#   bash images/debian-base.sh [TAG]        # default tag: densenet-base:bookworm
#
# Needs root, debootstrap and a Docker daemon. The root filesystem is cached as a tarball under
# the cache directory, so a second machine state (e.g. a pruned daemon) re-imports it in seconds.
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), DENSENET_CACHE_DIR.
set -euo pipefail
tag=${1:-densenet-base:bookworm}
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache_dir=${DENSENET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/densenet-operator}/images
tarball=$cache_dir/debian-$suite-python3.tar
docker=${DOCKER:-docker}
log() { echo "[debian-base] $*" >&2; }

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
  log "$tag is present"
  exit 0
fi
if [[ ! -s $tarball ]]; then
  command -v debootstrap >/dev/null || {
    log "debootstrap is missing: apt-get install debootstrap (or make system-packages)"
    exit 1
  }
  ((EUID == 0)) || { log "debootstrap needs root"; exit 1; }
  mkdir -p "$cache_dir"
  root=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  log "debootstrap $suite (minbase + python3) from $mirror: about 1.5 min"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd \
    "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    log "debootstrap failed; last lines of $root.log:"
    tail -5 "$root.log" >&2
    exit 1
  }
  rm -f "$root.log"
  # What an image never needs: downloaded .debs, package lists, docs, man pages, locales.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/var/log/* "$root"/tmp/*
  # apt inside a build keeps working: sources point at the same mirror.
  echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
  tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
log "importing $tarball as $tag"
"$docker" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debootstrap $suite minbase + python3, python3-venv, ca-certificates, passwd" \
  "$tarball" "$tag" >/dev/null
"$docker" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$tag" >&2
