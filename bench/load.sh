#!/bin/sh
# Model load time and resident memory: strand_model_load against ONNX
# Runtime's session creation (1 intra-op thread) on the same files, run
# alternately, three rounds each; prints a markdown table of medians.
#   bench/load.sh [BUILD_DIR]    (default build/release; models from
#                                 scripts/make_models.py into BUILD_DIR/torch_models)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
venv=$(bash "$root/scripts/venv.sh" --torch)
models=$build/torch_models
[ -f "$models/resnet18.onnx" ] || "$venv/bin/python" "$root/scripts/make_models.py" "$models" >&2
results=$build/load_results.jsonl
: > "$results"
for round in 1 2 3; do
  for m in resnet18 mobilenetv2 transformer_encoder mlp; do
    "$build/bench_model_load" "$models/$m.onnx" --repeat 9 >> "$results"
    "$venv/bin/python" "$root/bench/ort_load.py" "$models/$m.onnx" --repeat 5 >> "$results"
  done
done
"$venv/bin/python" - "$results" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| model | file MB | strand load ms | ORT session ms | ORT/strand | strand RSS growth MB | ORT RSS growth MB | strand counted MB |")
print("|---|---|---|---|---|---|---|---|")
for m in ["resnet18", "mobilenetv2", "transformer_encoder", "mlp"]:
    s = [r for r in rows if r["runtime"] == "strand" and os.path.basename(r["model"]) == m + ".onnx"]
    o = [r for r in rows if r["runtime"] == "onnxruntime" and os.path.basename(r["model"]) == m + ".onnx"]
    sm = statistics.median(r["load_ms_median"] for r in s)
    om = statistics.median(r["load_ms_median"] for r in o)
    mb = 1 << 20
    print(f"| {m} | {os.path.getsize(s[0]['model']) / mb:.1f} | {sm:.1f} | {om:.1f} | {om / sm:.1f}x | "
          f"{statistics.median(r['rss_growth_bytes'] for r in s) / mb:.1f} | "
          f"{statistics.median(r['rss_growth_bytes'] for r in o) / mb:.1f} | "
          f"{s[0]['counted_bytes'] / mb:.1f} |")
PY
