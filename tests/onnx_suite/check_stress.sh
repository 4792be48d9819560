#!/bin/sh
# Runs `strand stress` on the MLP and the CNN with 16 threads, a fresh thread
# per request and releases on a cleaner thread: every output must match the
# single-threaded reference bit for bit, nothing may fail and nothing may be
# left alive. Meant for the tsan build (TSAN_OPTIONS gets halt_on_error=1
# unless set), where a data race ends the run with a non-zero status.
#
#   tests/onnx_suite/check_stress.sh [BUILD_DIR]
#
# Then the same through dynamic batching (16 rows, 200 us) with release
# elsewhere and a 50 ms timeout on every run (runs stopped by it must change
# no output), with every 6-row batch made as slices of one row on two
# threads, and through a session bound to a dispatcher: outputs are still
# compared with unbatched, unsliced single-threaded references.
#
# BUILD_DIR defaults to build/debug. MLP_COUNT, CNN_COUNT, BATCHED_MLP_COUNT,
# BATCHED_CNN_COUNT, SLICED_COUNT and BOUND_COUNT override the request
# counts (100000, 20000, 50000, 5000, 2000 and 5000).
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
for spec in "mlp_tiny ${BATCHED_MLP_COUNT:-50000}" "cnn_tiny ${BATCHED_CNN_COUNT:-5000}"; do
  set -- $spec
  echo "check_stress: $1, $2 requests, batched"
  if ! "$build/strand" stress "$here/models/$1.onnx" --threads 16 --count "$2" \
      --batching 16:200 --release-elsewhere --timeout-us 50000 --quiet; then
    echo "check_stress: FAILED on $1, batched" >&2
    status=1
  fi
done
echo "check_stress: cnn_tiny, ${SLICED_COUNT:-2000} requests of 6 rows, sliced on 2 threads"
if ! "$build/strand" stress "$here/models/cnn_tiny.onnx" --threads 8 --count "${SLICED_COUNT:-2000}" \
    --batch 6 --slice-rows 1 --intra-op 2 --release-elsewhere --timeout-us 50000 --quiet; then
  echo "check_stress: FAILED on cnn_tiny, sliced" >&2
  status=1
fi
echo "check_stress: mlp_tiny, ${BOUND_COUNT:-5000} requests, bound to a dispatcher"
if ! "$build/strand" stress "$here/models/mlp_tiny.onnx" --threads 16 \
    --count "${BOUND_COUNT:-5000}" --bind-dispatcher --release-elsewhere --quiet; then
  echo "check_stress: FAILED on mlp_tiny, bound to a dispatcher" >&2
  status=1
fi
exit $status
