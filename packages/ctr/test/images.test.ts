import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainIds, MediaType } from '@ctrd/api-proto/oci';
import { Kind } from '@ctrd/api-proto/snapshots';
import { readTar } from '@ctrd/api-proto/tar';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeStore } from './fake-store.js';
import { runCtr } from './helpers.js';
import { dockerArchive, image, layer, ociArchive, sha, type TestImage } from './oci-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ctr-images-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let s: FakeStore;
beforeEach(() => {
  s = new FakeStore();
});
afterEach(() => s.cleanup());

const ctr = (words: string[], ns?: string) =>
  runCtr(ns ? [...words.slice(0, 2), '-n', ns, ...words.slice(2)] : words, { routes: s.routes });

let n = 0;
async function archive(bytes: Buffer): Promise<string> {
  const path = join(dir, `a${++n}.tar`);
  writeFileSync(path, bytes);
  return path;
}

async function busybox(): Promise<TestImage> {
  const base = await layer({ 'bin/sh': 'shell', 'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n' });
  const top = await layer({ 'app/hello.txt': 'hello' });
  return image([base, top], { Cmd: ['sh'], Env: ['PATH=/bin', 'GREETING=hi'], WorkingDir: '/app' });
}

describe('ctr images import', () => {
  it('imports an OCI layout, names it, unpacks it under a lease and labels its blobs', async () => {
    const img = await busybox();
    const file = await archive(
      await ociArchive(img, { 'io.containerd.image.name': 'example.com/busybox:1' }),
    );
    const res = await ctr(['images', 'import', file]);
    expect(res.stderr).toContain(`unpacking linux/`);
    expect(res).toMatchObject({ code: 0, stdout: 'example.com/busybox:1\n' });
    const stored = s.images.get('default')?.get('example.com/busybox:1');
    expect(stored?.target?.digest).toBe(img.manifestDigest);
    const chains = chainIds(img.layers.map((l) => l.diffId));
    for (const [i, chain] of chains.entries()) {
      const snap = s.snapshot('default', chain);
      expect(snap?.kind).toBe(Kind.COMMITTED);
      expect(snap?.parent).toBe(i === 0 ? '' : chains[i - 1]);
    }
    expect(readFileSync(join(s.snapshot('default', chains[1]!)!.dir, 'app/hello.txt'), 'utf8')).toBe('hello');
    const blobs = s.blobs.get('default')!;
    expect(blobs.get(img.layers[0]!.digest)?.labels['containerd.io/uncompressed']).toBe(
      img.layers[0]!.diffId,
    );
    expect(blobs.get(img.configDigest)?.labels['containerd.io/gc.ref.snapshot.overlayfs']).toBe(chains[1]);
    expect(blobs.get(img.manifestDigest)?.labels).toEqual({
      'containerd.io/gc.ref.content.config': img.configDigest,
      'containerd.io/gc.ref.content.l.0': img.layers[0]!.digest,
      'containerd.io/gc.ref.content.l.1': img.layers[1]!.digest,
    });
    // Everything was created under one lease, deleted at the end; no extract-* snapshots remain.
    expect(s.leased).toContain('Content.write');
    expect(s.leased).toContain('Snapshots.prepare');
    expect(s.leases.size).toBe(0);
    expect(s.deletedLeases).toHaveLength(1);
    expect([...s.snapshots.values()].filter((x) => x.name.startsWith('extract-'))).toEqual([]);
  });

  it('translates a bare ref name with the import prefix or --base-name, and skips unpacking with --no-unpack', async () => {
    const img = await busybox();
    const file = await archive(await ociArchive(img, { 'org.opencontainers.image.ref.name': 'v2' }));
    const res = await ctr(['i', 'import', '--no-unpack', '--base-name', 'registry.local/app', file]);
    expect(res).toMatchObject({ code: 0, stdout: 'registry.local/app:v2\n' });
    expect(s.snapshots.size).toBe(0);
    const dated = await ctr(['i', 'import', '--no-unpack', file]);
    expect(dated.stdout).toMatch(/^import-\d{4}-\d{2}-\d{2}:v2\n$/);
  });

  it('--index-name names the whole index.json', async () => {
    const img = await busybox();
    const file = await archive(await ociArchive(img, { 'io.containerd.image.name': 'x.io/a:1' }));
    const res = await ctr(['i', 'import', '--no-unpack', '--index-name', 'x.io/all:1', file]);
    expect(res.stdout).toBe('x.io/a:1\nx.io/all:1\n');
    expect(s.images.get('default')?.get('x.io/all:1')?.target?.mediaType).toBe(MediaType.ociIndex);
  });

  it('imports a docker save archive with normalized RepoTags', async () => {
    const img = await busybox();
    const file = await archive(await dockerArchive(img, ['busybox:latest', 'me/tool:2']));
    const res = await ctr(['i', 'import', file]);
    expect(res).toMatchObject({ code: 0, stdout: 'docker.io/library/busybox:latest\ndocker.io/me/tool:2\n' });
    const target = s.images.get('default')?.get('docker.io/library/busybox:latest')?.target;
    expect(target?.mediaType).toBe(MediaType.dockerManifest);
    const manifest = JSON.parse(s.blobs.get('default')!.get(target!.digest)!.data.toString());
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([
      MediaType.dockerLayer,
      MediaType.dockerLayer,
    ]);
    expect(manifest.config.digest).toBe(img.configDigest);
    const chains = chainIds(img.layers.map((l) => l.diffId));
    expect(s.snapshot('default', chains[1]!)?.kind).toBe(Kind.COMMITTED);
  });

  it('refuses a blob whose digest does not match its name and creates no image', async () => {
    const img = await busybox();
    const file = await archive(
      await ociArchive(img, { 'io.containerd.image.name': 'x.io/a:1' }, { corrupt: img.layers[1]!.digest }),
    );
    const res = await ctr(['i', 'import', file]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`archive entry blobs/sha256/${img.layers[1]!.digest.slice(7)}`);
    expect(res.stderr).toContain('unexpected commit');
    expect(s.images.get('default')?.size ?? 0).toBe(0);
    expect(s.ingests.size).toBe(0);
    expect(s.leases.size).toBe(0);
  });

  it('refuses a manifest with 200 layers and one whose diff ids do not match its layers', async () => {
    const base = await layer({ a: 'a' });
    const many = image([base], {}, { extraLayers: 199, diffIds: Array(200).fill(base.diffId) });
    const res = await ctr([
      'i',
      'import',
      await archive(await ociArchive(many, { 'io.containerd.image.name': 'x.io/many:1' })),
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('200 layers, more than the limit of 128');
    const short = image([base], {}, { diffIds: [] });
    const res2 = await ctr([
      'i',
      'import',
      await archive(await ociArchive(short, { 'io.containerd.image.name': 'x.io/s:1' })),
    ]);
    expect(res2.code).toBe(1);
    expect(res2.stderr).toContain('has 1 layers but its config lists 0 diff ids');
    expect(s.images.get('default')?.size ?? 0).toBe(0);
  });

  it('a layer whose unpacked digest is not the diff id fails, removes the snapshot and the new image', async () => {
    const img = await busybox();
    s.applyDigest = sha('something else');
    const res = await ctr([
      'i',
      'import',
      await archive(await ociArchive(img, { 'io.containerd.image.name': 'x.io/b:1' })),
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`layer ${img.layers[0]!.digest}: unpacked content has digest`);
    expect(s.snapshots.size).toBe(0);
    expect(s.images.get('default')?.size).toBe(0);
  });

  it('refuses an archive with neither index.json nor manifest.json', async () => {
    const res = await ctr(['i', 'import', await archive(Buffer.alloc(1024))]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('neither index.json');
  });
});

describe('ctr images ls, tag, label, rm, check, export', () => {
  beforeEach(async () => {
    const img = await busybox();
    await ctr([
      'i',
      'import',
      await archive(await ociArchive(img, { 'io.containerd.image.name': 'x.io/bb:1' })),
    ]);
  });

  it('ls prints the table, -q and --json', async () => {
    const res = await ctr(['images', 'ls']);
    expect(res.code).toBe(0);
    const [header, row] = res.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^REF\s+TYPE\s+DIGEST\s+SIZE\s+PLATFORMS\s+LABELS$/);
    expect(row).toMatch(
      /^x\.io\/bb:1\s+application\/vnd\.oci\.image\.manifest\.v1\+json\s+sha256:[0-9a-f]{64}\s+\d+(\.\d)? (B|KiB)\s+linux\/\w+\s+-$/,
    );
    expect((await ctr(['i', 'ls', '-q'])).stdout).toBe('x.io/bb:1\n');
    const json = JSON.parse((await ctr(['i', 'ls', '--json'])).stdout);
    expect(json[0]).toMatchObject({ name: 'x.io/bb:1', mediaType: MediaType.ociManifest, labels: {} });
    expect(json[0].size).toBeGreaterThan(0);
  });

  it('tag adds names, refuses an existing one without --force; label sets and clears; rm removes', async () => {
    expect((await ctr(['i', 'tag', 'x.io/bb:1', 'x.io/bb:2', 'x.io/bb:3'])).stdout).toBe(
      'x.io/bb:2\nx.io/bb:3\n',
    );
    const again = await ctr(['i', 'tag', 'x.io/bb:1', 'x.io/bb:2']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('image "x.io/bb:2": already exists: use --force');
    expect((await ctr(['i', 'tag', '--force', 'x.io/bb:1', 'x.io/bb:2'])).code).toBe(0);
    expect((await ctr(['i', 'label', 'x.io/bb:2', 'a=1', 'b=2'])).stdout).toBe('a=1,b=2\n');
    expect((await ctr(['i', 'label', 'x.io/bb:2', 'a='])).stdout).toBe('b=2\n');
    expect(JSON.parse((await ctr(['i', 'label', '--json', 'x.io/bb:2'])).stdout)).toEqual({ b: '2' });
    const rm = await ctr(['i', 'rm', '--sync', 'x.io/bb:2', 'x.io/nope:1']);
    expect(rm).toMatchObject({ code: 0, stdout: 'x.io/bb:2\n' });
    expect(rm.stderr).toContain('image "x.io/nope:1": not found');
    expect(s.calls).toContain('Images.delete sync default');
    expect((await ctr(['i', 'ls', '-q'])).stdout).toBe('x.io/bb:1\nx.io/bb:3\n');
  });

  it('check reports complete and unpacked, then incomplete when a layer is gone', async () => {
    let res = await ctr(['i', 'check']);
    expect(res.stdout).toMatch(
      /x\.io\/bb:1\s+\S+\s+sha256:\S+\s+complete \(4\/4\)\s+\S+ \S+\/\S+ \S+\s+true/,
    );
    const target = s.images.get('default')!.get('x.io/bb:1')!.target!;
    const manifest = JSON.parse(s.blobs.get('default')!.get(target.digest)!.data.toString());
    s.blobs.get('default')!.delete(manifest.layers[1].digest);
    res = await ctr(['i', 'check', '--json']);
    expect(JSON.parse(res.stdout)[0]).toMatchObject({
      complete: false,
      present: 3,
      required: 4,
      unpacked: true,
    });
  });

  it('export writes an OCI layout that imports again in another namespace', async () => {
    const out = join(dir, 'export.tar');
    const res = await ctr(['i', 'export', out, 'x.io/bb:1']);
    expect(res).toMatchObject({ code: 0, stdout: '' });
    const names: string[] = [];
    let index: { manifests: { annotations: Record<string, string> }[] } | undefined;
    let manifestJson: unknown;
    for await (const e of readTar(
      (async function* () {
        yield readFileSync(out);
      })(),
    )) {
      names.push(e.name);
      if (e.name === 'index.json' || e.name === 'manifest.json') {
        const parts: Uint8Array[] = [];
        for await (const c of e.body) parts.push(c);
        const doc = JSON.parse(Buffer.concat(parts).toString());
        if (e.name === 'index.json') index = doc;
        else manifestJson = doc;
      }
    }
    expect(names).toContain('oci-layout');
    expect(names.filter((x) => x.startsWith('blobs/sha256/') && x.length > 20)).toHaveLength(4);
    expect(index?.manifests[0]?.annotations).toEqual({
      'io.containerd.image.name': 'x.io/bb:1',
      'org.opencontainers.image.ref.name': '1',
    });
    expect(manifestJson).toMatchObject([{ RepoTags: ['x.io/bb:1'] }]);
    const again = await ctr(['i', 'import', out], 'other');
    expect(again).toMatchObject({ code: 0, stdout: 'x.io/bb:1\n' });
    expect(s.images.get('other')?.get('x.io/bb:1')?.target?.digest).toBe(
      s.images.get('default')?.get('x.io/bb:1')?.target?.digest,
    );
  });

  it('export of a missing image fails and leaves no file', async () => {
    const out = join(dir, 'missing.tar');
    const res = await ctr(['i', 'export', out, 'x.io/none:1']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('image "x.io/none:1": not found');
  });
});

describe('ctr content and snapshots', () => {
  it('content ls and rm', async () => {
    const d = s.addBlob('default', 'hello', { a: 'b' });
    const ls = await ctr(['content', 'ls']);
    expect(ls.stdout).toMatch(new RegExp(`^DIGEST\\s+SIZE\\s+AGE\\s+LABELS\\n${d}\\s+5 B\\s+.+\\s+a=b\\n$`));
    expect((await ctr(['content', 'ls', '-q'])).stdout).toBe(`${d}\n`);
    expect(JSON.parse((await ctr(['content', 'ls', '--json'])).stdout)[0]).toMatchObject({
      digest: d,
      size: 5,
    });
    expect((await ctr(['content', 'rm', d])).stdout).toBe(`${d}\n`);
    const bad = await ctr(['content', 'rm', 'sha256:../../x']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid sha256 digest');
  });

  it('snapshots ls, tree, info, usage and rm', async () => {
    const img = await busybox();
    await ctr([
      'i',
      'import',
      await archive(await ociArchive(img, { 'io.containerd.image.name': 'x.io/bb:1' })),
    ]);
    const [c0, c1] = chainIds(img.layers.map((l) => l.diffId));
    const ls = await ctr(['snapshot', 'ls']);
    expect(ls.stdout.split('\n')[0]).toMatch(/^KEY\s+PARENT\s+KIND$/);
    expect(ls.stdout).toMatch(new RegExp(`${c1}\\s+${c0}\\s+Committed`));
    expect((await ctr(['snapshots', 'tree'])).stdout).toBe(` ${c0}\n  \\_ ${c1}\n`);
    expect(JSON.parse((await ctr(['snapshots', 'tree', '--json'])).stdout)).toEqual([
      { key: c0, children: [{ key: c1, children: [] }] },
    ]);
    expect(JSON.parse((await ctr(['snapshots', 'info', c1!])).stdout)).toMatchObject({
      key: c1,
      parent: c0,
      kind: 'Committed',
    });
    expect((await ctr(['snapshots', 'usage', '-b', c1!])).stdout).toMatch(new RegExp(`${c1}\\s+4096\\s+3`));
    const refused = await ctr(['snapshots', 'rm', c0!]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('has children');
    expect((await ctr(['snapshots', 'rm', c1!, c0!])).stdout).toBe(`${c1}\n${c0}\n`);
    expect((await ctr(['snapshots', 'ls', '-q'])).stdout).toBe('');
  });
});
