#!/bin/sh
# Installs what building strand needs, on a fresh Debian machine as root.
# Idempotent: does nothing when the tools are already there.
set -e
missing=""
command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
command -v ninja >/dev/null 2>&1 || missing="$missing ninja-build"
command -v gcc >/dev/null 2>&1 || missing="$missing gcc"
command -v python3 >/dev/null 2>&1 || missing="$missing python3 python3-venv"
# Extra tools on request: scripts/deps.sh clang
for tool in "$@"; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "strand: needs$missing; run as root or install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
