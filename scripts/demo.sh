#!/usr/bin/env bash
# The README's main job: set up (idempotent), bring ctrd up on its default socket, import a busybox
# OCI image built here and run it through ctr. A daemon that already answers on the socket is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: containers need root; run it as root (sudo bash scripts/demo.sh)" >&2
  exit 1
fi
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
bash scripts/setup.sh

SOCK=${CTRD_ADDRESS:-/run/ctrd/ctrd.sock}
LOG=/var/log/ctrd.log
PIDFILE=/run/ctrd-demo.pid
ctr() { node packages/ctr/bin/run.js --address "$SOCK" "$@"; }

if ctr version >/dev/null 2>&1; then
  echo "demo: reusing the ctrd already listening on $SOCK" >&2
else
  echo "demo: starting ctrd on $SOCK (logs: $LOG)" >&2
  setsid node packages/daemon/dist/bundle/bin.js --listen "$SOCK" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    ctr version >/dev/null 2>&1 && break
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      echo "demo: ctrd exited during start-up; last log lines:" >&2
      tail -n 20 "$LOG" >&2
      exit 1
    fi
    sleep 0.1
  done
fi

# The daemon may be one started by an older checkout: it must serve the image API.
if ! ctr images ls -q >/dev/null 2>&1; then
  echo "demo: the ctrd on $SOCK does not serve the images API; it predates image support:" >&2
  echo "      stop it (kill its pid; containers keep running) and run this again" >&2
  exit 1
fi

# A one-layer busybox OCI image built here from Debian's busybox-static, so the demo works offline.
IMAGE=localhost/ctrd-demo/busybox:latest
ARCHIVE=/var/lib/ctrd-demo/busybox-oci.tar
mkdir -p "$(dirname "$ARCHIVE")"
if [ ! -s "$ARCHIVE" ]; then
  echo "demo: building the OCI image $IMAGE in $ARCHIVE" >&2
  node e2e/test/helpers/oci-image-cli.mjs "$ARCHIVE" "$IMAGE" >&2
fi
echo "demo: ctr images import $ARCHIVE" >&2
ctr images import "$ARCHIVE"
ctr images ls

id="demo-$$"
echo "demo: ctr run --rm $IMAGE $id   (the image's own command, env and working dir)" >&2
ctr run --rm "$IMAGE" "$id"
echo "demo: ctr run --rm $IMAGE $id-sh /bin/sh -c ..." >&2
ctr run --rm "$IMAGE" "$id-sh" /bin/sh -c \
  'echo "hello from a busybox container run by ctrd"; echo "inside: $(hostname), pid $$, $(uname -sr)"'

ctr version
echo
echo "ctrd keeps running on $SOCK (logs: $LOG)."
echo "  list images:      node packages/ctr/bin/run.js images ls"
echo "  list containers:  node packages/ctr/bin/run.js containers ls"
echo "  pull from a registry (with network): node packages/ctr/bin/run.js images pull docker.io/library/busybox:latest"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "  stop the daemon:  kill $(cat "$PIDFILE")   (containers keep running; ctrd reconnects on start)"
fi
