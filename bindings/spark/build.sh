#!/bin/sh
# Builds strand-spark and runs its tests: one command for CI.
#
#   bindings/spark/build.sh [--no-cluster] [release | BUILD_DIR]
#
# 1. The release build of strand (CMake preset release, or BUILD_DIR): the
#    `strand` CLI, which computes the reference outputs.
# 2. The JVM binding's jar through bindings/java/build.sh (which installs a
#    JDK 17 and Maven when missing, as root), with its own tests skipped
#    (the java stage runs them), then installed into the local Maven
#    repository as dev.strand:strand (install:install-file), the dependency
#    of this module: nothing in bindings/java changes.
# 3. `mvn package` here: compile, the ScalaTest suites (local[4] scores
#    1,000,000 rows against `strand run`; error paths; save/load), the jar.
# 4. cluster.sh: a master and two workers on loopback run the example.
# Ends with "spark: N passed, N failed" (ScalaTest tests + the cluster run)
# and exits non-zero on any failure.
# STRAND_SPARK_MVN_ARGS adds Maven arguments; STRAND_SPARK_ROWS sets the rows
# of the local[4] test and of the cluster run (default 1000000).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cluster=1
if [ "${1:-}" = "--no-cluster" ]; then
  cluster=0
  shift
fi
target=${1:-release}
rows=${STRAND_SPARK_ROWS:-1000000}
logs=$here/target/logs
mkdir -p "$logs"

# ---- 1 and 2. strand, the CLI, the JVM binding's jar ------------------------------------------
# (bindings/java/build.sh runs scripts/deps.sh and installs the JDK and Maven.)
echo "== spark: the JVM binding's jar (bindings/java/build.sh $target, tests skipped)"
if ! STRAND_JAVA_MVN_ARGS="-DskipTests ${STRAND_JAVA_MVN_ARGS:-}" \
     sh "$root/bindings/java/build.sh" "$target" > "$logs/java.log" 2>&1; then
  tail -n 40 "$logs/java.log"
  echo "spark: 0 passed, 1 failed"
  exit 1
fi
cd "$root"
case $target in
  release) build_dir=$root/build/release
           cmake --preset release > "$logs/cmake.log" 2>&1 ;;
  *) build_dir=$(cd "$target" && pwd) ;;
esac
echo "== spark: the strand CLI ($build_dir)"
if ! cmake --build "$build_dir" --target strand >> "$logs/cmake.log" 2>&1; then
  tail -n 40 "$logs/cmake.log"
  echo "spark: 0 passed, 1 failed"
  exit 1
fi
cli=$build_dir/strand
version=$(sed -n 's:^  <version>\(.*\)</version>:\1:p' "$root/bindings/java/pom.xml" | head -n 1)
jar=$root/bindings/java/target/strand-$version.jar
mvn -q -B -Dstyle.color=never install:install-file -Dfile="$jar" -DgroupId=dev.strand \
  -DartifactId=strand -Dversion="$version" -Dpackaging=jar > "$logs/install.log" 2>&1 ||
  { cat "$logs/install.log"; echo "spark: 0 passed, 1 failed"; exit 1; }

# ---- 3. this module: compile, ScalaTest, jar --------------------------------------------------
echo "== spark: mvn package (ScalaTest, local[4], $rows rows)"
cd "$here"
rm -rf target/scalatest-reports
status=0
mvn -B -Dstyle.color=never -Dstrand.version="$version" -Dstrand.cli="$cli" \
  -Dstrand.spark.rows="$rows" ${STRAND_SPARK_MVN_ARGS:-} package > "$logs/mvn.log" 2>&1 || status=$?
# The suites' results (ScalaTest's reporter lists each test; failures say *** FAILED ***).
grep -E "^(Tests: |Run completed|All tests passed)|FAILED \*\*\*" "$logs/mvn.log" | awk '!seen[$0]++' | tail -n 40 || true
[ "$status" != 0 ] && grep -E "^\[ERROR\]" "$logs/mvn.log" | head -n 20
counts=$(for f in target/scalatest-reports/TEST-*.xml; do
    [ -f "$f" ] && tr '\n' ' ' < "$f" | grep -o '<testsuite [^>]*>'
  done | awk '
    function field(name,   r) {
      if (match($0, name "=\"[0-9]+\"")) { r = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", r); return r + 0 }
      return 0
    }
    { T += field("tests"); F += field("failures") + field("errors"); S += field("skipped") }
    END { printf "%d %d\n", T - F - S, F }')
passed=${counts% *}
failed=${counts#* }
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then
  failed=1 # the build failed outside the tests
fi
echo "spark: scalatest $passed passed, $failed failed"

# ---- 4. the cluster ---------------------------------------------------------------------
if [ "$cluster" = 1 ]; then
  echo "== spark: cluster.sh (master + 2 workers on 127.0.0.1, $rows rows)"
  if [ -f "target/strand-spark_2.13-$version.jar" ] &&
     STRAND_JAR="$jar" STRAND_CLI="$cli" sh "$here/cluster.sh" "$rows" > "$logs/cluster.log" 2>&1; then
    passed=$((passed + 1))
    grep -E "^(example|cluster):" "$logs/cluster.log" || true
  else
    failed=$((failed + 1))
    tail -n 60 "$logs/cluster.log"
  fi
fi
printf "\n"
echo "spark: $passed passed, $failed failed"
[ "$failed" = 0 ]
