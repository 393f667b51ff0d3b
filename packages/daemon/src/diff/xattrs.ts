import { FailedPrecondition, InvalidArgument, type Logger, ResourceExhausted } from '@ctrd/api-proto';
import { lgetxattr, lsetxattr } from '../sys/libc.js';

// Extended attributes of layer entries, set on each entry right after it is made (through a
// descriptor-relative path whose last component is not followed) and bounded: the kernel holds
// names up to 255 bytes and values up to 64 KiB, so anything larger is refused at once, and a
// layer's xattrs together are capped, so a layer cannot make the daemon hold or write more than
// that.

/** Linux's XATTR_NAME_MAX and XATTR_SIZE_MAX. */
export const MAX_XATTR_NAME = 255;
export const MAX_XATTR_VALUE = 64 * 1024;
/** Default cap on the bytes of all xattrs (names and values) of one layer. */
export const DEFAULT_MAX_LAYER_XATTR_BYTES = 16 * 1024 * 1024;

export interface XattrFailure {
  name: string;
  /** errno name: EPERM, ENOTSUP, ... */
  code: string;
}

/** Counts a layer's xattr bytes against its cap and checks each attribute against the kernel's. */
export class XattrBudget {
  private used = 0;

  constructor(private readonly max = DEFAULT_MAX_LAYER_XATTR_BYTES) {}

  check(xattrs: Record<string, Uint8Array>, what: string): void {
    for (const [name, value] of Object.entries(xattrs)) {
      const nameBytes = Buffer.byteLength(name);
      if (nameBytes > MAX_XATTR_NAME) {
        throw new InvalidArgument(`${what}: xattr name of ${nameBytes} bytes (the kernel's limit is 255)`);
      }
      if (value.length > MAX_XATTR_VALUE) {
        throw new InvalidArgument(
          `${what}: xattr "${name}" of ${value.length} bytes (the kernel's limit is ${MAX_XATTR_VALUE})`,
        );
      }
      this.used += nameBytes + value.length;
      if (this.used > this.max) {
        throw new ResourceExhausted(`${what}: the layer's xattrs exceed ${this.max} bytes in all`);
      }
    }
  }
}

/**
 * Sets xattrs on the entry `path` names (its last component unfollowed); a failure containerd
 * would ignore is logged, the others throw.
 */
export function setEntryXattrs(
  path: Uint8Array,
  xattrs: Record<string, Uint8Array>,
  kind: 'file' | 'dir' | 'other',
  log: Logger,
  what: string,
): void {
  for (const [name, value] of Object.entries(xattrs)) {
    try {
      lsetxattr(path, name, value);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'UNKNOWN';
      const verdict = xattrFailureVerdict({ name, code }, kind);
      if (verdict === 'error')
        throw new FailedPrecondition(`${what}: setxattr ${name}: ${code}`, { cause: e });
      log[verdict === 'ignore' ? 'debug' : 'warn'](
        { entry: what, xattr: name, code },
        'apply layer: xattr ignored',
      );
    }
  }
}

/**
 * What a failed setxattr means, as containerd decides it: trusted.* refused (EPERM: not
 * privileged) is ignored, an unsupporting filesystem is a warning, user.* on anything but a
 * regular file or directory is a warning (the kernel allows it nowhere else); the rest fail.
 */
export function xattrFailureVerdict(
  f: XattrFailure,
  kind: 'file' | 'dir' | 'other',
): 'ignore' | 'warn' | 'error' {
  if (f.code === 'EPERM' && f.name.startsWith('trusted.')) return 'ignore';
  if (f.code === 'ENOTSUP' || f.code === 'EOPNOTSUPP') return 'warn';
  if (f.code === 'EPERM' && f.name.startsWith('user.') && kind === 'other') return 'warn';
  return 'error';
}

/** Reads the named xattrs of `path` (last component unfollowed); absent ones are left out. */
export function getXattrs(path: Uint8Array, names: readonly string[]): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const name of names) {
    const value = lgetxattr(path, name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}
