#!/bin/sh
# A standalone Spark cluster on loopback runs the example through spark-submit.
#
#   bindings/spark/cluster.sh [ROWS]        (default 1000000)
#
# 1. SPARK_HOME comes from Maven, not from a Spark distribution: the module's
#    provided dependencies (Spark 4 and everything it needs) are copied into
#    target/spark-home/jars, with a RELEASE file (so that the worker's
#    launcher looks for its jars there) and conf/log4j2.properties.
# 2. A master and two workers (2 cores, 1 GiB each) start as separate JVMs on
#    127.0.0.1, with free ports chosen by the kernel; they are always stopped
#    on exit, with the executors they started.
# 3. The example writes its inputs as a .npy file (no Spark), the strand CLI
#    scores them single-threaded (STRAND_THREADS=1): the reference. Then
#    spark-submit runs the example on the cluster, with the strand jar (it
#    carries the JNI library) and the module jar shipped with --jars and the
#    model with --files; every row must equal the reference bit for bit, and
#    both executors must report no live strand objects once their cached
#    sessions are closed.
#
# Needs: bindings/java/target/strand-<v>.jar (or STRAND_JAR), the module's
# jar (mvn package), the strand CLI at build/release/strand (or STRAND_CLI).
# Prints "cluster: 1 passed, 0 failed" or "cluster: 0 passed, 1 failed".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rows=${1:-1000000}
version=0.1.0
strand_jar=${STRAND_JAR:-$root/bindings/java/target/strand-$version.jar}
module_jar=$here/target/strand-spark_2.13-$version.jar
cli=${STRAND_CLI:-$root/build/release/strand}
spark_home=$here/target/spark-home
for f in "$strand_jar" "$module_jar" "$cli"; do
  if [ ! -e "$f" ]; then
    echo "cluster: $f is missing (run bindings/spark/build.sh)" >&2
    echo "cluster: 0 passed, 1 failed"
    exit 1
  fi
done

# ---- 1. SPARK_HOME from Maven -----------------------------------------------------------
echo "cluster: $(date +%T) start"
if [ ! -f "$spark_home/RELEASE" ]; then
  rm -rf "$spark_home"
  (cd "$here" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
    -DincludeScope=provided -DoutputDirectory="$spark_home/jars")
  mkdir -p "$spark_home/conf"
  echo "Spark (jars resolved by Maven for strand-spark)" > "$spark_home/RELEASE"
fi
cp "$here/conf/log4j2.properties" "$spark_home/conf/"
SPARK_HOME=$spark_home
SPARK_SCALA_VERSION=2.13
SPARK_LOCAL_IP=127.0.0.1
export SPARK_HOME SPARK_SCALA_VERSION SPARK_LOCAL_IP
classpath="$spark_home/conf:$spark_home/jars/*"
# What Spark 4 needs opened on Java 17 (spark-class adds the same).
jvm_args=$(sed -n 's:.*<spark.jvm.args>\(.*\)</spark.jvm.args>.*:\1:p' "$here/pom.xml")

# ---- 2. the cluster ---------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/strand-cluster.XXXXXX")
pids=""
stop() {
  status=$?
  trap - EXIT INT TERM
  # The executors are the workers' children: note them before the workers go.
  children=""
  for pid in $pids; do
    children="$children $(pgrep -P "$pid" 2>/dev/null || true)"
  done
  for pid in $pids $children; do kill "$pid" 2>/dev/null || true; done
  for i in 1 2 3 4 5 6 7 8 9 10; do
    alive=""
    for pid in $pids $children; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
    [ -z "$alive" ] && break
    sleep 1
  done
  for pid in $alive; do kill -9 "$pid" 2>/dev/null || true; done
  if [ "$status" != 0 ]; then
    for log in "$work"/*.log; do
      [ -f "$log" ] && { echo "---- $log (last lines)"; tail -n 30 "$log"; }
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap stop EXIT INT TERM

# Waits for a line matching $2 in log $1 and prints it (60 s at most).
await() {
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 120 ]; then
      echo "cluster: gave up waiting for '$2' in $1" >&2
      return 1
    fi
    sleep 0.5
  done
  grep -m 1 "$2" "$1"
}

java -cp "$classpath" $jvm_args -Xmx256m org.apache.spark.deploy.master.Master \
  --host 127.0.0.1 --port 0 --webui-port 0 > "$work/master.log" 2>&1 &
pids="$pids $!"
line=$(await "$work/master.log" "Starting Spark master at spark://")
master=$(echo "$line" | sed 's:.*\(spark\://[^ ]*\).*:\1:')
echo "cluster: $(date +%T) master $master"
for n in 1 2; do
  mkdir -p "$work/worker$n"
  java -cp "$classpath" $jvm_args -Xmx256m org.apache.spark.deploy.worker.Worker \
    --host 127.0.0.1 --port 0 --webui-port 0 --cores 2 --memory 1g --work-dir "$work/worker$n" \
    "$master" > "$work/worker$n.log" 2>&1 &
  pids="$pids $!"
done
for n in 1 2; do
  await "$work/worker$n.log" "Successfully registered with master" >/dev/null
done
echo "cluster: $(date +%T) two workers registered"

# ---- 3. reference and spark-submit --------------------------------------------------------
java -cp "$classpath:$strand_jar:$module_jar" dev.strand.spark.example.ScoreExample \
  --write-inputs "$work/inputs.npy" --rows "$rows"
STRAND_THREADS=1 "$cli" run "$root/models/mlp_tiny.onnx" --input "input=$work/inputs.npy" \
  --output-dir "$work/reference" > "$work/reference.log"
echo "cluster: $(date +%T) reference computed by $cli (STRAND_THREADS=1)"

status=0
java -cp "$classpath" $jvm_args -Xmx1g org.apache.spark.deploy.SparkSubmit \
  --master "$master" --deploy-mode client \
  --class dev.strand.spark.example.ScoreExample \
  --jars "$strand_jar" --files "$root/models/mlp_tiny.onnx" \
  --conf spark.driver.host=127.0.0.1 \
  --conf spark.executor.memory=768m \
  --conf spark.cores.max=4 \
  --conf spark.scheduler.minRegisteredResourcesRatio=1.0 \
  --conf spark.scheduler.maxRegisteredResourcesWaitingTime=120s \
  --conf spark.ui.enabled=false \
  "$module_jar" \
  --model mlp_tiny.onnx --rows "$rows" --partitions 8 --reference "$work/reference/output.npy" \
  --executors 2 || status=$?
echo "cluster: $(date +%T) spark-submit exited with $status"
if [ "$status" = 0 ]; then
  echo "cluster: 1 passed, 0 failed"
else
  echo "cluster: 0 passed, 1 failed"
fi
exit "$status"
