import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { create } from '@bufbuild/protobuf';
import { isInvalidArgument, isNotFound, isNotImplemented, isResourceExhausted } from '@ctrd/api-proto';
import { ContentService } from '@ctrd/api-proto/content';
import { DiffService } from '@ctrd/api-proto/diff';
import { LeasesService } from '@ctrd/api-proto/leases';
import { ContentLabel, MediaType, sha256Digest } from '@ctrd/api-proto/oci';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import { decompressStream, readTar, type TarWriteEntry, writeTar } from '@ctrd/api-proto/tar';
import { DescriptorSchema } from '@ctrd/api-proto/types';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LocalContent } from '../src/content/local-content.js';
import { applyLayer } from '../src/diff/apply.js';
import { layerEntries } from '../src/diff/changes.js';
import { mountsAt, withTempMounts } from '../src/mount/mount.js';
import { PluginType } from '../src/plugin.js';
import { lsetxattr } from '../src/sys/libc.js';
import { type Harness, harness } from './harness.js';

// The walking differ: Diff then Apply round trips over plain directories, containerd's
// TestDiffTar expectations for the layer it writes, and the Diff service through the in-memory
// transport on real snapshots (mounted for real, unmounted after).

const temps: string[] = [];
afterEach(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ctrd-diff-'));
  temps.push(d);
  return d;
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of source) parts.push(c);
  return Buffer.concat(parts);
}

interface Seen {
  name: string;
  type: string;
  mode: number;
  linkname: string;
  data: string;
}
async function entriesOf(lower: string, upper: string): Promise<Seen[]> {
  const tar = await collect(writeTar(layerEntries(lower, upper)));
  const out: Seen[] = [];
  for await (const e of readTar(
    (async function* () {
      yield tar;
    })(),
  )) {
    out.push({
      name: e.name,
      type: e.type,
      mode: e.mode,
      linkname: e.linkname,
      data: (await collect(e.body)).toString(),
    });
  }
  return out;
}

/** Every entry of a tree: type, mode, owner, size, mtime (s), link target, content digest. */
function describeTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel === '' ? name : `${rel}/${name}`;
      const s = lstatSync(join(root, p));
      let extra = '';
      if (s.isSymbolicLink()) extra = readlinkSync(join(root, p));
      else if (s.isFile()) extra = sha256Digest(readFileSync(join(root, p)));
      else if (s.isCharacterDevice() || s.isBlockDevice()) extra = String(s.rdev);
      const mtime = s.isDirectory() ? '' : String(Math.floor(s.mtimeMs / 1000));
      out[p] = [
        s.mode.toString(8),
        s.uid,
        s.gid,
        s.isDirectory() ? '' : s.size,
        mtime,
        s.nlink > 1 && !s.isDirectory() ? 'linked' : '',
        extra,
      ].join(' ');
      if (s.isDirectory()) walk(p);
    }
  };
  walk('');
  return out;
}

const T = 1_600_000_000;
function file(root: string, p: string, content: string, mode = 0o644) {
  writeFileSync(join(root, p), content);
  chmodSync(join(root, p), mode);
  utimesSync(join(root, p), T, T);
}

describe('layer from two trees (containerd TestDiffTar)', () => {
  it('ParentInclusion: parents of new entries come first', async () => {
    const a = temp();
    mkdirSync(join(a, 'd1'), { mode: 0o755 });
    mkdirSync(join(a, 'd2'));
    chmodSync(join(a, 'd2'), 0o770);
    const b = temp();
    execFileSync('cp', ['-a', `${a}/.`, b]);
    mkdirSync(join(b, 'd1/d'));
    chmodSync(join(b, 'd1/d'), 0o700);
    file(b, 'd2/f', 'ok');
    expect((await entriesOf(a, b)).map((e) => [e.name, e.type, e.mode.toString(8), e.data])).toEqual([
      ['d1/', 'dir', '755', ''],
      ['d1/d/', 'dir', '700', ''],
      ['d2/', 'dir', '770', ''],
      ['d2/f', 'file', '644', 'ok'],
    ]);
  });

  it('HardlinkParentInclusion: new links to unchanged files bring the source along', async () => {
    const a = temp();
    for (const d of ['d1', 'd2', 'd3', 'd4', 'd5', 'd6']) mkdirSync(join(a, d));
    for (const f of ['d1/f1', 'd2/f1', 'd4/f1', 'd5/f1']) file(a, f, 'link me');
    linkSync(join(a, 'd1/f1'), join(a, 'd6/l1'));
    linkSync(join(a, 'd5/f1'), join(a, 'd6/l2'));
    const b = temp();
    execFileSync('cp', ['-a', `${a}/.`, b]);
    linkSync(join(b, 'd1/f1'), join(b, 'd2/l1'));
    linkSync(join(b, 'd4/f1'), join(b, 'd3/l1'));
    rmSync(join(b, 'd6/l1'));
    rmSync(join(b, 'd6/l2'));
    expect((await entriesOf(a, b)).map((e) => [e.name, e.type, e.linkname])).toEqual([
      ['d2/', 'dir', ''],
      ['d2/l1', 'file', ''],
      ['d1/', 'dir', ''],
      ['d1/f1', 'hardlink', 'd2/l1'],
      ['d3/', 'dir', ''],
      ['d3/l1', 'file', ''],
      ['d4/', 'dir', ''],
      ['d4/f1', 'hardlink', 'd3/l1'],
      ['d6/', 'dir', ''],
      ['d6/.wh.l1', 'file', ''],
      ['d6/.wh.l2', 'file', ''],
    ]);
  });

  it('UpdateDirectoryPermission and WhiteoutIncludesParents', async () => {
    const a = temp();
    for (const d of ['d1', 'd2', 'd3', 'd4', 'd5']) mkdirSync(join(a, d));
    for (const f of ['d1/f1', 'd2/f1', 'd2/f2', 'd3/f1', 'd4/f1', 'd5/f1']) file(a, f, 'content');
    const b = temp();
    execFileSync('cp', ['-a', `${a}/.`, b]);
    chmodSync(join(b, 'd1'), 0o777);
    rmSync(join(b, 'd1/f1'));
    rmSync(join(b, 'd2/f1'));
    chmodSync(join(b, 'd2/f2'), 0o777);
    rmSync(join(b, 'd3/f1'));
    file(b, 'd3/f2', 'content');
    rmSync(join(b, 'd4/f1'));
    file(b, 'd4/f0', 'content');
    rmSync(join(b, 'd5'), { recursive: true });
    const got = (await entriesOf(a, b)).map((e) => `${e.name} ${e.mode.toString(8)}`);
    expect(got).toEqual([
      'd1/ 777',
      'd1/.wh.f1 0',
      'd2/ 755',
      'd2/.wh.f1 0',
      'd2/f2 777',
      'd3/ 755',
      'd3/.wh.f1 0',
      'd3/f2 644',
      'd4/ 755',
      'd4/f0 644',
      'd4/.wh.f1 0',
      '.wh.d5 0',
    ]);
  });

  it('IgnoreSockets, and whiteouts have time 0', async () => {
    const a = temp();
    file(a, 'f1', 'content');
    const b = temp();
    file(b, 'f2', 'content');
    const sock = createServer();
    await new Promise<void>((resolve) => sock.listen(join(b, 's0'), resolve));
    expect(lstatSync(join(b, 's0')).isSocket()).toBe(true);
    file(b, 'f3', 'content');
    const tar = await collect(writeTar(layerEntries(a, b)));
    await new Promise((resolve) => sock.close(resolve));
    const seen: Array<[string, number]> = [];
    for await (const e of readTar(
      (async function* () {
        yield tar;
      })(),
    ))
      seen.push([e.name, e.mtime]);
    expect(seen).toEqual([
      ['.wh.f1', 0],
      ['f2', T],
      ['f3', T],
    ]);
  });

  it('round trip: the diff applied onto a copy of the lower tree gives the upper tree', async () => {
    const lower = temp();
    mkdirSync(join(lower, 'etc/sub'), { recursive: true });
    file(lower, 'etc/passwd', 'root:x:0:0');
    file(lower, 'etc/sub/gone', 'bye');
    file(lower, 'same', 'unchanged');
    file(lower, 'tochange', 'before');
    mkdirSync(join(lower, 'dir-to-file'));
    file(lower, 'dir-to-file/x', 'x');
    file(lower, 'file-to-dir', 'f');
    symlinkSync('etc/passwd', join(lower, 'link'));
    mkdirSync(join(lower, 'removed-dir/deep'), { recursive: true });
    file(lower, 'removed-dir/deep/f', 'f');

    const upper = temp();
    execFileSync('cp', ['-a', `${lower}/.`, upper]);
    file(upper, 'tochange', 'after!');
    rmSync(join(upper, 'etc/sub/gone'));
    rmSync(join(upper, 'dir-to-file'), { recursive: true });
    file(upper, 'dir-to-file', 'now a file');
    rmSync(join(upper, 'file-to-dir'));
    mkdirSync(join(upper, 'file-to-dir'));
    file(upper, 'file-to-dir/inner', 'inner');
    rmSync(join(upper, 'link'));
    symlinkSync('same', join(upper, 'link'));
    rmSync(join(upper, 'removed-dir'), { recursive: true });
    mkdirSync(join(upper, 'new/a/b'), { recursive: true });
    file(upper, 'new/a/b/setuid', 'suid', 0o4755);
    linkSync(join(upper, 'new/a/b/setuid'), join(upper, 'new/hardlink'));
    execFileSync('mknod', [join(upper, 'new/null'), 'c', '1', '3']);
    execFileSync('mknod', [join(upper, 'new/fifo'), 'p']);
    execFileSync('chown', ['-h', '1234:5678', join(upper, 'new/a')]);
    lsetxattr(
      Buffer.from(join(upper, 'same')),
      'security.capability',
      Buffer.from('0100000200200000000000000000000000000000', 'hex'),
    );
    utimesSync(join(upper, 'same'), T, T);

    const layer = await collect(writeTar(layerEntries(lower, upper)));
    const target = temp();
    execFileSync('cp', ['-a', `${lower}/.`, target]);
    const result = await applyLayer(
      target,
      (async function* () {
        yield layer;
      })(),
    );
    expect(result.digest).toBe(sha256Digest(layer));
    const want = describeTree(upper);
    const got = describeTree(target);
    expect(got).toEqual(want);
    // An unchanged tree (a copy keeping times to the nanosecond) gives an empty layer.
    const copy = temp();
    execFileSync('cp', ['-a', `${upper}/.`, copy]);
    expect(await entriesOf(upper, copy)).toEqual([]);
  });
});

describe('Diff service', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    expect((await mountsAt(h.root)).below).toEqual([]);
    await h.close();
  });

  const content = () => h.plugins.get<LocalContent>(PluginType.Content, 'content');

  async function putBlob(data: Uint8Array, ref: string) {
    const info = await content().ingest(
      'default',
      (async function* () {
        yield data;
      })(),
      {
        ref,
        expected: sha256Digest(data),
        size: data.length,
      },
    );
    return info;
  }

  const layerTar = (entries: TarWriteEntry[]) => collect(writeTar(entries));

  for (const snapshotter of ['overlayfs', 'native']) {
    it(`applies gzip, zstd and plain layers onto ${snapshotter} snapshots, then diffs them back`, async () => {
      const sn = h.client(SnapshotsService);
      const diff = h.client(DiffService);
      const base = await layerTar([
        { name: 'etc/', type: 'dir', mode: 0o755 },
        { name: 'etc/hostname', type: 'file', mode: 0o644, body: Buffer.from('base\n'), mtime: T },
        { name: 'bin/', type: 'dir', mode: 0o755 },
        { name: 'bin/tool', type: 'file', mode: 0o755, body: Buffer.from('#!/bin/sh\n'), mtime: T },
      ]);
      const top = await layerTar([
        { name: 'etc/', type: 'dir', mode: 0o755 },
        { name: 'etc/hostname', type: 'file', mode: 0o644, body: Buffer.from('top\n'), mtime: T },
        { name: 'bin/.wh.tool', type: 'file', mode: 0 },
      ]);
      const baseGz = gzipSync(base);
      const topZst = execFileSync('zstd', ['-c', '-q'], { input: top });
      await putBlob(baseGz, 'base');
      await putBlob(topZst, 'top');

      await sn.prepare({ snapshotter, key: 'extract-1', parent: '' });
      const m1 = (await sn.mounts({ snapshotter, key: 'extract-1' })).mounts;
      const applied1 = await diff.apply({
        diff: create(DescriptorSchema, {
          mediaType: MediaType.ociLayerGzip,
          digest: sha256Digest(baseGz),
          size: BigInt(baseGz.length),
        }),
        mounts: m1,
      });
      expect(applied1.applied).toMatchObject({
        mediaType: MediaType.ociLayer,
        digest: sha256Digest(base),
        size: BigInt(base.length),
      });
      await sn.commit({ snapshotter, name: 'layer-1', key: 'extract-1' });

      await sn.prepare({ snapshotter, key: 'extract-2', parent: 'layer-1' });
      const m2 = (await sn.mounts({ snapshotter, key: 'extract-2' })).mounts;
      const applied2 = await diff.apply({
        diff: create(DescriptorSchema, {
          mediaType: MediaType.ociLayerZstd,
          digest: sha256Digest(topZst),
          size: BigInt(topZst.length),
        }),
        mounts: m2,
      });
      expect(applied2.applied?.digest).toBe(sha256Digest(top));
      await sn.commit({ snapshotter, name: 'layer-2', key: 'extract-2' });

      await sn.view({ snapshotter, key: 'view', parent: 'layer-2' });
      const view = (await sn.mounts({ snapshotter, key: 'view' })).mounts;
      await withTempMounts(
        view,
        async (dir) => {
          expect(readFileSync(join(dir, 'etc/hostname'), 'utf8')).toBe('top\n');
          expect(readdirSync(join(dir, 'bin'))).toEqual([]);
        },
        { root: h.root },
      );

      // Diff layer-1 -> layer-2 gives a gzip'd layer carrying the same changes.
      await sn.view({ snapshotter, key: 'v1', parent: 'layer-1' });
      const left = (await sn.mounts({ snapshotter, key: 'v1' })).mounts;
      const res = await diff.diff({ left, right: view, labels: { 'x.test': 'y' }, ref: 'my-diff' });
      expect(res.diff?.mediaType).toBe(MediaType.ociLayerGzip);
      const info = content().info('default', res.diff!.digest);
      expect(info.size).toBe(res.diff!.size);
      expect(info.labels['x.test']).toBe('y');
      const blob = await collect(content().readStream('default', res.diff!.digest));
      const uncompressed = await collect(
        decompressStream(
          (async function* () {
            yield blob;
          })(),
        ),
      );
      expect(info.labels[ContentLabel.uncompressed]).toBe(sha256Digest(uncompressed));
      const names: string[] = [];
      for await (const e of readTar(
        (async function* () {
          yield uncompressed;
        })(),
      ))
        names.push(e.name);
      expect(names).toEqual(['bin/', 'bin/.wh.tool', 'etc/', 'etc/hostname']);

      // Applying that diff onto layer-1 again reproduces layer-2.
      await sn.prepare({ snapshotter, key: 'extract-3', parent: 'layer-1' });
      const m3 = (await sn.mounts({ snapshotter, key: 'extract-3' })).mounts;
      await diff.apply({ diff: res.diff, mounts: m3 });
      await withTempMounts(
        m3,
        async (dir) => {
          expect(readFileSync(join(dir, 'etc/hostname'), 'utf8')).toBe('top\n');
          expect(readdirSync(join(dir, 'bin'))).toEqual([]);
        },
        { root: h.root },
      );
      // A base-layer diff (no left mounts) and an uncompressed one.
      const baseDiff = await diff.diff({ left: [], right: view, mediaType: MediaType.ociLayer });
      const plain = await collect(content().readStream('default', baseDiff.diff!.digest));
      expect(plain.subarray(257, 262).toString()).toBe('ustar');
      expect(readdirSync(join(h.root, 'tmpmounts'))).toEqual([]);
    });
  }

  it('Diff.Diff inside a lease adds the blob to the lease', async () => {
    const sn = h.client(SnapshotsService);
    await sn.prepare({ snapshotter: 'native', key: 'a', parent: '' });
    const m = (await sn.mounts({ snapshotter: 'native', key: 'a' })).mounts;
    const lease = await h.client(LeasesService).create({ id: 'l1' });
    const res = await h.client(DiffService, 'default', 'l1').diff({ left: [], right: m });
    const resources = await h.client(LeasesService).listResources({ id: lease.lease!.id });
    expect(resources.resources.map((r) => [r.type, r.id])).toContainEqual(['content', res.diff!.digest]);
  });

  it('refuses unknown media types, missing blobs and bad digests with containerd codes', async () => {
    const sn = h.client(SnapshotsService);
    const diff = h.client(DiffService);
    await sn.prepare({ snapshotter: 'native', key: 'k', parent: '' });
    const mounts = (await sn.mounts({ snapshotter: 'native', key: 'k' })).mounts;
    const blob = Buffer.from('not a tar');
    await putBlob(blob, 'junk');
    const desc = (mediaType: string, digest = sha256Digest(blob)) =>
      create(DescriptorSchema, { mediaType, digest, size: BigInt(blob.length) });
    const e1 = await diff.apply({ diff: desc('application/x-unknown'), mounts }).catch((e: unknown) => e);
    expect(isNotImplemented(e1)).toBe(true);
    const e2 = await diff
      .apply({ diff: desc(MediaType.ociLayer, sha256Digest('other')), mounts })
      .catch((e: unknown) => e);
    expect(isNotFound(e2)).toBe(true);
    const e3 = await diff
      .apply({ diff: desc(MediaType.ociLayer, 'sha256:../../x'), mounts })
      .catch((e: unknown) => e);
    expect(isInvalidArgument(e3)).toBe(true);
    const e4 = await diff.apply({ diff: desc(MediaType.ociLayer), mounts }).catch((e: unknown) => e);
    expect(isInvalidArgument(e4)).toBe(true);
    const e5 = await diff
      .diff({ left: [], right: mounts, mediaType: 'application/x-unknown' })
      .catch((e: unknown) => e);
    expect(isNotImplemented(e5)).toBe(true);
    expect(readdirSync(join(h.root, 'tmpmounts'))).toEqual([]);
  });

  it('stops a gzip bomb at the ratio cap and cleans up (reliability case 35)', async () => {
    const { LocalDiff } = await import('../src/diff/local-diff.js');
    const sn = h.client(SnapshotsService);
    await sn.prepare({ snapshotter: 'native', key: 'bomb', parent: '' });
    const mounts = (await sn.mounts({ snapshotter: 'native', key: 'bomb' })).mounts;
    const tar = await layerTar([{ name: 'zeros', type: 'file', body: Buffer.alloc(64 * 1024 * 1024) }]);
    const bomb = gzipSync(tar);
    await putBlob(bomb, 'bomb');
    const local = new LocalDiff({ root: h.root, content, maxRatio: 100, ratioFloorBytes: 1024 * 1024 });
    const e = await local
      .apply(
        'default',
        create(DescriptorSchema, { mediaType: MediaType.ociLayerGzip, digest: sha256Digest(bomb) }),
        mounts,
      )
      .catch((err: unknown) => err);
    expect(isResourceExhausted(e)).toBe(true);
    expect(readdirSync(join(h.root, 'tmpmounts'))).toEqual([]);
    // A bomb in a content blob the content service reports as-is; nothing else changed.
    const blobs = await h.client(ContentService).info({ digest: sha256Digest(bomb) });
    expect(blobs.info?.size).toBe(BigInt(bomb.length));
  });
});
