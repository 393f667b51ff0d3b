#!/usr/bin/env bash
# Runs every check CI runs: setup (idempotent), lint, typecheck, generated-code check, unit and e2e tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
bash scripts/setup.sh

rm -rf .reports && mkdir -p .reports
status=0
npx biome check scripts || status=1
npx nx run-many -t lint typecheck gen-check --outputStyle=static || status=1
# Tests run one package at a time: the e2e suites start real containers and daemons.
npx nx run-many -t test --parallel=1 --outputStyle=static || status=1
node scripts/test-summary.mjs .reports || status=1
exit $status
