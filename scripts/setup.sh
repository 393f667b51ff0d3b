#!/usr/bin/env bash
# Idempotent setup for a fresh Debian/Ubuntu machine with Node >= 20: system packages, npm deps, build.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { if [ "$(id -u)" -ne 0 ]; then echo "sudo"; fi; }

# System packages the runtime and its tests use. Each is checked by the file it provides.
declare -A APT=(
  [runc]=/usr/sbin/runc
  [busybox-static]=/bin/busybox
  [containerd]=/usr/bin/ctr
  [criu]=/usr/sbin/criu
  [umoci]=/usr/bin/umoci
  [skopeo]=/usr/bin/skopeo
  [docker-registry]=/usr/bin/docker-registry
  [tmux]=/usr/bin/tmux
  [iproute2]=/usr/sbin/ip
  # getfattr/setfattr: the hostile-layer e2e test reads the host canary's xattrs with them.
  [attr]=/usr/bin/getfattr
  # node-gyp builds better-sqlite3 from source when no prebuilt binary can be fetched.
  [python3]=/usr/bin/python3
)
missing=()
for pkg in "${!APT[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then missing+=("$pkg"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=$(need_root)
  $SUDO apt-get update -qq
  # policy-rc.d keeps the stock containerd and registry services from starting on install.
  $SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# npm deps: reinstall only when package-lock.json changed since the last install here.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.ctrd-lock-sha ] || [ "$(cat node_modules/.ctrd-lock-sha)" != "$lock_sum" ]; then
  echo "setup: npm ci" >&2
  npm ci --no-fund --no-audit >&2
  echo "$lock_sum" > node_modules/.ctrd-lock-sha
fi

echo "setup: building" >&2
NX_DAEMON=false npx nx run-many -t build --outputStyle=static >&2
