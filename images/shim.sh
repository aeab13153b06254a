#!/bin/sh
# Installed as densenet-train, densenet-launch and densenet-prepare at the front of PATH in the
# vendor trainer images. The operator sets the pod's `command` (so an ENTRYPOINT would never
# run): this shim loads the vendor's environment, takes itself off PATH, and runs the real
# command of the same name, whose children (the launcher's per-device trainers) inherit both.
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# Vendor scripts read unset variables; they must not trip `set -u`.
set +u
# shellcheck source=/dev/null
. "${DENSENET_VENDOR_ENV:-/opt/densenet/vendor-env.sh}"
set -u
PATH=$(printf '%s\n' "$PATH" | tr ':' '\n' | grep -vxF "$here" | paste -sd: -)
export PATH
exec "$(basename -- "$0")" "$@"
