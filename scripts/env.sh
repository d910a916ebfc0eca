# shellcheck shell=bash
# Sourced by the Makefile and scripts: puts the project-local toolchain
# (.tools/, installed by scripts/setup.sh) ahead of the system one.
GEOREP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GEOREP_ROOT
export PATH="$GEOREP_ROOT/.tools/node_modules/.bin:$GEOREP_ROOT/node_modules/.bin:$PATH"
export TURBO_TELEMETRY_DISABLED=1
export DO_NOT_TRACK=1
