import { createHash } from 'node:crypto';
import { join } from 'node:path';

// The shim's socket is a path socket (never abstract: CVE-2020-15257 let host-network containers
// reach abstract shim sockets), 0600 in a 0700 directory, named by a hash so the path stays short
// (sun_path holds 108 bytes) whatever the ids.

/** `<state>/s`, the 0700 directory of shim sockets. */
export function socketDir(stateDir: string): string {
  return join(stateDir, 's');
}

/** The socket path of shim `shimId` in namespace `namespace` serving the daemon at `daemonAddress`. */
export function shimSocketPath(
  stateDir: string,
  namespace: string,
  shimId: string,
  daemonAddress: string,
): string {
  const hash = createHash('sha256').update(`${daemonAddress}\0${namespace}\0${shimId}`).digest('hex');
  return join(socketDir(stateDir), hash);
}

/** `<state>/shims/<shimid>`, where the shim keeps its own log. */
export function shimDir(stateDir: string, shimId: string): string {
  return join(stateDir, 'shims', shimId);
}
