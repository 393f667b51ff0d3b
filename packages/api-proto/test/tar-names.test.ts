import { describe, expect, it } from 'vitest';
import { decodeName, encodeName, readTar, writeTar } from '../src/tar.js';

// Byte-exact names: every byte string survives decode then encode, two names that differ only in
// invalid bytes stay two names, and a tar written from decoded names has the original bytes.

const bytes = (...b: number[]) => Uint8Array.from(b);

describe('tar names keep their bytes', () => {
  it('valid UTF-8 decodes as usual and encodes back', () => {
    for (const s of ['plain', 'é', '日本語', '😀', 'a\u{10080}b']) {
      expect(decodeName(new TextEncoder().encode(s))).toBe(s);
      expect(Buffer.from(encodeName(s))).toEqual(Buffer.from(s, 'utf8'));
    }
  });

  it('invalid bytes round-trip and stay distinct', () => {
    const cases = [
      bytes(0x61, 0xff),
      bytes(0x61, 0xfe),
      bytes(0xc3), // truncated sequence
      bytes(0xed, 0xa0, 0x80), // an encoded surrogate
      bytes(0xf4, 0x90, 0x80, 0x80), // above U+10FFFF
      bytes(0xc0, 0xaf), // overlong '/'
      bytes(0xe2, 0x82, 0x61, 0xc3, 0xa9),
    ];
    const seen = new Set<string>();
    for (const b of cases) {
      const s = decodeName(b);
      expect(Buffer.from(encodeName(s))).toEqual(Buffer.from(b));
      seen.add(s);
    }
    expect(seen.size).toBe(cases.length);
  });

  it('every two-byte string round-trips', () => {
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b += 7) {
        const input = bytes(a, b);
        expect(Buffer.from(encodeName(decodeName(input)))).toEqual(Buffer.from(input));
      }
    }
  });

  it('a tar of names with invalid bytes reads back with the same bytes', async () => {
    const names = [decodeName(bytes(0x78, 0xff)), decodeName(bytes(0x78, 0xfe)), 'x\ufffd'];
    const link = decodeName(bytes(0x74, 0x80));
    const chunks: Uint8Array[] = [];
    for await (const c of writeTar([
      ...names.map((name) => ({ name, type: 'file' as const, body: Buffer.from(name) })),
      { name: 'l', type: 'symlink' as const, linkname: link },
    ]))
      chunks.push(c);
    const got: Array<{ name: string; linkname: string }> = [];
    for await (const e of readTar(
      (async function* () {
        yield* chunks;
      })(),
    ))
      got.push({ name: e.name, linkname: e.linkname });
    expect(got.map((g) => Buffer.from(encodeName(g.name)))).toEqual([
      Buffer.from([0x78, 0xff]),
      Buffer.from([0x78, 0xfe]),
      Buffer.from('x\ufffd', 'utf8'),
      Buffer.from('l'),
    ]);
    expect(Buffer.from(encodeName(got[3]!.linkname))).toEqual(Buffer.from([0x74, 0x80]));
  });
});
