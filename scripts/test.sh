#!/usr/bin/env bash
# The whole test suite: lint and typecheck, then every package's tests one
# package at a time (they start real servers; two cores are the budget).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
pnpm exec turbo run lint typecheck --output-logs=errors-only
pnpm exec turbo run test --concurrency=1 --output-logs=full
pnpm test:faults
