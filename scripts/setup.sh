#!/usr/bin/env bash
# One setup for every entry point (make demo, make test, .ci/run): a Node >= 22
# toolchain, pnpm, the workspace's dependencies and build, and the Debian
# packages whose real servers the tests and the local stack run.
# Idempotent: a second run only checks. Fails loudly, never half-way silently.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
. scripts/env.sh

NODE_MAJOR_MIN=22
NODE_PACKAGE="node@24"
PNPM_VERSION="$(node -p 'require("./package.json").packageManager.split("@")[1]' 2>/dev/null || echo 10.34.8)"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------
# binary -> package; binaries may live outside PATH (postgres), so each has a probe.
missing=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
# The leafnode TLS test makes its certificates with openssl.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The dashboard test drives a real headless Chromium.
[ -x /usr/bin/chromium ] || missing+=(chromium)
if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null && ! command -v postgres >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed; install manually: ${missing[*]}"
    apt-get install -y -qq "${missing[@]}" >/dev/null || die "apt-get install failed for: ${missing[*]}"
  else
    die "missing Debian packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})"
  fi
fi
# docker-compose validates the compose files; optional, tests that need it say so.
if ! command -v docker-compose >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing docker-compose (used to validate the compose files)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; } \
    || say "warning: docker-compose could not be installed"
fi

# --- Node ------------------------------------------------------------------
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major node)" -lt "$NODE_MAJOR_MIN" ]; then
  command -v npm >/dev/null 2>&1 || die "npm is required to install $NODE_PACKAGE (install nodejs and npm)"
  say "system node $(node --version 2>/dev/null || echo none) is older than $NODE_MAJOR_MIN; installing $NODE_PACKAGE into .tools/"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --loglevel=error "$NODE_PACKAGE" >/dev/null \
    || die "npm install $NODE_PACKAGE failed"
  hash -r
  [ "$(node_major .tools/node_modules/.bin/node)" -ge "$NODE_MAJOR_MIN" ] \
    || die ".tools/node_modules/.bin/node is not a working Node >= $NODE_MAJOR_MIN"
fi
say "node $(node --version) at $(command -v node)"

# --- pnpm ------------------------------------------------------------------
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  say "installing pnpm@$PNPM_VERSION into .tools/ (corepack is not used)"
  mkdir -p .tools
  # .tools/package.json records what is installed there, so node@24 stays.
  npm install --prefix .tools --no-audit --no-fund --loglevel=error "pnpm@$PNPM_VERSION" >/dev/null \
    || die "npm install pnpm@$PNPM_VERSION failed"
  hash -r
fi
say "pnpm $(pnpm --version)"

# --- workspace -------------------------------------------------------------
pnpm install --frozen-lockfile --reporter=silent || die "pnpm install --frozen-lockfile failed"
pnpm exec turbo run build --output-logs=errors-only || die "build failed"
say "ready"
