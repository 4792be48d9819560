#!/bin/sh
# Builds strand (release) and runs its main job: describe the small model that
# ships in models/, then the any-thread demonstration with the memory and leak
# report. (Predictions join this once sessions land.)
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
./build/release/strand info models/mlp_tiny.onnx
echo
./build/release/strand demo
