import { InvalidArgument } from './errors.js';

// Unix socket addresses as containerd writes them, shared by the gRPC and the ttrpc transports.

/** Longest unix socket path accepted, in bytes (containerd's limit). */
export const MAX_SOCKET_PATH = 104;

/** The socket path in `unix:///path`, `unix:/path` or `/path`. */
export function socketPath(address: string): string {
  let path = address;
  if (path.startsWith('unix://')) path = path.slice('unix://'.length);
  else if (path.startsWith('unix:')) path = path.slice('unix:'.length);
  // sun_path holds 108 bytes with the NUL; containerd stops at 104 to stay portable.
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new InvalidArgument(
      `address ${JSON.stringify(address)}: socket path is ${Buffer.byteLength(path)} bytes, over the limit of ${MAX_SOCKET_PATH}: use a shorter directory`,
    );
  }
  if (path === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    throw new InvalidArgument(
      `address ${JSON.stringify(address)}: expected a unix socket path such as /run/ctrd/ctrd.sock or unix:///run/ctrd/ctrd.sock`,
    );
  }
  return path;
}
