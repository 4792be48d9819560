#!/bin/sh
# Builds strand and runs every test: a debug build with warnings as errors,
# then the same tests under ThreadSanitizer, AddressSanitizer (with leak
# checking) and UndefinedBehaviorSanitizer. Ends with "TOTAL: N passed, N failed".
#   scripts/test.sh [PRESET...]   (default: release debug tsan asan ubsan)
# Then the integration stages: every model of the ONNX backend test data
# loads or names what it lacks; every ONNX backend node test of an op strand
# claims passes through `strand check`; a corpus of hostile files is refused cleanly
# under AddressSanitizer; PyTorch exports load with their symbolic batch and
# agree with ONNX Runtime at batch 1 and 8; `strand stress` runs the MLP and
# the CNN from 16 threads, each request on a fresh thread and every release on
# a cleaner thread, under ThreadSanitizer, comparing every output bit for bit;
# (also through the dynamic batcher and a dispatcher-bound session); the JVM
# binding's JUnit and ScalaTest suites run against the release build (with the
# 1,000,000-prediction scenario) and against an AddressSanitizer build; the
# Spark module scores 1,000,000 rows on local[4] and on a standalone cluster
# of two workers started for the test; the model-loading fuzzer runs for a
# minute.
set -u
cd "$(dirname "$0")/.."
sh scripts/deps.sh || exit 1
presets="${*:-release debug tsan asan ubsan}"
log_dir=build/test-logs
mkdir -p "$log_dir"
passed=0
failed=0
broken=""
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1"
for preset in $presets; do
  echo "== $preset: build"
  if ! { cmake --preset "$preset" >/dev/null && cmake --build --preset "$preset"; } > "$log_dir/$preset-build.log" 2>&1; then
    tail -40 "$log_dir/$preset-build.log"
    broken="$broken $preset(build)"
    failed=$((failed + 1))
    continue
  fi
  echo "== $preset: test"
  ctest --test-dir "build/$preset" -j2 --output-on-failure -V > "$log_dir/$preset-test.log" 2>&1
  status=$?
  # Each test program ends with "N passed, N failed"; ctest -V prefixes lines with "K: ".
  counts=$(sed -n 's/^[0-9]*: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$log_dir/$preset-test.log" |
           awk '{p += $1; f += $2} END {print p + 0, f + 0}')
  p=${counts% *}
  f=${counts#* }
  grep -E "^[0-9]+: (FAIL|    )|tests passed|tests failed|Failed|Timeout|SUMMARY" "$log_dir/$preset-test.log" | tail -30
  if [ "$status" != 0 ] && [ "$f" = 0 ]; then
    f=1 # a program crashed or a sanitizer failed it after its own tests passed
  fi
  [ "$status" != 0 ] && broken="$broken $preset"
  echo "$preset: $p passed, $f failed"
  passed=$((passed + p))
  failed=$((failed + f))
done
# ---- integration stages: each counts as one test ------------------------------
# STRAND_TEST_STAGES selects them (default: all); "none" skips them.
stages="${STRAND_TEST_STAGES:-suite conformance hostile torch stress java java-asan spark fuzz}"
[ "$stages" = none ] && stages=""
stage() { # NAME COMMAND...: runs a stage, logs it, counts it
  name=$1
  shift
  echo "== stage $name"
  if "$@" > "$log_dir/stage-$name.log" 2>&1; then
    tail -3 "$log_dir/stage-$name.log"
    echo "stage $name: passed"
    passed=$((passed + 1))
  else
    tail -30 "$log_dir/stage-$name.log"
    echo "stage $name: FAILED (log: $log_dir/stage-$name.log)"
    failed=$((failed + 1))
    broken="$broken stage-$name"
  fi
}
if [ -n "$stages" ]; then
  if venv=$(bash scripts/venv.sh 2> "$log_dir/venv.log"); then
    for s in $stages; do
      case $s in
        suite) stage suite env PYTHON="$venv/bin/python" sh tests/onnx_suite/check_models.sh build/asan ;;
        conformance) stage conformance sh tests/onnx_suite/check_conformance.sh build/release "$venv/bin/python" ;;
        hostile) stage hostile sh tests/onnx_suite/check_hostile.sh "$venv/bin/python" build/asan ;;
        torch) stage torch sh tests/onnx_suite/check_torch_exports.sh build/release ;;
        stress) stage stress sh tests/onnx_suite/check_stress.sh build/tsan ;;
        java) stage java sh bindings/java/build.sh release ;;
        java-asan) stage java-asan sh bindings/java/build.sh asan ;;
        spark) stage spark sh bindings/spark/build.sh ;;
        fuzz) stage fuzz sh -c 'sh scripts/deps.sh clang && PYTHON="$0/bin/python" sh fuzz/build.sh 60' "$venv" ;;
        *) echo "unknown stage $s"; failed=$((failed + 1)) ;;
      esac
    done
  else
    tail -20 "$log_dir/venv.log"
    echo "stages: the Python venv could not be made"
    failed=$((failed + 1))
  fi
fi

[ -n "$broken" ] && echo "failing:$broken (logs in $log_dir)"
echo "TOTAL: $passed passed, $failed failed"
[ "$failed" = 0 ]
