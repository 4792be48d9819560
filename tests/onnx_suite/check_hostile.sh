#!/bin/sh
# Runs strand over a corpus of hostile model files built from a seed by
# scripts/make_hostile_models.py, with a build that has AddressSanitizer and
# LeakSanitizer: files marked "error" must be refused with exit status 1 and
# a one-line reason; no file may crash, hang or leak.
#   tests/onnx_suite/check_hostile.sh PYTHON [BUILD_DIR]
set -eu
python=$1
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-$here/build/asan}
corpus=$build/hostile
rm -rf "$corpus"
"$python" "$here/scripts/make_hostile_models.py" "$corpus" --seed 1 >/dev/null
# A sanitizer report exits with 86, distinct from strand's own refusal (1).
export ASAN_OPTIONS="detect_leaks=1:exitcode=86"
export UBSAN_OPTIONS="halt_on_error=1:exitcode=86"
total=0
bad=0
tab=$(printf '\t')
while IFS="$tab" read -r file kind expect note; do
  case "$file" in "" | "#"* | file) continue ;; esac
  total=$((total + 1))
  set +e
  timeout 60 "$build/strand" info "$corpus/$file" >"$corpus/.out" 2>"$corpus/.err"
  rc=$?
  set -e
  lines=$(wc -l < "$corpus/.err")
  # `strand info` describes what loads; a model whose only fault is an op
  # strand cannot run loads and lists it as unsupported, which is a refusal.
  if [ "$expect:$rc" = error:0 ] && grep -q "^unsupported " "$corpus/.out" &&
     ! grep -q "^unsupported  *none" "$corpus/.out"; then rc=1; lines=1; fi
  case "$expect:$rc" in
    error:1 | any:0 | any:1 | ok:0)
      if [ "$rc" = 1 ] && [ "$lines" != 1 ]; then
        echo "$file ($note): refused without a one-line reason"; cat "$corpus/.err"; bad=$((bad + 1))
      fi ;;
    *)
      echo "$file ($kind, expect $expect: $note): exit status $rc"; head -20 "$corpus/.err"; bad=$((bad + 1)) ;;
  esac
done < "$corpus/manifest.tsv"
echo "check_hostile: $total files, $bad wrong"
[ "$bad" = 0 ]
