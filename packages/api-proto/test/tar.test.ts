import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgument, ResourceExhausted } from '../src/errors.js';
import {
  decompressStream,
  detectCompression,
  gzipStream,
  hasNativeZstd,
  readTar,
  type TarEntry,
  TarReader,
  type TarWriteEntry,
  TarWriter,
  writeTar,
} from '../src/tar.js';
import { checksums, FIELD, writeChecksum } from '../src/tar/header.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ctrd-tar-'));
  dirs.push(d);
  return d;
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of source) parts.push(c);
  return Buffer.concat(parts);
}

async function* chunked(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, Math.min(i + size, data.length));
}

type Read = Omit<TarEntry, 'body'> & { data: Buffer };
async function readAll(data: Uint8Array, chunk = 4096, opts = {}): Promise<Read[]> {
  const out: Read[] = [];
  for await (const e of readTar(chunked(data, chunk), opts)) {
    const { body, ...rest } = e;
    out.push({ ...rest, data: await collect(body) });
  }
  return out;
}

async function tarOf(entries: TarWriteEntry[]): Promise<Buffer> {
  return collect(writeTar(entries));
}

function gnuTar(args: string[], cwd?: string): Buffer {
  return execFileSync('tar', args, { cwd, maxBuffer: 64 * 1024 * 1024 });
}

describe('tar round trip', () => {
  it('writes and reads every entry type with its fields and bodies', async () => {
    const big = Buffer.alloc(70_000);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const data = await tarOf([
      { name: 'dir/', type: 'dir', mode: 0o750, uid: 1, gid: 2, mtime: 1_700_000_000 },
      {
        name: 'dir/file',
        type: 'file',
        mode: 0o4755,
        uid: 1000,
        gid: 1000,
        body: Buffer.from('hello'),
        mtime: 5,
      },
      {
        name: 'dir/streamed',
        type: 'file',
        size: big.length,
        body: chunked(big, 1000),
        uname: 'u',
        gname: 'g',
      },
      { name: 'dir/empty', type: 'file' },
      { name: 'dir/link', type: 'symlink', linkname: '../target' },
      { name: 'dir/hard', type: 'hardlink', linkname: 'dir/file' },
      { name: 'dev/null', type: 'chardev', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/sda', type: 'blockdev', devmajor: 8, devminor: 0 },
      { name: 'fifo', type: 'fifo', mode: 0o600 },
    ]);
    expect(data.length % 512).toBe(0);
    expect(data.subarray(-1024).every((b) => b === 0)).toBe(true);
    for (const chunk of [1, 7, 512, 100_000]) {
      const entries = await readAll(data, chunk);
      expect(entries.map((e) => [e.name, e.type])).toEqual([
        ['dir/', 'dir'],
        ['dir/file', 'file'],
        ['dir/streamed', 'file'],
        ['dir/empty', 'file'],
        ['dir/link', 'symlink'],
        ['dir/hard', 'hardlink'],
        ['dev/null', 'chardev'],
        ['dev/sda', 'blockdev'],
        ['fifo', 'fifo'],
      ]);
      expect(entries[0]).toMatchObject({ mode: 0o750, uid: 1, gid: 2, mtime: 1_700_000_000 });
      expect(entries[1]).toMatchObject({ mode: 0o4755, uid: 1000, gid: 1000, size: 5, mtime: 5 });
      expect(entries[1]!.data.toString()).toBe('hello');
      expect(entries[2]!.data.equals(big)).toBe(true);
      expect(entries[2]).toMatchObject({ uname: 'u', gname: 'g', size: big.length });
      expect(entries[3]!.data.length).toBe(0);
      expect(entries[4]!.linkname).toBe('../target');
      expect(entries[5]!.linkname).toBe('dir/file');
      expect(entries[6]).toMatchObject({ devmajor: 1, devminor: 3, mode: 0o666 });
      expect(entries[7]).toMatchObject({ devmajor: 8, devminor: 0 });
    }
  });

  it('skips bodies nobody reads and refuses a body read after moving on', async () => {
    const data = await tarOf([
      { name: 'a', type: 'file', body: Buffer.alloc(1500, 1) },
      { name: 'b', type: 'file', body: Buffer.from('bee') },
    ]);
    const names: string[] = [];
    let first: TarEntry | undefined;
    for await (const e of new TarReader(chunked(data, 100))) {
      names.push(e.name);
      if (e.name === 'a') first = e;
      else expect((await collect(e.body)).toString()).toBe('bee');
    }
    expect(names).toEqual(['a', 'b']);
    await expect(collect(first!.body)).rejects.toThrow(/after the reader moved on/);
  });

  it('uses ustar prefix, then PAX, for long and non-ASCII names and big values', async () => {
    const prefixed = `${'p'.repeat(120)}/${'n'.repeat(90)}`;
    const noSlash = 'x'.repeat(300);
    const deep = `${'d/'.repeat(200)}leaf`;
    const unicode = 'dir/ünïcödé-文件';
    const longLink = `/${'t'.repeat(250)}`;
    const data = await tarOf([
      { name: prefixed, type: 'file', body: Buffer.from('1') },
      { name: noSlash, type: 'file', body: Buffer.from('2') },
      { name: deep, type: 'dir' },
      { name: unicode, type: 'file', body: Buffer.from('3') },
      { name: 'l', type: 'symlink', linkname: longLink },
      { name: 'ids', type: 'file', uid: 3_000_000, gid: 2 ** 32 - 2, mtime: 1_600_000_000.25 },
      { name: 'old', type: 'file', mtime: -100 },
      {
        name: 'x',
        type: 'file',
        xattrs: { 'user.a': 'b', 'security.capability': Buffer.from([0, 1, 2, 255]) },
      },
      { name: 'owner', type: 'file', uname: 'u'.repeat(40) },
    ]);
    // The prefixed name needs no PAX header: the first header is the entry itself.
    expect(String.fromCharCode(data[156]!)).toBe('0');
    const entries = await readAll(data);
    expect(entries.map((e) => e.name)).toEqual([
      prefixed,
      noSlash,
      deep,
      unicode,
      'l',
      'ids',
      'old',
      'x',
      'owner',
    ]);
    expect(entries[4]!.linkname).toBe(longLink);
    expect(entries[5]).toMatchObject({ uid: 3_000_000, gid: 2 ** 32 - 2, mtime: 1_600_000_000.25 });
    expect(entries[6]!.mtime).toBe(-100);
    expect([...entries[7]!.xattrs['user.a']!]).toEqual([...new TextEncoder().encode('b')]);
    expect([...entries[7]!.xattrs['security.capability']!]).toEqual([0, 1, 2, 255]);
    expect(entries[8]!.uname).toBe('u'.repeat(40));
  });

  it('streams entries through TarWriter with backpressure and as a Readable', async () => {
    const writer = new TarWriter();
    const adding = (async () => {
      await writer.add({ name: 'one', type: 'file', body: Buffer.from('1') });
      await writer.add({ name: 'two', type: 'file', size: 3, body: chunked(Buffer.from('two'), 1) });
      await writer.finish();
    })();
    const data = await collect(writer.toReadable());
    await adding;
    const entries = await readAll(data);
    expect(entries.map((e) => [e.name, e.data.toString()])).toEqual([
      ['one', '1'],
      ['two', 'two'],
    ]);
  });

  it('rejects a stream body whose length differs from the size', async () => {
    await expect(
      tarOf([{ name: 'a', type: 'file', size: 5, body: chunked(Buffer.from('abc'), 1) }]),
    ).rejects.toThrow(/ended after 3 of 5/);
    await expect(
      tarOf([{ name: 'a', type: 'file', size: 2, body: chunked(Buffer.from('abc'), 1) }]),
    ).rejects.toThrow(/longer than its size/);
  });
});

function header(
  name: string,
  flag: string,
  size: number,
  extra: (b: Uint8Array) => void = () => {},
): Uint8Array {
  const b = new Uint8Array(512);
  b.set(Buffer.from(name), 0);
  b.set(Buffer.from('0000644\0'), FIELD.mode[0]);
  b.set(Buffer.from('0000000\0'), FIELD.uid[0]);
  b.set(Buffer.from('0000000\0'), FIELD.gid[0]);
  b.set(Buffer.from(`${size.toString(8).padStart(11, '0')}\0`), FIELD.size[0]);
  b.set(Buffer.from('00000000000\0'), FIELD.mtime[0]);
  b[156] = flag.charCodeAt(0);
  b.set(Buffer.from('ustar\x0000'), 257);
  extra(b);
  writeChecksum(b);
  return b;
}
function pad(data: Uint8Array): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}
const END = Buffer.alloc(1024);

describe('tar reader on hand-made archives', () => {
  it('reads GNU long name and long link headers', async () => {
    const long = `${'a'.repeat(200)}/file`;
    const link = `${'b'.repeat(150)}/target`;
    const data = Buffer.concat([
      header('././@LongLink', 'L', long.length + 1),
      pad(Buffer.from(`${long}\0`)),
      header('././@LongLink', 'K', link.length + 1),
      pad(Buffer.from(`${link}\0`)),
      header('short', '2', 0),
      END,
    ]);
    const [e] = await readAll(data);
    expect(e).toMatchObject({ name: long, linkname: link, type: 'symlink' });
  });

  it('reads base-256 numbers, including negative ones', async () => {
    const data = Buffer.concat([
      header('b256', '0', 0, (b) => {
        // uid 2^40 in base-256, mtime -1 (all ones).
        b.set([0x80, 0, 0x01, 0, 0, 0, 0, 0], FIELD.uid[0]);
        b.fill(0xff, FIELD.mtime[0], FIELD.mtime[0] + 12);
      }),
      END,
    ]);
    const [e] = await readAll(data);
    expect(e).toMatchObject({ uid: 2 ** 40, mtime: -1 });
  });

  it('applies PAX path, linkpath, size, uid, gid, mtime and xattrs; global records are not applied, as in Go', async () => {
    const rec = (kv: string) => {
      const rest = kv.length + 2;
      let n = rest + String(rest).length;
      if (String(n).length !== String(rest).length) n = rest + String(n).length;
      return `${n} ${kv}\n`;
    };
    const local = Buffer.from(
      [
        'path=from/pax/name',
        'linkpath=ignored-for-files',
        'size=4',
        'uid=4000000',
        'gid=5',
        'mtime=123.5',
        'SCHILY.xattr.user.k=v',
      ]
        .map(rec)
        .join(''),
    );
    const global = Buffer.from(['uid=77', 'path=not-applied', 'mtime=9'].map(rec).join(''));
    const data = Buffer.concat([
      header('g', 'g', global.length),
      pad(global),
      header('x', 'x', local.length),
      pad(local),
      header('short-name', '0', 0),
      pad(Buffer.from('body')),
      header('second', '0', 0),
      END,
    ]);
    const [a, b] = await readAll(data);
    expect(a).toMatchObject({ name: 'from/pax/name', size: 4, uid: 4_000_000, gid: 5, mtime: 123.5 });
    expect(a!.data.toString()).toBe('body');
    expect(Buffer.from(a!.xattrs['user.k']!).toString()).toBe('v');
    expect(b).toMatchObject({ name: 'second', uid: 0, mtime: 0 });
  });

  it('rejects a bad checksum', async () => {
    const data = await tarOf([{ name: 'a', type: 'file', body: Buffer.from('x') }]);
    data[10] = 0x41;
    await expect(readAll(data)).rejects.toThrow(/bad checksum/);
    await expect(readAll(data)).rejects.toBeInstanceOf(InvalidArgument);
  });

  it('accepts the historic signed checksum', async () => {
    const b = header('sig', '0', 0);
    b[3] = 0xff;
    const { signed, unsigned } = checksums(b);
    expect(signed).not.toBe(unsigned);
    b.set(Buffer.from(`${signed.toString(8).padStart(6, '0')}\0 `), 148);
    const [e] = await readAll(Buffer.concat([b, END]));
    expect(e!.type).toBe('file');
  });

  it('rejects truncated archives wherever they end', async () => {
    const data = await tarOf([
      { name: 'a', type: 'file', body: Buffer.alloc(2000, 7) },
      { name: `${'l'.repeat(200)}`, type: 'file', body: Buffer.from('x') },
    ]);
    for (const cut of [
      100,
      512,
      1000,
      2560,
      2600,
      3072,
      data.length - 1024,
      data.length - 512,
      data.length - 1,
    ]) {
      await expect(readAll(data.subarray(0, cut)), `cut at ${cut}`).rejects.toThrow(
        /unexpected end of archive/,
      );
    }
    // Without the marker but allowed: the entries are all there.
    const entries = await readAll(data.subarray(0, data.length - 1024), 4096, { allowMissingEnd: true });
    expect(entries).toHaveLength(2);
  });

  it('rejects data after a single zero block', async () => {
    const data = Buffer.concat([Buffer.alloc(512), header('a', '0', 0), Buffer.alloc(1024)]);
    await expect(readAll(data)).rejects.toThrow(/data after a zero block/);
  });

  it('bounds PAX headers and long names', async () => {
    const big = Buffer.alloc(1024 * 1024 + 1, 0x61);
    const pax = Buffer.concat([header('x', 'x', big.length), pad(big), header('a', '0', 0), END]);
    await expect(readAll(pax)).rejects.toBeInstanceOf(ResourceExhausted);
    const name = Buffer.alloc(64 * 1024 + 2, 0x61);
    const gnu = Buffer.concat([header('L', 'L', name.length), pad(name), header('a', '0', 0), END]);
    await expect(readAll(gnu)).rejects.toBeInstanceOf(ResourceExhausted);
    await expect(readAll(gnu, 4096, { maxNameLength: 1024 * 1024 })).resolves.toHaveLength(1);
  });

  it('rejects unknown entry types and sparse files', async () => {
    await expect(readAll(Buffer.concat([header('v', 'V', 0), END]))).rejects.toThrow(
      /unsupported entry type 'V'/,
    );
    const sparse = Buffer.from('22 GNU.sparse.major=1\n');
    await expect(
      readAll(Buffer.concat([header('x', 'x', sparse.length), pad(sparse), header('s', '0', 0), END])),
    ).rejects.toThrow(/sparse/);
  });
});

describe('interoperability with GNU tar', () => {
  it('reads what GNU tar writes in gnu, posix and ustar formats', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    const longDir = join(src, 'd'.repeat(96));
    mkdirSync(longDir, { recursive: true });
    writeFileSync(join(longDir, `${'f'.repeat(90)}.txt`), 'long content');
    writeFileSync(join(src, 'small'), Buffer.alloc(10_000, 3));
    symlinkSync(`../${'t'.repeat(140)}`, join(src, 'sym'));
    execFileSync('ln', [join(src, 'small'), join(src, 'hard')]);
    for (const format of ['gnu', 'posix', 'ustar']) {
      const archive = join(dir, `${format}.tar`);
      const args = ['-C', src, `--format=${format}`, '--owner=0', '--group=0', '-cf', archive, '.'];
      if (format === 'gnu') args.splice(3, 2, '--owner=3000000', '--group=0');
      try {
        gnuTar(args);
      } catch (err) {
        // ustar cannot hold the 140-character link target: GNU tar reports it and skips it.
        if (format !== 'ustar') throw err;
      }
      const entries = await readAll(readFileSync(archive));
      const byName = new Map(entries.map((e) => [e.name.replace(/^\.\//, ''), e]));
      const long = byName.get(`${'d'.repeat(96)}/${'f'.repeat(90)}.txt`);
      expect(long?.data.toString(), format).toBe('long content');
      expect(byName.get('small')?.data.equals(Buffer.alloc(10_000, 3))).toBe(true);
      const hard = byName.get('hard') ?? byName.get('small');
      expect(hard).toBeDefined();
      const links = entries.filter((e) => e.type === 'hardlink');
      expect(links).toHaveLength(1);
      expect(links[0]!.linkname.replace(/^\.\//, '')).toMatch(/^(small|hard)$/);
      if (format !== 'ustar') expect(byName.get('sym')?.linkname).toBe(`../${'t'.repeat(140)}`);
      if (format === 'gnu') expect(byName.get('small')?.uid).toBe(3_000_000);
      else expect(byName.get('small')?.uid).toBe(0);
    }
  });

  it('reads xattrs GNU tar stores as SCHILY records', async () => {
    const dir = tempDir();
    const file = join(dir, 'x');
    writeFileSync(file, 'x');
    try {
      execFileSync('python3', [
        '-c',
        `import os; os.setxattr(${JSON.stringify(file)}, 'user.k', b'v\\x00w')`,
      ]);
    } catch {
      // A filesystem without user xattrs (some tmpfs): nothing to compare.
      return;
    }
    const archive = join(dir, 'a.tar');
    gnuTar(['-C', dir, '--format=posix', '--xattrs', '--xattrs-include=*', '-cf', archive, 'x']);
    const [e] = await readAll(readFileSync(archive));
    expect([...(e!.xattrs['user.k'] ?? [])]).toEqual([0x76, 0, 0x77]);
  });

  it('writes archives GNU tar lists and extracts', async () => {
    const dir = tempDir();
    const longName = `${'a'.repeat(150)}/${'b'.repeat(150)}`;
    const data = await tarOf([
      { name: 'top/', type: 'dir', mode: 0o755 },
      { name: 'top/file', type: 'file', mode: 0o640, body: Buffer.from('file body'), mtime: 1_000_000_000 },
      { name: `${longName.split('/')[0]}/`, type: 'dir' },
      { name: longName, type: 'file', body: Buffer.from('deep') },
      { name: 'top/ünï', type: 'file', body: Buffer.from('utf8') },
      { name: 'top/sym', type: 'symlink', linkname: `/${'l'.repeat(200)}` },
      { name: 'top/hard', type: 'hardlink', linkname: 'top/file' },
      { name: 'top/big-uid', type: 'file', uid: 5_000_000, gid: 7, mtime: 1.5 },
    ]);
    const archive = join(dir, 'ours.tar');
    writeFileSync(archive, data);
    const listing = gnuTar(['--numeric-owner', '-tvf', archive]).toString();
    expect(listing).toContain(longName);
    expect(listing).toContain('5000000/7');
    expect(listing).toContain(`top/sym -> /${'l'.repeat(200)}`);
    expect(listing).toContain('top/hard link to top/file');
    const out = join(dir, 'out');
    mkdirSync(out);
    gnuTar(['-C', out, '-xf', archive]);
    expect(readFileSync(join(out, 'top/file'), 'utf8')).toBe('file body');
    expect(readFileSync(join(out, longName), 'utf8')).toBe('deep');
    expect(readFileSync(join(out, 'top/ünï'), 'utf8')).toBe('utf8');
    expect(readFileSync(join(out, 'top/hard'), 'utf8')).toBe('file body');
  });
});

describe('decompressStream', () => {
  const plain = Buffer.alloc(300_000);
  for (let i = 0; i < plain.length; i++) plain[i] = (i * 7) % 256;

  function zstd(data: Buffer, args: string[] = []): Buffer {
    return execFileSync('zstd', ['-c', '-q', ...args], { input: data, maxBuffer: 64 * 1024 * 1024 });
  }

  it('detects by magic bytes', () => {
    expect(detectCompression(gzipSync(Buffer.from('x')))).toBe('gzip');
    expect(detectCompression(zstd(Buffer.from('x')))).toBe('zstd');
    expect(detectCompression(Buffer.from('plain text'))).toBe('none');
    expect(detectCompression(new Uint8Array(0))).toBe('none');
  });

  it('passes plain data through, even a stream shorter than the magic', async () => {
    expect((await collect(decompressStream(chunked(plain, 3)))).equals(plain)).toBe(true);
    expect((await collect(decompressStream(chunked(Buffer.from('ab'), 1)))).toString()).toBe('ab');
    expect((await collect(decompressStream(chunked(Buffer.alloc(0), 1)))).length).toBe(0);
  });

  it('gunzips, including several members and odd chunking', async () => {
    const gz = Buffer.concat([gzipSync(plain.subarray(0, 1000)), gzipSync(plain.subarray(1000))]);
    expect((await collect(decompressStream(chunked(gz, 1)))).equals(plain)).toBe(true);
    expect((await collect(decompressStream(chunked(gz, 65536)))).equals(plain)).toBe(true);
  });

  const decoders: Array<'js' | 'zlib'> = hasNativeZstd() ? ['js', 'zlib'] : ['js'];
  it('unzstds several frames by default (Node 24 zlib stops after the first)', async () => {
    const z = Buffer.concat([zstd(plain.subarray(0, 5000)), zstd(plain.subarray(5000), ['--no-check'])]);
    for (const size of [1, 13, 65536]) {
      expect((await collect(decompressStream(chunked(z, size)))).equals(plain)).toBe(true);
    }
  });
  for (const zstdDecoder of decoders) {
    it(`unzstds with the ${zstdDecoder} decoder`, async () => {
      const z = zstd(plain);
      for (const size of [1, 13, 65536]) {
        expect((await collect(decompressStream(chunked(z, size), { zstdDecoder }))).equals(plain)).toBe(true);
      }
      const streamed = execFileSync('sh', ['-c', 'zstd -c -q'], { input: plain });
      expect((await collect(decompressStream(chunked(streamed, 1000), { zstdDecoder }))).equals(plain)).toBe(
        true,
      );
    });

    it(`rejects truncated and corrupt zstd (${zstdDecoder})`, async () => {
      const z = zstd(plain);
      await expect(
        collect(decompressStream(chunked(z.subarray(0, z.length - 10), 100), { zstdDecoder })),
      ).rejects.toThrow(InvalidArgument);
    });
  }

  it('knows whether zlib has zstd, and refuses to use a missing one', async () => {
    const z = zstd(Buffer.from('hi'));
    if (hasNativeZstd()) {
      expect((await collect(decompressStream(chunked(z, 10), { zstdDecoder: 'zlib' }))).toString()).toBe(
        'hi',
      );
    } else {
      await expect(collect(decompressStream(chunked(z, 10), { zstdDecoder: 'zlib' }))).rejects.toThrow(
        /no zlib zstd/,
      );
      // auto falls back to the JS decoder on this Node.
      expect((await collect(decompressStream(chunked(z, 10)))).toString()).toBe('hi');
    }
  });

  it('refuses a zstd frame asking for a huge window before allocating it', async () => {
    // Frame header: magic, descriptor 0 (window descriptor follows), window 2^31, then a block.
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8, 0x01, 0x00, 0x00]);
    await expect(
      collect(decompressStream(chunked(frame, 100), { zstdDecoder: 'js' })),
    ).rejects.toBeInstanceOf(ResourceExhausted);
  });

  it('rejects truncated gzip', async () => {
    const gz = gzipSync(plain);
    await expect(collect(decompressStream(chunked(gz.subarray(0, gz.length - 8), 1000)))).rejects.toThrow(
      InvalidArgument,
    );
  });

  it('stops at maxBytes with ResourceExhausted (a bomb)', async () => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(100 * 1024);
    await expect(
      collect(decompressStream(chunked(bomb, 4096), { maxBytes: 1024 * 1024 })),
    ).rejects.toBeInstanceOf(ResourceExhausted);
    const zbomb = zstd(Buffer.alloc(50 * 1024 * 1024));
    await expect(
      collect(decompressStream(chunked(zbomb, 4096), { maxBytes: 1024 * 1024, zstdDecoder: 'js' })),
    ).rejects.toBeInstanceOf(ResourceExhausted);
    await expect(collect(decompressStream(chunked(plain, 4096), { maxBytes: 1000 }))).rejects.toBeInstanceOf(
      ResourceExhausted,
    );
  });

  it('gzipStream output decompresses back and reads as tar', async () => {
    const data = await tarOf([{ name: 'a', type: 'file', body: Buffer.from('zipped') }]);
    const gz = await collect(gzipStream(chunked(data, 100)));
    expect(detectCompression(gz)).toBe('gzip');
    const entries: string[] = [];
    for await (const e of readTar(decompressStream(chunked(gz, 7))))
      entries.push((await collect(e.body)).toString());
    expect(entries).toEqual(['zipped']);
  });

  it('aborts on signal', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(collect(readTar(chunked(plain, 10), { signal: ac.signal }) as never)).rejects.toThrow(
      /aborted/,
    );
  });
});
