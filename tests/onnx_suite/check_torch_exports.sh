#!/bin/sh
# Exports MLP, ResNet-18, MobileNetV2 and a transformer encoder from PyTorch
# (opset 17, dynamic batch) and checks that strand loads each and reports
# the symbolic batch dimension by name. Needs the venv with torch (about
# 5 GB from PyPI, made once by scripts/venv.sh --torch).
#   tests/onnx_suite/check_torch_exports.sh [BUILD_DIR]
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build/release}
venv=$(bash "$here/scripts/venv.sh" --torch)
out=$build/torch_models
mkdir -p "$out"
"$venv/bin/python" "$here/scripts/make_models.py" "$out"
status=0
for m in mlp resnet18 mobilenetv2 transformer_encoder; do
  f=$out/$m.onnx
  if ! "$build/strand" info "$f" > "$out/$m.info"; then
    echo "$m: strand info failed"; status=1; continue
  fi
  if ! grep -q "\[batch" "$out/$m.info"; then
    echo "$m: no symbolic batch dimension in:"; cat "$out/$m.info"; status=1; continue
  fi
  echo "$m: loaded; $(grep -A1 '^inputs' "$out/$m.info" | tail -1 | sed 's/^ *//')"
done
exit $status
