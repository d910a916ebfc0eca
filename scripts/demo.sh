#!/usr/bin/env bash
# make demo: bring up the local multi-site stack (idempotent), push a sample
# image to the primary and show where it went; the stack stays up.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
node packages/stack/dist/cli.js up
echo
node packages/stack/dist/cli.js demo
echo
echo "The stack keeps running (.georep/stack.json describes it). Stop everything with: make down"
