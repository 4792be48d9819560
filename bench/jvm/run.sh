#!/bin/sh
# JVM benchmarks of strand's Java binding.
#
#   bench/jvm/run.sh overhead [MODEL...]   JNI overhead per run: C API vs Java API
#   bench/jvm/run.sh ort [MODEL...]        Session.run throughput: strand vs ONNX Runtime (Java)
# (a failing run leaves its stderr in bindings/java/bench/target/stderr.txt)
#
# overhead: the same loop in C (strand_jni_bench_c, bindings/java/native/
# bench_run.c) and in Java (dev.strand.bench.RunOverhead): batch 1, an input
# tensor made from host memory, run on a session with one intra-op thread,
# the output copied back to host memory, both tensors released. Each process
# warms up and prints the median of ROUNDS timed rounds; C and Java processes
# alternate REPEATS times (the machine may be shared), and the summary is the
# median over the repeats of each and their difference, by the wall clock and
# by the CPU time of the whole process (GC, JIT and cleaner threads included;
# unlike the wall clock, not inflated by waiting for a core on a busy machine).
#   Defaults: models/mlp_tiny.onnx; STRAND_BENCH_ITERATIONS per round (1000000
#   for a model under 1 MB, else 20000: rounds of a second or more, since the
#   JVM's process CPU clock ticks in 10 ms), STRAND_BENCH_REPEATS (5),
#   STRAND_BENCH_ROUNDS (5).
#
# ort: dev.strand.bench.Throughput (bindings/java/bench, a Maven module of its
# own so that the main build never downloads ONNX Runtime) runs one shared
# session with one intra-op thread from 1, 8 and 32 threads
# (STRAND_BENCH_THREADS), strand and ONNX Runtime alternating, REPEATS times
# (default 3), each run warming up WARMUP seconds (2) and counting predictions
# for MEASURE seconds (4); the summary is the median predictions per second
# of each and their ratio. Both engines' first outputs are printed side by side.
#
# Builds first (bindings/java/build.sh --build-only, the release preset, or
# STRAND_BUILD_DIR) unless STRAND_BENCH_C and STRAND_JAVA_OUT name a build.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:-overhead}
[ $# -gt 0 ] && shift
if [ -z "${STRAND_BENCH_C:-}" ] || [ -z "${STRAND_JAVA_OUT:-}" ]; then
  line=$(sh "$root/bindings/java/build.sh" --build-only release | tail -n 1)
  STRAND_JAVA_OUT=$(echo "$line" | sed -n 's/.*java-build: out=\([^ ]*\) bench_c=.*/\1/p')
  STRAND_BENCH_C=$(echo "$line" | sed -n 's/.*java-build: .* bench_c=\(.*\)$/\1/p')
  [ -n "$STRAND_BENCH_C" ] || { echo "bench/jvm: the build did not say where it went: $line" >&2; exit 1; }
fi
out=$STRAND_JAVA_OUT
repeats=${STRAND_BENCH_REPEATS:-}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" | tail -n 1; }

case $mode in
overhead)
  [ $# -gt 0 ] || set -- "$root/models/mlp_tiny.onnx"
  classpath="$out/classes:$out/test-classes"
  for model in "$@"; do
    size=$(wc -c < "$model")
    iterations=${STRAND_BENCH_ITERATIONS:-}
    [ -n "$iterations" ] || { [ "$size" -lt 1000000 ] && iterations=1000000 || iterations=20000; }
    rounds=${STRAND_BENCH_ROUNDS:-5}
    tmp=/tmp/strand-bench.$$
    : > "$tmp.c"; : > "$tmp.java"; : > "$tmp.ccpu"; : > "$tmp.javacpu"
    for r in $(seq "${repeats:-5}"); do
      c=$("$STRAND_BENCH_C" "$model" "$iterations" "$rounds" | tail -n 1)
      j=$(java -cp "$classpath" dev.strand.bench.RunOverhead "$model" "$iterations" "$rounds" | tail -n 1)
      echo "repeat $r: c=$(echo "$c" | field median_ns_per_run) ns (cpu $(echo "$c" | field median_cpu_ns_per_run))" \
        "java=$(echo "$j" | field median_ns_per_run) ns (cpu $(echo "$j" | field median_cpu_ns_per_run))"
      echo "$c" | field median_ns_per_run >> "$tmp.c"
      echo "$j" | field median_ns_per_run >> "$tmp.java"
      echo "$c" | field median_cpu_ns_per_run >> "$tmp.ccpu"
      echo "$j" | field median_cpu_ns_per_run >> "$tmp.javacpu"
    done
    for kind in wall cpu; do
      if [ "$kind" = wall ]; then cm=$(median < "$tmp.c"); jm=$(median < "$tmp.java")
      else cm=$(median < "$tmp.ccpu"); jm=$(median < "$tmp.javacpu"); fi
      echo "$cm $jm" | awk -v m="$(basename "$model")" -v k="$kind" '{
        printf "overhead: model=%s clock=%s c_median_ns=%.1f java_median_ns=%.1f jni_overhead_ns=%.0f (%+.1f%%)\n",
          m, k, $1, $2, $2 - $1, 100 * ($2 - $1) / $1 }'
    done
    rm -f "$tmp.c" "$tmp.java" "$tmp.ccpu" "$tmp.javacpu"
  done
  ;;
ort)
  [ $# -gt 0 ] || set -- "$root/models/mlp_tiny.onnx"
  jar=$(ls "$out"/strand-*.jar | head -n 1)
  mvn -q -B -Dstyle.color=never -f "$root/bindings/java/bench/pom.xml" -Dstrand.jar="$jar" package
  bench_out="$root/bindings/java/bench/target"
  classpath="$bench_out/classes:$jar:$(cat "$bench_out/classpath.txt")"
  for model in "$@"; do
    for threads in ${STRAND_BENCH_THREADS:-1 8 32}; do
      : > /tmp/strand-bench-s.$$
      : > /tmp/strand-bench-o.$$
      for r in $(seq "${repeats:-3}"); do
        for engine in strand ort; do
          line=$(java -Xmx4g -cp "$classpath" dev.strand.bench.Throughput "$engine" "$model" "$threads" \
            "${STRAND_BENCH_WARMUP:-2}" "${STRAND_BENCH_MEASURE:-4}" 2>"$bench_out/stderr.txt" | grep '^throughput:')
          echo "$line"
          echo "$line" | field per_second >> /tmp/strand-bench-$(echo "$engine" | cut -c1).$$
        done
      done
      s=$(median < /tmp/strand-bench-s.$$)
      o=$(median < /tmp/strand-bench-o.$$)
      rm -f /tmp/strand-bench-s.$$ /tmp/strand-bench-o.$$
      echo "$s $o" | awk -v m="$(basename "$model")" -v t="$threads" '{
        printf "ort: model=%s threads=%s strand_per_s=%.1f ort_per_s=%.1f strand/ort=%.2f\n", m, t, $1, $2, $1 / $2 }'
    done
  done
  ;;
*)
  echo "usage: bench/jvm/run.sh overhead|ort [MODEL...]" >&2
  exit 2
  ;;
esac
