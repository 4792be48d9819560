#!/usr/bin/env bash
# bench/compare/run.sh — strand against ONNX Runtime, side by side, in one command:
#
#   bash bench/compare/run.sh [--build-dir DIR] [--quick] [--models mlp,resnet18,...]
#                             [--repeats R] [--seconds S] [--warmup S] [--no-write] ...
#
# Builds the release strand program (RelWithDebInfo, in DIR; default
# build/bench-compare), makes the venv with PyTorch (scripts/venv.sh --torch)
# plus matplotlib (scripts/requirements-bench.txt), exports the benchmark
# models that are missing (scripts/make_models.py, into DIR/torch_models),
# then runs bench/compare/compare.py, which measures every cell, rewrites the
# bench:compare section of BENCHMARKS.md and draws bench/compare/chart.png.
# `bench/compare/compare.py --help` lists the measuring options. A full run
# takes about 15 minutes on a 2-core machine; --quick about 4.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$repo/build/bench-compare"
pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) [ $# -ge 2 ] || { echo "run.sh: --build-dir needs a value" >&2; exit 2; }
                 build="$2"; shift 2 ;;
    --build-dir=*) build="${1#--build-dir=}"; shift ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) pass+=("$1"); shift ;;
  esac
done
command_line="bash bench/compare/run.sh${pass[*]:+ ${pass[*]}}"

log() { echo "run.sh: $*" >&2; }

# The release program, in its own build directory.
if [ ! -f "$build/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  log "configuring $build"
  cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSTRAND_WERROR=ON -DSTRAND_BUILD_TESTS=OFF >&2
fi
log "building strand in $build"
cmake --build "$build" -j"$(nproc)" --target strand_tool >&2

# Python: numpy, onnx, onnxruntime, torch (venv.sh), then matplotlib.
venv="$(bash "$repo/scripts/venv.sh" --torch)"
stamp="$venv/.strand-bench-requirements"
wanted="$(sha256sum "$repo/scripts/requirements-bench.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  log "installing scripts/requirements-bench.txt"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$repo/scripts/requirements-bench.txt" >&2
  echo "$wanted" > "$stamp"
fi

exec "$venv/bin/python" "$repo/bench/compare/compare.py" --strand "$build/strand" \
  --models-dir "$build/torch_models" --command "$command_line" ${pass[@]+"${pass[@]}"}
