#!/bin/sh
# Runs `strand stress` on the MLP and the CNN with 16 threads, a fresh thread
# per request and releases on a cleaner thread: every output must match the
# single-threaded reference bit for bit, nothing may fail and nothing may be
# left alive. Meant for the tsan build (TSAN_OPTIONS gets halt_on_error=1
# unless set), where a data race ends the run with a non-zero status.
#
#   tests/onnx_suite/check_stress.sh [BUILD_DIR]
#
# BUILD_DIR defaults to build/debug. MLP_COUNT and CNN_COUNT override the
# request counts (100000 and 20000).
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build/debug}
: "${TSAN_OPTIONS:=halt_on_error=1}"
export TSAN_OPTIONS

status=0
for spec in "mlp_tiny ${MLP_COUNT:-100000}" "cnn_tiny ${CNN_COUNT:-20000}"; do
  set -- $spec
  echo "check_stress: $1, $2 requests"
  if ! "$build/strand" stress "$here/models/$1.onnx" --threads 16 --count "$2" \
      --migrate --release-elsewhere --quiet; then
    echo "check_stress: FAILED on $1" >&2
    status=1
  fi
done
exit $status
