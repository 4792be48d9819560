#!/bin/sh
# Loads every model of the ONNX backend test data (or of SUITE_DIR) with
# strand: each must load or fail with a named unsupported feature, and
# `strand info` must never crash on any of them.
#
#   tests/onnx_suite/check_models.sh [BUILD_DIR] [SUITE_DIR]
#
# BUILD_DIR defaults to build/debug. SUITE_DIR defaults to the data shipped
# with the `onnx` Python package (found with $PYTHON, default python3).
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build/debug}
suite=${2:-}
if [ -z "$suite" ]; then
  suite=$(${PYTHON:-python3} -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data"))')
fi
[ -d "$suite" ] || { echo "check_models: no directory $suite" >&2; exit 2; }

STRAND_ONNX_SUITE=$suite "$build/onnx_test_suite"

status=0
count=0
for model in $(find "$suite" -name '*.onnx' | sort); do
  count=$((count + 1))
  set +e
  "$build/strand" info --json "$model" >/dev/null 2>"$build/check_models.err"
  rc=$?
  set -e
  case $rc in
    0) ;;
    1) grep -q "not supported" "$build/check_models.err" || { cat "$build/check_models.err"; status=1; } ;;
    *) echo "check_models: strand info exited with $rc on $model" >&2; status=1 ;;
  esac
done
rm -f "$build/check_models.err"
echo "check_models: strand info ran on $count models"
exit $status
