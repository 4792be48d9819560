#!/usr/bin/env bash
# venv.sh — creates (once) the Python virtual environment strand's scripts and
# tests use, and prints its path on stdout (everything else goes to stderr):
#
#   VENV=$(scripts/venv.sh)            numpy, onnx, onnxruntime (requirements.txt)
#   VENV=$(scripts/venv.sh --torch)    the same plus PyTorch (requirements-torch.txt)
#
# The venv lives at $STRAND_VENV, or <repo>/.venv. Running again is cheap: the
# packages are installed only when the requirement files changed since the
# last successful install. If `python3 -m venv` does not work (Debian without
# python3-venv), python3-venv is installed with apt-get (as root, or via sudo).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${STRAND_VENV:-$repo/.venv}"
python="${PYTHON:-python3}"
requirements=("$repo/scripts/requirements.txt")

for arg in "$@"; do
  case "$arg" in
    --torch) requirements+=("$repo/scripts/requirements-torch.txt") ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "venv.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

log() { echo "venv.sh: $*" >&2; }

command -v "$python" >/dev/null || { log "$python not found"; exit 1; }

make_venv() { "$python" -m venv "$venv" >&2; }

install_venv_package() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "python3 -m venv failed; install python3-venv as root"; exit 1; }
    sudo="sudo"
  fi
  command -v apt-get >/dev/null || { log "python3 -m venv failed and there is no apt-get; install the venv module for $python"; exit 1; }
  # Debian names the package after the minor version on some releases
  # (python3.11-venv); python3-venv depends on the right one.
  local minor
  minor="$("$python" -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])')"
  log "installing python3-venv with apt-get"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >&2 ||
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$minor" >&2
}

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  log "creating $venv"
  rm -rf "$venv"
  if ! make_venv; then
    rm -rf "$venv"
    install_venv_package
    make_venv || { log "python3 -m venv still fails"; exit 1; }
  fi
fi

# Reinstall only when the requirement files (or the arguments) changed.
stamp="$venv/.strand-requirements"
wanted="$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  args=()
  for r in "${requirements[@]}"; do args+=(-r "$r"); done
  log "installing ${requirements[*]##*/}"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}" >&2
  echo "$wanted" > "$stamp"
fi

echo "$venv"
