#!/usr/bin/env bash
# The README's main job: set up (idempotent), bring ctrd up on its default socket, and run a busybox
# container through ctr. A daemon that already answers on the socket is reused.
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
ROOTFS=/var/lib/ctrd-demo/busybox-rootfs
ctr() { node packages/ctr/bin/run.js --address "$SOCK" "$@"; }

if ctr version >/dev/null 2>&1; then
  echo "demo: reusing the ctrd already listening on $SOCK" >&2
else
  echo "demo: starting ctrd on $SOCK (logs: $LOG)" >&2
  setsid node packages/daemon/dist/bin.js --listen "$SOCK" >>"$LOG" 2>&1 </dev/null &
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

# A rootfs from Debian's busybox-static: works offline.
if [ ! -x "$ROOTFS/bin/busybox" ]; then
  echo "demo: building a busybox rootfs in $ROOTFS" >&2
  mkdir -p "$ROOTFS"/{bin,etc,proc,sys,dev,tmp,root}
  cp /bin/busybox "$ROOTFS/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$ROOTFS/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOTFS/etc/passwd"
  printf 'root:x:0:\n' >"$ROOTFS/etc/group"
fi

id="demo-$$"
echo "demo: ctr run --rm --rootfs $ROOTFS $id ..." >&2
ctr run --rm --rootfs "$ROOTFS" "$id" /bin/sh -c \
  'echo "hello from a busybox container run by ctrd"; echo "inside: $(hostname), pid $$, $(uname -sr)"'

ctr version
echo
echo "ctrd keeps running on $SOCK (logs: $LOG)."
echo "  list containers:  node packages/ctr/bin/run.js containers ls"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "  stop the daemon:  kill $(cat "$PIDFILE")   (containers keep running; ctrd reconnects on start)"
fi
