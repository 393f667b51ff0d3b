import { InvalidArgument } from '../errors.js';
import { decodeName, encodeName } from './names.js';

// PAX extended header records (POSIX.1-2001): "<length> <key>=<value>\n", where length counts
// the whole record including its own digits. Values are kept as bytes: SCHILY.xattr values
// may be binary.

export type PaxRecords = Map<string, Uint8Array>;

const decoder = new TextDecoder('utf-8');

export function parsePax(data: Uint8Array, offset: number): PaxRecords {
  const records: PaxRecords = new Map();
  let at = 0;
  while (at < data.length) {
    // GNU tar pads the last block with NULs inside the declared size on some versions.
    if (data[at] === 0) break;
    const space = data.indexOf(0x20, at);
    if (space < 0 || space === at || space - at > 20) throw bad(offset, 'record length');
    let length = 0;
    for (let i = at; i < space; i++) {
      const c = data[i]!;
      if (c < 0x30 || c > 0x39) throw bad(offset, 'record length');
      length = length * 10 + (c - 0x30);
    }
    const end = at + length;
    if (length <= space - at + 1 || end > data.length || data[end - 1] !== 0x0a) throw bad(offset, 'record');
    const record = data.subarray(space + 1, end - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw bad(offset, 'record key');
    const key = decoder.decode(record.subarray(0, eq));
    records.set(key, record.slice(eq + 1));
    at = end;
  }
  return records;
}

function bad(offset: number, what: string): InvalidArgument {
  return new InvalidArgument(`tar pax header at byte ${offset}: malformed ${what}`);
}

/** A PAX text value (path, linkpath, uname...): its bytes kept exactly, as Go's archive/tar does. */
export function paxString(value: Uint8Array): string {
  return decodeName(value);
}

/** A decimal PAX number (uid, gid, size): digits only, a safe integer. */
export function paxInteger(value: Uint8Array, key: string): number {
  const s = paxString(value);
  if (!/^[0-9]{1,16}$/.test(s))
    throw new InvalidArgument(`tar pax header: ${key}="${s.slice(0, 40)}": not a number`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new InvalidArgument(`tar pax header: ${key}=${s}: out of range`);
  return n;
}

/** A PAX time: seconds with an optional fraction, possibly negative. */
export function paxTime(value: Uint8Array, key: string): number {
  const s = paxString(value);
  if (!/^-?[0-9]{1,16}(\.[0-9]{0,9}[0-9]*)?$/.test(s)) {
    throw new InvalidArgument(`tar pax header: ${key}="${s.slice(0, 40)}": not a time`);
  }
  return Number(s);
}

export function encodePaxRecord(key: string, value: Uint8Array | string): Uint8Array {
  const keyBytes = encodeName(key);
  const valueBytes = typeof value === 'string' ? encodeName(value) : value;
  // " key=value\n" plus the digits of the total, which may grow the total by a digit.
  const rest = 1 + keyBytes.length + 1 + valueBytes.length + 1;
  const digits = String(rest).length;
  let length = rest + digits;
  if (String(length).length > digits) length = rest + String(length).length;
  const prefix = encodeName(`${length} `);
  const out = new Uint8Array(length);
  out.set(prefix, 0);
  out.set(keyBytes, prefix.length);
  out[prefix.length + keyBytes.length] = 0x3d;
  out.set(valueBytes, prefix.length + keyBytes.length + 1);
  out[length - 1] = 0x0a;
  return out;
}
