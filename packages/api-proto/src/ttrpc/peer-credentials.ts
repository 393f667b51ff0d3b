import type { Socket } from 'node:net';

// containerd's shim and daemon serve ttrpc with UnixSocketRequireSameUser (ttrpc
// unixcreds_linux.go): the kernel's SO_PEERCRED of each accepted connection must carry the
// server's effective uid and gid, or the connection is closed. Node has no getsockopt, so the call
// goes through koffi, loaded on first use: importing @ctrd/api-proto/ttrpc does not pay for the
// native addon (~35 ms), and a server with `peerCheck: 'none'` never loads it.

/** The peer's credentials as the kernel recorded them at connect(2). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** Reads SO_PEERCRED of a connected unix socket. */
export type PeerCredentialsReader = (socket: Socket) => PeerCredentials;

// SOL_SOCKET and SO_PEERCRED are not the same on every Linux architecture (asm-generic/socket.h:
// 1 and 17; powerpc: 21; mips: 0xffff and 18).
function sockoptNumbers(arch: string): { level: number; name: number } {
  switch (arch) {
    case 'ppc64':
    case 'ppc':
      return { level: 1, name: 21 };
    case 'mips':
    case 'mipsel':
      return { level: 0xffff, name: 18 };
    default:
      return { level: 1, name: 17 };
  }
}

let reader: Promise<PeerCredentialsReader> | undefined;

/** Binds getsockopt(2) through koffi (once); rejects where it cannot (not Linux, no koffi). */
export function loadPeerCredentialsReader(): Promise<PeerCredentialsReader> {
  reader ??= (async () => {
    if (process.platform !== 'linux')
      throw new Error(`SO_PEERCRED is Linux only (platform ${process.platform})`);
    const koffi = (await import('koffi')).default;
    const lib = koffi.load('libc.so.6');
    const getsockopt = lib.func(
      'int getsockopt(int fd, int level, int name, _Out_ void *value, _Inout_ uint32_t *length)',
    ) as (fd: number, level: number, name: number, value: Buffer, length: number[]) => number;
    const { level, name } = sockoptNumbers(process.arch);
    return (socket: Socket): PeerCredentials => {
      const fd = socketFd(socket);
      // struct ucred { pid_t pid; uid_t uid; gid_t gid; }, in the machine's byte order.
      const value = Buffer.alloc(12);
      const length = [12];
      if (getsockopt(fd, level, name, value, length) !== 0) {
        throw new Error(`getsockopt(SO_PEERCRED) on fd ${fd}: errno ${koffi.errno()}`);
      }
      const u = new Uint32Array(value.buffer, value.byteOffset, 3);
      return { pid: u[0]! | 0, uid: u[1]!, gid: u[2]! };
    };
  })();
  // A failed load is not kept: the next server may try again (and say why again).
  reader.catch(() => {
    reader = undefined;
  });
  return reader;
}

// net.Socket keeps its descriptor on the libuv pipe handle; Node documents no accessor for it.
function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0)
    throw new Error('the socket has no file descriptor (closed, or not a unix socket)');
  return fd;
}

/** UnixSocketRequireSameUser: the peer's uid and gid are this process's effective ones. */
export function isSameUser(
  cred: PeerCredentials,
  self: { uid: number; gid: number } = { uid: process.geteuid?.() ?? -1, gid: process.getegid?.() ?? -1 },
): boolean {
  return cred.uid === self.uid && cred.gid === self.gid;
}
