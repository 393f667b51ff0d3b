import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { create } from '@bufbuild/protobuf';
import { createClient } from '@ctrd/api-proto';
import { ContentService } from '@ctrd/api-proto/content';
import { DiffService } from '@ctrd/api-proto/diff';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import { type TarWriteEntry, writeTar } from '@ctrd/api-proto/tar';
import { DescriptorSchema } from '@ctrd/api-proto/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemon } from './helpers/daemon.js';
import { busyboxImageTar } from './helpers/oci-image.js';
import { CTR, ctrOk, mountsUnder, sweep } from './tasks-support.js';

// The Diff service end to end: a layer blob written with the stock `ctr content ingest`, a
// snapshot prepared with the stock `ctr snapshots prepare`, Diff.Apply over the socket, commit,
// a view mounted as `ctr snapshots mounts` prints it, a file read from it; then the stock
// `ctr snapshots diff` (Diff.Diff) and the blob it left in the content store.

const run = promisify(execFile);

let d: DaemonProcess;
let dir: string;
const ns = `df${randomBytes(4).toString('hex')}`;
const ok = (...args: string[]) => ctrOk(d, ['-n', ns, ...args]);
const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function tarOf(entries: TarWriteEntry[]): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of writeTar(entries)) parts.push(c);
  return Buffer.concat(parts);
}

/** `ctr content ingest` with the blob on stdin. */
function ingest(ref: string, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(CTR, [
      '--address',
      d.socket,
      '-n',
      ns,
      'content',
      'ingest',
      '--expected-size',
      String(data.length),
      '--expected-digest',
      sha256(data),
      ref,
    ]);
    let stderr = '';
    child.stderr.on('data', (b) => {
      stderr += b;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`ctr content ingest: ${code}: ${stderr}`)),
    );
    child.stdin.end(data);
  });
}

/** Stock ctr's stdout as bytes. */
function ctrBytes(args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(CTR, ['--address', d.socket, '-n', ns, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b) => {
      stderr += b;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve(Buffer.concat(out))
        : reject(new Error(`ctr ${args.join(' ')}: ${code}: ${stderr}`)),
    );
  });
}

/** Mounts a snapshot the way `ctr snapshots mounts` prints it, runs fn, unmounts. */
async function withView<T>(key: string, fn: (target: string) => Promise<T>): Promise<T> {
  const target = join(dir, `mnt-${key}`);
  await mkdir(target, { recursive: true });
  const printed = await ok('snapshots', 'mounts', target, key);
  for (const line of printed.trim().split('\n')) await run('sh', ['-c', line]);
  try {
    return await fn(target);
  } finally {
    await run('umount', [target]);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrd-diff-'));
  d = await startDaemon({ dir: join(dir, 'd') });
});

afterAll(async () => {
  await d?.stop('SIGKILL');
  for (const m of mountsUnder(dir).reverse()) await run('umount', ['-l', m]).catch(() => {});
  await sweep(dir, join(dir, 'd', 'state'), [ns]);
  await rm(dir, { recursive: true, force: true });
});

describe('Diff service through a real daemon', () => {
  it('applies a layer written with stock ctr to a snapshot, commits it, and a view shows its files', async () => {
    const layer = await tarOf([
      { name: 'etc/', type: 'dir', mode: 0o755 },
      {
        name: 'etc/motd',
        type: 'file',
        mode: 0o644,
        body: Buffer.from('hello from a layer\n'),
        mtime: 1_600_000_000,
      },
      { name: 'bin/', type: 'dir', mode: 0o755 },
      { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
      // A hostile entry: must land inside the snapshot.
      { name: '../../escape', type: 'file', mode: 0o644, body: Buffer.from('inside') },
    ]);
    const blob = gzipSync(layer);
    await ingest('layer-1', blob);

    await ok('snapshots', 'prepare', 'extract-1');
    const snapshots = createClient(SnapshotsService, { address: d.address, namespace: ns });
    const { mounts } = await snapshots.mounts({ snapshotter: 'overlayfs', key: 'extract-1' });
    const diff = createClient(DiffService, { address: d.address, namespace: ns });
    const { applied } = await diff.apply({
      diff: create(DescriptorSchema, {
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: sha256(blob),
        size: BigInt(blob.length),
      }),
      mounts,
    });
    expect(applied).toMatchObject({
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      digest: sha256(layer),
      size: BigInt(layer.length),
    });
    await ok('snapshots', 'commit', 'layer-1', 'extract-1');
    await ok('snapshots', 'view', 'view-1', 'layer-1');
    await withView('view-1', async (root) => {
      expect(readFileSync(join(root, 'etc/motd'), 'utf8')).toBe('hello from a layer\n');
      expect(readFileSync(join(root, 'escape'), 'utf8')).toBe('inside');
    });
    expect(existsSync(join(dir, 'escape'))).toBe(false);
    // No temp mount is left behind by Apply.
    expect(readdirSync(join(d.root, 'tmpmounts'))).toEqual([]);
  });

  it('stock ctr snapshots diff writes the change as a gzip layer into the content store', async () => {
    await ok('snapshots', 'prepare', 'work', 'layer-1');
    await withView('work', async (root) => {
      await run('sh', ['-c', `echo changed > ${root}/etc/motd && rm ${root}/bin/sh && mkdir ${root}/new`]);
    });
    // ctr writes the diff blob to stdout.
    const blob = await ctrBytes(['snapshots', 'diff', '--keep', 'work']);
    const digest = sha256(blob);
    const content = createClient(ContentService, { address: d.address, namespace: ns });
    const info = (await content.info({ digest })).info!;
    expect(info.size).toBe(BigInt(blob.length));
    expect(info.labels['containerd.io/uncompressed']).toMatch(/^sha256:[0-9a-f]{64}$/);
    const listing = await new Promise<string>((resolve, reject) => {
      const child = spawn('tar', ['-tzf', '-']);
      let stdout = '';
      child.stdout.on('data', (b) => {
        stdout += b;
      });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`tar exited ${code}`))));
      child.stdin.end(blob);
    });
    expect(listing.trim().split('\n')).toEqual(['bin/', 'bin/.wh.sh', 'etc/', 'etc/motd', 'new/']);
    expect(readdirSync(join(d.root, 'tmpmounts'))).toEqual([]);
  });

  it('an unknown layer media type is NotImplemented (gRPC code 12)', async () => {
    await ok('snapshots', 'prepare', 'extract-x');
    const snapshots = createClient(SnapshotsService, { address: d.address, namespace: ns });
    const { mounts } = await snapshots.mounts({ snapshotter: 'overlayfs', key: 'extract-x' });
    const diff = createClient(DiffService, { address: d.address, namespace: ns });
    const err = await diff
      .apply({
        diff: create(DescriptorSchema, { mediaType: 'application/x-nope', digest: sha256(Buffer.from('x')) }),
        mounts,
      })
      .catch((e: unknown) => e as { code?: number; kind?: string });
    expect((err as { kind?: string }).kind).toBe('NotImplemented');
  });

  it('stock ctr images import unpacks through Diff.Apply: the chain is committed and holds busybox', async () => {
    const archive = join(dir, 'busybox.tar');
    const image = await busyboxImageTar(archive, 'example.com/e2e/busybox:diff');
    const out = await ok('images', 'import', archive);
    expect(out).toContain('example.com/e2e/busybox:diff');
    const layer = image.layers[0]!;
    // One layer: its chain id is its diffID, the digest Diff.Apply returned.
    const chain = layer.diffId;
    const listed = await ok('snapshots', 'ls');
    expect(listed).toContain(chain);
    // The import deleted its lease, which schedules a collection; the view made next has no lease
    // and would be collected by it. A synchronous delete collects now, in its place.
    await ok('leases', 'create', '--id', 'diff-gc-now');
    await ok('leases', 'delete', '--sync', 'diff-gc-now');
    await ok('snapshots', 'view', 'bb-view', chain);
    await withView('bb-view', async (root) => {
      expect(readdirSync(join(root, 'bin'))).toContain('busybox');
    });
    const content = createClient(ContentService, { address: d.address, namespace: ns });
    const info = (await content.info({ digest: layer.desc.digest })).info!;
    expect(info.labels['containerd.io/uncompressed']).toBe(chain);
  });
});
