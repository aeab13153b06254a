# Sourced by the shim (images/shim.sh) before every densenet-* command in the Ascend image.
# Ascend's TensorFlow images load CANN and the TF adapter (npu_device) from set_env.sh scripts
# that only an interactive shell would read; load whichever this image has.
for script in \
    "${ASCEND_TOOLKIT_HOME:-/usr/local/Ascend/ascend-toolkit}/set_env.sh" \
    /usr/local/Ascend/ascend-toolkit/set_env.sh \
    /usr/local/Ascend/nnae/set_env.sh \
    /usr/local/Ascend/tfplugin/set_env.sh; do
    if [ -f "$script" ]; then
        # shellcheck source=/dev/null
        . "$script"
    fi
done
# CANN writes its logs under $HOME/ascend/log by default; the pod's root filesystem may be
# read-only and the trainer user has no writable home there.
export ASCEND_PROCESS_LOG_PATH="${ASCEND_PROCESS_LOG_PATH:-/tmp/ascend/log}"
export ASCEND_GLOBAL_LOG_LEVEL="${ASCEND_GLOBAL_LOG_LEVEL:-3}"
