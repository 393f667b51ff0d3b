// Byte-exact names. A tar name is a byte string: Go (and so containerd) keeps it as it is, while
// a JS string decoded as UTF-8 turns every invalid byte into U+FFFD, so two names that differ only
// there would become one file. Names are decoded the way Python's "surrogateescape" does it: valid
// UTF-8 as usual, each byte of an invalid sequence as a lone surrogate U+DC80..U+DCFF, which no
// valid UTF-8 decodes to. encodeName turns those back into their bytes, so decode then encode
// gives the original bytes for any input, and for valid UTF-8 both are the usual codecs.
// Filesystem calls must get encodeName's bytes (Node encodes a lone surrogate as U+FFFD).

const strict = new TextDecoder('utf-8', { fatal: true });
const utf8 = new TextEncoder();

const ESCAPE_BASE = 0xdc00;

/** The string for a name's bytes; invalid UTF-8 bytes become U+DC80..U+DCFF. */
export function decodeName(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    return decodeEscaping(bytes);
  }
}

/** Length of the valid UTF-8 sequence at `i`, or 0 when the byte there starts none. */
function sequenceLength(bytes: Uint8Array, i: number): number {
  const b = bytes[i]!;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => {
    const c = bytes[i + k];
    return c !== undefined && c >= lo && c <= hi;
  };
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0;
  if (b === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  // 0xed a0..bf would be a UTF-16 surrogate: invalid in UTF-8.
  if (b === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (b >= 0xe1 && b <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b >= 0xf1 && b <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

function decodeEscaping(bytes: Uint8Array): string {
  const parts: string[] = [];
  let run = 0;
  let i = 0;
  while (i < bytes.length) {
    const n = sequenceLength(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    if (run < i) parts.push(strict.decode(bytes.subarray(run, i)));
    parts.push(String.fromCharCode(ESCAPE_BASE + bytes[i]!));
    i += 1;
    run = i;
  }
  if (run < bytes.length) parts.push(strict.decode(bytes.subarray(run)));
  return parts.join('');
}

const ESCAPED = /[\udc80-\udcff]/;

/** The bytes of a name: UTF-8, with U+DC80..U+DCFF (from decodeName) turned back into bytes. */
export function encodeName(name: string): Uint8Array {
  if (!ESCAPED.test(name)) return utf8.encode(name);
  const out: number[] = [];
  for (const ch of name) {
    const cp = ch.codePointAt(0)!;
    // A surrogate pair comes out of the iterator as one code point above 0xffff, so what is seen
    // here in that range stands alone: an escaped byte.
    if (cp >= 0xdc80 && cp <= 0xdcff) out.push(cp - ESCAPE_BASE);
    else for (const b of utf8.encode(ch)) out.push(b);
  }
  return Uint8Array.from(out);
}

/** Whether a decoded name holds bytes that are not valid UTF-8. */
export function hasEscapedBytes(name: string): boolean {
  return ESCAPED.test(name);
}
