#!/bin/sh
# Rows per second on local[2]: StrandModel against the same job on ONNX
# Runtime's Java API (OrtModel, built by the Maven profile `ort`), in the same
# harness (ScoreExample: the same generated DataFrame, the same batching
# code, the noop sink), runs interleaved; and the harness alone (engine
# none: zeros, no model), the ceiling any engine can reach in it.
#
#   bindings/spark/bench.sh [ROWS [ROUNDS [BATCH [cache]]]]   (default 1000000 5 1024)
#
# With `cache` the inputs are generated once and cached in memory before the
# timed runs, so that the runs measure scoring, not the generating UDF.
#
# Needs the strand jar in the local Maven repository (build.sh installs it).
# Prints each run and the median rows/s of each engine with their ratio.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rows=${1:-1000000}
rounds=${2:-5}
batch=${3:-1024}
cache=""
[ "${4:-}" = cache ] && cache=--cache
cd "$here"
mvn -q -B -Dstyle.color=never -Port -DskipTests package
mvn -q -B -Dstyle.color=never -Port dependency:build-classpath -Dmdep.outputFile=target/bench.classpath \
  -Dmdep.includeScope=test > /dev/null
classpath="$here/conf:$here/target/classes:$(cat target/bench.classpath)"
jvm_args=$(sed -n 's:.*<spark.jvm.args>\(.*\)</spark.jvm.args>.*:\1:p' pom.xml)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for round in $(seq 1 "$rounds"); do
  for engine in strand ort none; do
    java -cp "$classpath" $jvm_args -Xmx2g -Dspark.master='local[2]' -Dspark.ui.enabled=false \
      dev.strand.spark.example.ScoreExample --engine "$engine" --model "$root/models/mlp_tiny.onnx" \
      --rows "$rows" --partitions 8 --batch "$batch" --threads 1 --repeat 3 $cache 2>/dev/null |
      grep "rows_per_second" | tee -a "$out"
  done
done
awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
       v[f["engine"], ++n[f["engine"]]] = f["rows_per_second"] }
     function median(e,   i, j, t, m) {
       m = n[e]; for (i = 1; i <= m; i++) a[i] = v[e, i]
       for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
       return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
     END { s = median("strand"); o = median("ort"); h = median("none")
           printf "bench: local[2] batch=%s cached=%s rows_per_second median strand=%.0f ort=%.0f harness_only=%.0f " \
             "strand/ort=%.2f (%d rounds)\n", b, c, s, o, h, s / o, n["strand"]
           # Seconds per million rows beyond the harness: the engines themselves.
           printf "bench: engine seconds per 1M rows beyond the harness: strand=%.3f ort=%.3f\n",
             1e6 / s - 1e6 / h, 1e6 / o - 1e6 / h }' b="$batch" c="${cache:+yes}" "$out"
