#!/bin/sh
# Builds the model-loading fuzz target and runs it.
#
#   fuzz/build.sh [SECONDS]        libFuzzer + ASan + UBSan (needs clang), runs
#                                  for SECONDS (default 60) from a corpus
#                                  seeded with tests/data and, when the onnx
#                                  Python package is there, its test models
#   fuzz/build.sh --driver [DIR]   no libFuzzer: builds fuzz/fuzz_driver.c
#                                  with $CC (default cc) and ASan and replays
#                                  DIR (default the corpus) once
#
# Everything goes to build/fuzz/. Not part of the CMake build on purpose.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/build/fuzz
corpus=$out/corpus
mkdir -p "$out" "$corpus"

# The loader is instrumented; the kernels (which loading never runs, but the
# registry links) are compiled plainly: instrumenting the unrolled SIMD
# micro-kernels takes clang minutes and buys nothing here.
sources=$(ls "$root"/src/*/*.c | grep -v "/src/kernels/")
kernel_sources=$(ls "$root"/src/kernels/*.c)
flags="-std=c11 -D_GNU_SOURCE -DSTRAND_STATIC -I$root/include -I$root/src -g -O1 -fno-omit-frame-pointer"

seed() {
  for f in "$root"/tests/data/onnx/*.onnx "$root"/tests/data/onnx/*/*.onnx; do
    [ -f "$f" ] && cp "$f" "$corpus/seed_$(basename "$(dirname "$f")")_$(basename "$f")"
  done
  suite=$(${PYTHON:-python3} -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data"))' 2>/dev/null || true)
  if [ -n "$suite" ] && [ -d "$suite" ]; then
    find "$suite" -name '*.onnx' -size -64k | while read -r f; do
      cp "$f" "$corpus/suite_$(echo "$f" | md5sum | cut -c1-12).onnx"
    done
  fi
}

if [ "${1:-}" = "--driver" ]; then
  dir=${2:-$corpus}
  [ "$dir" = "$corpus" ] && seed
  ${CC:-cc} $flags -fsanitize=address,undefined -fno-sanitize-recover=undefined -o "$out/fuzz_driver" \
    "$root/fuzz/fuzz_driver.c" "$root/fuzz/fuzz_model_load.c" $sources $kernel_sources -lpthread -ldl -lm
  exec "$out/fuzz_driver" "$dir"
fi

seconds=${1:-60}
command -v clang >/dev/null || { echo "fuzz/build.sh: clang is needed (apt-get install clang)" >&2; exit 2; }
seed
mkdir -p "$out/kernels"
for k in $kernel_sources; do
  clang $flags -c -o "$out/kernels/$(basename "$k" .c).o" "$k"
done
clang $flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -o "$out/fuzz_model_load" \
  "$root/fuzz/fuzz_model_load.c" $sources "$out"/kernels/*.o -lpthread -ldl -lm
cd "$out"
exec ./fuzz_model_load -max_total_time="$seconds" -max_len=65536 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 "$corpus"
