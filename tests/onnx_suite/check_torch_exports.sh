#!/bin/sh
# Exports MLP, ResNet-18 (also with its BatchNormalization nodes kept, which
# strand folds into the Convs), MobileNetV2 and a transformer encoder from PyTorch
# (opset 17, dynamic batch), checks that strand loads each and reports the
# symbolic batch dimension by name, and that its predictions agree with ONNX
# Runtime's at batch 1 and 8 (rtol 1e-4, atol 1e-5), and that slicing a batch
# (strand_session_options.slice_rows) changes no output bit. Needs the venv with torch (about
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
for m in mlp resnet18 mobilenetv2 transformer_encoder resnet18_bn; do
  f=$out/$m.onnx
  if ! "$build/strand" info "$f" > "$out/$m.info"; then
    echo "$m: strand info failed"; status=1; continue
  fi
  if ! grep -q "\[batch" "$out/$m.info"; then
    echo "$m: no symbolic batch dimension in:"; cat "$out/$m.info"; status=1; continue
  fi
  echo "$m: loaded; $(grep -A1 '^inputs' "$out/$m.info" | tail -1 | sed 's/^ *//')"
done
# Predictions: each export against ONNX Runtime at batch 1 and 8; at 8, the
# same outputs bit for bit when the batch runs as slices.
"$venv/bin/python" "$here/tests/onnx_suite/compare_ort.py" --lib "$build/libstrand.so" \
  --batch 1,8 --rtol 1e-4 --atol 1e-5 --sliced "$out"/mlp.onnx "$out"/resnet18.onnx \
  "$out"/mobilenetv2.onnx "$out"/transformer_encoder.onnx "$out"/lstm.onnx \
  "$out"/resnet18_bn.onnx || status=1
exit $status
