import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import * as tty from 'node:tty';
import { addressOf, EAGAIN, EINTR, errno, loadLibc, pollReadable, sysError } from './libc.js';
import { closeFd, setWinsize } from './sys.js';

// runc --console-socket: runc connects to this unix socket and sends the pty master as SCM_RIGHTS
// ancillary data. Node's net module drops ancillary data, so the socket is made and read through libc
// (koffi); koffi's libuv poll handle wakes us when a connection or message is ready, so nothing blocks
// the event loop.

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_CMSG_CLOEXEC = 0x40000000;
const SUN_PATH_MAX = 107;

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error
    ? signal.reason
    : new Error('console socket: aborted', { cause: signal.reason });
}

/** A pty master received from runc. */
export class Console {
  private streams: { close(): void }[] = [];
  private closed = false;
  private masterOwned = false;
  /** The name runc sent with the fd: the master's path (runc 1.1 sends "/dev/ptmx"). */
  readonly name: string;
  /** The master fd; owned by this object until close(). */
  readonly fd: number;

  constructor(fd: number, name = '') {
    this.fd = fd;
    this.name = name;
  }

  /**
   * The container's terminal output. Ends when the container side of the pty is closed (the
   * kernel reports EIO on the master then; that is the normal end, not an error). Call once: the
   * stream owns the master fd from then on.
   */
  readable(): Readable {
    if (this.closed) throw new Error(`console ${this.fd}: closed`);
    if (this.masterOwned) throw new Error(`console ${this.fd}: readable() was already called`);
    const input = new tty.ReadStream(this.fd);
    this.masterOwned = true;
    const out = new PassThrough();
    input.on('data', (d: Buffer) => out.write(d));
    input.on('end', () => out.end());
    input.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EIO' ? out.end() : out.destroy(e)));
    this.streams.push({ close: () => input.destroy() });
    return out;
  }

  /**
   * Writes to the container's terminal (its stdin). It uses a dup of the master, since libuv cannot
   * watch one fd from two handles.
   */
  writable(): NodeJS.WritableStream {
    if (this.closed) throw new Error(`console ${this.fd}: closed`);
    const fd = loadLibc().dupCloexec(this.fd);
    if (fd < 0) throw sysError('fcntl', `console ${this.fd}: dup master`);
    const out = new tty.WriteStream(fd);
    this.streams.push({ close: () => out.destroy() });
    return out;
  }

  /** Sets the terminal's window size (TIOCSWINSZ on the master). */
  resize(size: { cols: number; rows: number }): void {
    setWinsize(this.fd, size);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams) s.close();
    // Once a read stream owns the master, closing the fd behind libuv's back would break its handle.
    if (!this.masterOwned) closeFd(this.fd);
  }
}

/** A listening unix socket for runc's --console-socket. */
export class ConsoleSocket {
  private fd: number;
  private readonly ownDir: string | undefined;
  readonly path: string;

  private constructor(fd: number, path: string, ownDir: string | undefined) {
    this.fd = fd;
    this.path = path;
    this.ownDir = ownDir;
  }

  /** Listens on `path`, or on a socket in a fresh temp dir removed on close(). */
  static async create(path?: string): Promise<ConsoleSocket> {
    let ownDir: string | undefined;
    if (path === undefined) {
      ownDir = await mkdtemp(join(tmpdir(), 'runc-console-'));
      path = join(ownDir, 'console.sock');
    }
    const bytes = Buffer.from(path);
    if (bytes.length > SUN_PATH_MAX) {
      throw new Error(
        `console socket ${path}: path is ${bytes.length} bytes, the limit is ${SUN_PATH_MAX}; use a shorter directory`,
      );
    }
    const libc = loadLibc();
    const fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw sysError('socket', `console socket ${path}`);
    const addr = Buffer.alloc(110);
    addr.writeUInt16LE(AF_UNIX, 0);
    bytes.copy(addr, 2);
    if (libc.bind(fd, addr, 2 + bytes.length + 1) !== 0 || libc.listen(fd, 1) !== 0) {
      const e = sysError('bind/listen', `console socket ${path}`);
      libc.close(fd);
      if (ownDir) await rm(ownDir, { recursive: true, force: true });
      throw e;
    }
    return new ConsoleSocket(fd, path, ownDir);
  }

  /** Waits for runc to connect and send the pty master; resolves with the fd (the caller owns it). */
  async receiveMaster(signal?: AbortSignal): Promise<number> {
    return (await this.receive(signal)).fd;
  }

  /** Waits for runc to connect and send the pty master. */
  async receive(signal?: AbortSignal): Promise<Console> {
    const conn = await this.whenReady(this.listenFd(), signal, (fd) => {
      const c = loadLibc().accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
      return c >= 0 ? c : undefined;
    });
    try {
      return await this.whenReady(conn, signal, (fd) => recvFd(fd, this.path));
    } finally {
      loadLibc().close(conn);
    }
  }

  private listenFd(): number {
    if (this.fd < 0) throw new Error(`console socket ${this.path}: closed`);
    return this.fd;
  }

  /** Runs `attempt` now and each time fd is readable, until it yields a value. */
  private whenReady<T>(
    fd: number,
    signal: AbortSignal | undefined,
    attempt: (fd: number) => T | undefined,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (signal?.aborted) return reject(abortError(signal));
      let poller: { close(): void } | undefined;
      const finish = (fn: () => void) => {
        poller?.close();
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = () => finish(() => reject(abortError(signal as AbortSignal)));
      const tryOnce = (): boolean => {
        try {
          const v = attempt(fd);
          if (v === undefined) {
            const err = errno();
            if (err !== EAGAIN && err !== EINTR)
              throw sysError('accept/recvmsg', `console socket ${this.path}`, err);
            return false;
          }
          finish(() => resolve(v));
        } catch (e) {
          finish(() => reject(e));
        }
        return true;
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (tryOnce()) return;
      poller = pollReadable(fd, () => {
        tryOnce();
      });
    });
  }

  close(): void {
    if (this.fd >= 0) {
      loadLibc().close(this.fd);
      this.fd = -1;
    }
    if (this.ownDir) void rm(this.ownDir, { recursive: true, force: true }).catch(() => {});
  }
}

/** One recvmsg: the pty name as data, the master as SCM_RIGHTS. undefined on EAGAIN. */
function recvFd(fd: number, path: string): Console | undefined {
  const data = Buffer.alloc(4096);
  const control = Buffer.alloc(64);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(addressOf(data), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const msg = Buffer.alloc(56);
  msg.writeBigUInt64LE(addressOf(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(addressOf(control), 32);
  msg.writeBigUInt64LE(BigInt(control.length), 40);
  const n = Number(loadLibc().recvmsg(fd, msg, MSG_CMSG_CLOEXEC));
  if (n < 0) return undefined;
  const controlLen = Number(msg.readBigUInt64LE(40));
  for (let off = 0; off + 16 <= controlLen; ) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < 16) break;
    const level = control.readInt32LE(off + 8);
    const type = control.readInt32LE(off + 12);
    if (level === SOL_SOCKET && type === SCM_RIGHTS && len >= 20) {
      const master = control.readInt32LE(off + 16);
      // Any extra fds in the same message are not ours to keep.
      for (let p = off + 20; p + 4 <= off + len; p += 4) loadLibc().close(control.readInt32LE(p));
      return new Console(master, data.subarray(0, n).toString('utf8').replace(/\0+$/, ''));
    }
    off += (len + 7) & ~7;
  }
  throw new Error(`console socket ${path}: the peer sent no file descriptor (got ${n} bytes of data only)`);
}
