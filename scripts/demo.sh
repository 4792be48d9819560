#!/bin/sh
# Builds strand (release) and runs its main job.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
./build/release/strand demo
