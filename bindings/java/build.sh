#!/bin/sh
# Builds strand's JVM binding and runs its JUnit and ScalaTest suites.
#
#   bindings/java/build.sh [--bench | --build-only] [release | debug | asan | BUILD_DIR]
#
# 1. Installs what is missing (as root on Debian: a JDK 17 and Maven only when
#    javac or mvn is absent; cmake, ninja and gcc through scripts/deps.sh).
# 2. Configures and builds the JNI library (target strand_jni) in the CMake
#    tree, for a preset (default release) or in an existing build directory:
#    through the top-level option STRAND_BUILD_JAVA in build/<preset>, or,
#    while the main CMakeLists.txt lacks that option, through
#    bindings/java/CMakeLists.txt on its own in build/java-<preset>. With
#    asan (STRAND_SANITIZE=address) the tests run with AddressSanitizer
#    preloaded into the JVM.
# 3. Copies libstrand_jni.so to target/native-resources/native/<platform>/
#    (a Maven resource directory; nothing is committed) and runs
#    `mvn -q -B package`: compile, JUnit and ScalaTest, then the jar
#    target/strand-<version>.jar, which carries the library. An asan build
#    uses target/asan/ instead, so that its library never reaches the jar.
# 4. Prints "java: N passed, N failed, N skipped" from the test reports.
#
# --bench skips the tests and instead runs the JNI overhead benchmark
# (bench/jvm/run.sh overhead: the C API and the Java API on the same loop,
# interleaved). --build-only builds the library, classes, test classes and
# jar without running the tests (what bench/jvm/run.sh needs).
# STRAND_BUILD_DIR puts a preset's build (release, debug, asan: same settings)
# in that directory instead of build/<preset>.
# STRAND_JAVA_MVN_ARGS adds Maven arguments.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bench=0
case ${1:-} in
  --bench) bench=1; shift ;;
  --build-only) bench=2; shift ;;
esac

# ---- 1. tools ------------------------------------------------------------------------
sh "$root/scripts/deps.sh"
missing=""
command -v javac >/dev/null 2>&1 || missing="$missing openjdk-17-jdk-headless"
command -v mvn >/dev/null 2>&1 || missing="$missing maven"
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "strand: the JVM binding needs$missing; run as root or install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

# ---- 2. the JNI library -------------------------------------------------------------------
# TARGET is a preset of CMakePresets.json (release, debug, asan) or a build directory.
cd "$root"
target=${1:-release}
case $target in
  release) build_type=RelWithDebInfo sanitize="" ;;
  debug) build_type=Debug sanitize="" ;;
  asan) build_type=Debug sanitize=address ;;
  tsan | ubsan)
    echo "strand: the JVM tests run on release, debug or asan builds, not $target" >&2
    exit 1 ;;
  *) build_type="" ;;
esac
if grep -q "STRAND_BUILD_JAVA" CMakeLists.txt; then
  if [ -n "$build_type" ] && [ -n "${STRAND_BUILD_DIR:-}" ]; then # a preset's settings elsewhere
    build_dir=$STRAND_BUILD_DIR
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" -DSTRAND_WERROR=ON \
      -DSTRAND_SANITIZE="$sanitize" -DSTRAND_BUILD_JAVA=ON >/dev/null
  elif [ -n "$build_type" ]; then # a preset
    build_dir=build/$target
    cmake --preset "$target" -DSTRAND_BUILD_JAVA=ON >/dev/null
  else
    build_dir=$target
    cmake -S . -B "$build_dir" -DSTRAND_BUILD_JAVA=ON >/dev/null
  fi
else # the main tree has no STRAND_BUILD_JAVA: bindings/java/CMakeLists.txt on its own
  if [ -n "$build_type" ]; then
    build_dir=${STRAND_BUILD_DIR:-build/java-$target}
    cmake -S bindings/java -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
      -DSTRAND_WERROR=ON -DSTRAND_SANITIZE="$sanitize" >/dev/null
  else
    build_dir=$target
    cmake -S bindings/java -B "$build_dir" >/dev/null
  fi
fi
build_dir=$(cd "$build_dir" && pwd)
cmake --build "$build_dir" --target strand_jni strand_jni_bench_c
library=$(find "$build_dir" -path "*/resources/native/*" -name libstrand_jni.so | head -n 1)
if [ -z "$library" ]; then
  echo "strand: libstrand_jni.so was not built in $build_dir" >&2
  exit 1
fi
bench_c=$(find "$build_dir" -type f -name strand_jni_bench_c | head -n 1)

# ---- 3. resources, sanitizer, Maven ---------------------------------------------------
platform=$(basename "$(dirname "$library")")
out="$here/target" # Maven's output: classes, reports, the jar
if grep -q "^STRAND_SANITIZE:STRING=." "$build_dir/CMakeCache.txt" 2>/dev/null; then
  out="$here/target/asan" # kept apart: its library needs the sanitizer preloaded
fi
resources="$out/native-resources/native/$platform"
mkdir -p "$resources"
rm -f "$resources/libstrand_jni.so"
if grep -q "^STRAND_SANITIZE:STRING=." "$build_dir/CMakeCache.txt" 2>/dev/null ||
   ! command -v objcopy >/dev/null 2>&1; then
  cp "$library" "$resources/libstrand_jni.so"
else
  # The jar carries the symbol table (readable crash reports), not the DWARF.
  objcopy --strip-debug "$library" "$resources/libstrand_jni.so"
fi

if grep -q "^STRAND_SANITIZE:STRING=address" "$build_dir/CMakeCache.txt" 2>/dev/null; then
  # The JVM handles SIGSEGV itself (null checks, safepoints): ASan must leave
  # it alone. Its leak checker would report the JVM's own allocations.
  LD_PRELOAD=$(gcc -print-file-name=libasan.so)
  # Ours come last so that they win over inherited ones (scripts/test.sh asks
  # for leak checking, which cannot work inside a JVM).
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0:allow_user_segv_handler=1:detect_leaks=0:abort_on_error=1"
  export LD_PRELOAD ASAN_OPTIONS
  echo "== java: AddressSanitizer build ($build_dir)"
elif grep -q "^STRAND_SANITIZE:STRING=." "$build_dir/CMakeCache.txt" 2>/dev/null; then
  echo "strand: the JVM tests run on release, debug or address builds, not $build_dir" >&2
  exit 1
fi

cd "$here"
if [ "$bench" != 0 ]; then
  mvn -q -B -Dstyle.color=never -Dstrand.build.dir="$out" -DskipTests ${STRAND_JAVA_MVN_ARGS:-} package
  if [ "$bench" = 1 ]; then
    exec env STRAND_BENCH_C="$bench_c" STRAND_JAVA_OUT="$out" sh "$root/bench/jvm/run.sh" overhead
  fi
  echo "java-build: out=$out bench_c=$bench_c"
  exit 0
fi

# The concurrency scenario (ConcurrencyScenarioTest): the issue's full
# 1,000,000 predictions against an optimized build (about 75 s on two cores),
# 60,000 against debug and AddressSanitizer builds (many times slower per
# prediction). STRAND_STRESS_PREDICTIONS overrides both.
if grep -q "^STRAND_SANITIZE:STRING=." "$build_dir/CMakeCache.txt" 2>/dev/null ||
   grep -q "^CMAKE_BUILD_TYPE:STRING=Debug" "$build_dir/CMakeCache.txt" 2>/dev/null; then
  predictions=${STRAND_STRESS_PREDICTIONS:-60000}
else
  predictions=${STRAND_STRESS_PREDICTIONS:-1000000}
fi
echo "== java: concurrency scenario at $predictions predictions"

status=0
rm -rf "$out/surefire-reports" "$out/scalatest-reports"
mvn -q -B -Dstyle.color=never -Dstrand.build.dir="$out" -Dstrand.stress.predictions="$predictions" \
  ${STRAND_JAVA_MVN_ARGS:-} package || status=$?

# ---- 4. the count ----------------------------------------------------------------------
# Surefire and the ScalaTest plugin both write JUnit XML reports.
counts=$(for f in "$out"/surefire-reports/TEST-*.xml "$out"/scalatest-reports/TEST-*.xml; do
    [ -f "$f" ] && tr '\n' ' ' < "$f" | grep -o '<testsuite [^>]*>'
  done | awk '
    function field(name,   r) {
      if (match($0, name "=\"[0-9]+\"")) { r = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", r); return r + 0 }
      return 0
    }
    { T += field("tests"); F += field("failures") + field("errors"); S += field("skipped") }
    END { printf "%d %d %d\n", T - F - S, F, S }')
set -- $counts
if [ "$status" != 0 ] && [ "${2:-0}" = 0 ]; then
  set -- "${1:-0}" 1 "${3:-0}" # the build failed outside the tests
fi
printf "\n"
echo "java: ${1:-0} passed, ${2:-0} failed, ${3:-0} skipped"
exit "$status"
