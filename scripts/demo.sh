#!/bin/sh
# Builds strand (release) and runs its main job on the small CNN that ships in
# models/: describe it, predict on the PyTorch reference inputs (printing the
# outputs, the native memory and the leak check), then the any-thread
# demonstration with its memory and leak report.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
./build/release/strand info models/cnn_tiny.onnx
echo
./build/release/strand run models/cnn_tiny.onnx --input input=models/cnn_tiny.input.npy
echo
./build/release/strand demo
