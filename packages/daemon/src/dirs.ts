import { chmod, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InvalidArgument, MAX_SOCKET_PATH } from '@ctrd/api-proto';

// Root holds the database and (later) content and snapshots: private. State holds sockets and
// bundles that shims and runc must traverse: 0711, listable only by root.

export async function prepareDirs(root: string, stateDir: string, listen: string): Promise<void> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  await chmod(root, 0o700);
  await mkdir(stateDir, { recursive: true, mode: 0o711 });
  await chmod(stateDir, 0o711);
  await mkdir(dirname(listenPath(listen)), { recursive: true, mode: 0o711 });
}

/** The socket path behind `--listen` (`/path` or `unix:///path`), checked against the kernel limit. */
export function listenPath(listen: string): string {
  const path = listen.startsWith('unix://') ? listen.slice('unix://'.length) : listen;
  if (!path.startsWith('/'))
    throw new InvalidArgument(`--listen ${listen}: must be an absolute unix socket path`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new InvalidArgument(
      `--listen ${listen}: socket path is ${Buffer.byteLength(path)} bytes, longer than the ${MAX_SOCKET_PATH} a unix socket allows: use a shorter path`,
    );
  }
  return path;
}
