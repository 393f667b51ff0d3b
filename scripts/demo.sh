#!/usr/bin/env bash
# The README's main job: set up (idempotent), then run a busybox container.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: containers need root; run it as root (sudo bash scripts/demo.sh)" >&2
  exit 1
fi
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
bash scripts/setup.sh

echo "demo: running a busybox container through @ctrd/runc-client" >&2
node packages/runc-client/examples/run-busybox.mjs
