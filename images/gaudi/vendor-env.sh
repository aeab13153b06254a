# Sourced by the shim (images/shim.sh) before every densenet-* command in the Gaudi image.
# Habana's TensorFlow images set their environment with ENV already; only the log directory
# needs moving: the default /var/log/habana_logs is root's, and the trainer runs as uid 10001.
export HABANA_LOGS="${HABANA_LOGS:-/tmp/habana_logs}"
mkdir -p "$HABANA_LOGS"
