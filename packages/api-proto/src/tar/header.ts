import { InvalidArgument } from '../errors.js';
import { decodeName } from './names.js';

// The 512-byte tar header block: field offsets of the ustar layout (POSIX.1-1988), the GNU
// variant of the magic, octal and base-256 numbers and the checksum.

export const BLOCK = 512;

export const FIELD = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>;

export type FieldName = keyof typeof FIELD;

export function field(block: Uint8Array, name: FieldName): Uint8Array {
  const [at, len] = FIELD[name];
  return block.subarray(at, at + len);
}

export type HeaderFormat = 'ustar' | 'gnu' | 'v7';

export function headerFormat(block: Uint8Array): HeaderFormat {
  const magic = latin1(field(block, 'magic'));
  const version = latin1(field(block, 'version'));
  if (magic === 'ustar\0' && version === '00') return 'ustar';
  if (magic === 'ustar ' && version === ' \0') return 'gnu';
  // Some writers leave the version blank; the magic alone decides then.
  if (magic === 'ustar\0') return 'ustar';
  return 'v7';
}

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** A NUL-terminated string field, its bytes kept exactly (names.ts). */
export function readString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return decodeName(nul < 0 ? bytes : bytes.subarray(0, nul));
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/**
 * A numeric field: octal text (spaces and NULs around it ignored, empty is 0) or, when the high
 * bit of the first byte is set, a big-endian two's-complement base-256 number (GNU and star use
 * it for values that do not fit in octal).
 */
export function readNumber(bytes: Uint8Array, what: string): number {
  if (bytes.length > 0 && (bytes[0]! & 0x80) !== 0) {
    const negative = (bytes[0]! & 0x40) !== 0;
    let x = 0n;
    for (let i = 0; i < bytes.length; i++) {
      let c = bytes[i]!;
      if (negative) c ^= 0xff;
      if (i === 0) c &= 0x7f;
      x = (x << 8n) | BigInt(c);
    }
    const value = negative ? -x - 1n : x;
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new InvalidArgument(`tar header: ${what}: base-256 value out of range`);
    }
    return Number(value);
  }
  let start = 0;
  let end = bytes.length;
  while (start < end && (bytes[start] === 0x20 || bytes[start] === 0)) start++;
  while (end > start && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0)) end--;
  if (start === end) return 0;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = bytes[i]!;
    if (c < 0x30 || c > 0x37) throw new InvalidArgument(`tar header: ${what}: invalid octal number`);
    value = value * 8 + (c - 0x30);
  }
  if (!Number.isSafeInteger(value))
    throw new InvalidArgument(`tar header: ${what}: octal value out of range`);
  return value;
}

/** Unsigned and signed sums of the block with the checksum field counted as spaces. */
export function checksums(block: Uint8Array): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  const [at, len] = FIELD.chksum;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= at && i < at + len ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return { unsigned, signed };
}

export function verifyChecksum(block: Uint8Array, offset: number): void {
  const stored = readNumber(field(block, 'chksum'), 'checksum');
  const { unsigned, signed } = checksums(block);
  if (stored !== unsigned && stored !== signed) {
    throw new InvalidArgument(
      `tar header at byte ${offset}: bad checksum (stored ${stored}, computed ${unsigned})`,
    );
  }
}

/** Largest value an octal field of `len` bytes holds (len-1 digits and a terminating NUL). */
export function octalMax(len: number): number {
  return 8 ** (len - 1) - 1;
}

export function writeOctal(block: Uint8Array, name: FieldName, value: number): void {
  const [at, len] = FIELD[name];
  if (!Number.isSafeInteger(value) || value < 0 || value > octalMax(len)) {
    throw new InvalidArgument(`tar header: ${name} ${value} does not fit the ustar field`);
  }
  const digits = value.toString(8).padStart(len - 1, '0');
  for (let i = 0; i < len - 1; i++) block[at + i] = digits.charCodeAt(i);
  block[at + len - 1] = 0;
}

/** Writes bytes into a field; the caller has checked they fit. */
export function writeBytes(block: Uint8Array, name: FieldName, bytes: Uint8Array): void {
  const [at, len] = FIELD[name];
  block.set(bytes.subarray(0, len), at);
}

export function writeChecksum(block: Uint8Array): void {
  const { unsigned } = checksums(block);
  const [at] = FIELD.chksum;
  const digits = unsigned.toString(8).padStart(6, '0');
  for (let i = 0; i < 6; i++) block[at + i] = digits.charCodeAt(i);
  block[at + 6] = 0;
  block[at + 7] = 0x20;
}
