#!/usr/bin/env bash
# make demo: bring up the local two-site stack (idempotent) and say what runs.
# Until the georep services exist this is the infrastructure of both sites.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
node packages/stack/dist/cli.js up
echo
node packages/stack/dist/cli.js status
echo
echo "Stop everything with: make down"
