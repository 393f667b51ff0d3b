import { spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@ctrd/api-proto';
import { ImagesService } from '@ctrd/api-proto/images';
import { LeasesService } from '@ctrd/api-proto/leases';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemon } from './helpers/daemon.js';
import { CTR, ctrOk, ctrRun } from './tasks-support.js';

// The content store and the image store of a real ctrd, driven by the stock ctr 1.6: blobs go in
// with `content ingest` (the Content.Write stream), come back with `content get` (ranged Reads),
// are labelled, listed and removed; an image made on them is listed, tagged, labelled and removed
// with --sync, after which the collector has taken its blobs.

let d: DaemonProcess;
let dir: string;
const ns = `ci${randomBytes(4).toString('hex')}`;

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const ctr = (...args: string[]) => ctrRun(d, ['-n', ns, ...args]);
const ok = (...args: string[]) => ctrOk(d, ['-n', ns, ...args]);

/** Runs the stock ctr with `input` on stdin (ctrRun has none). */
function ctrWithStdin(
  args: string[],
  input: Buffer,
): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(CTR, ['--address', d.socket, '-n', ns, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => {
      stderr += b;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    // ctr may exit (e.g. on "not found") before it reads its stdin: that is its answer, not ours.
    child.stdin.on('error', () => {});
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr });
    });
    child.stdin.end(input);
  });
}

/** ctr's table output as rows of cells split on runs of whitespace. */
const table = (out: string) =>
  out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrd-ci-'));
  d = await startDaemon({ dir: join(dir, 'd') });
});

afterAll(async () => {
  await d?.stop('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('content and images through stock ctr', () => {
  // A small but real OCI image: one layer, a config, a manifest.
  const layer = randomBytes(3 * 1024 * 1024 + 123);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha(layer)] },
      config: {},
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length },
      ],
    }),
  );

  // Nothing refers to the ingested blobs until the next test makes an image of them, and the
  // collector a content rm schedules would take them: a lease holds them until then.
  const HOLD = 'hold-until-the-image';
  const leases = () => createClient(LeasesService, { address: d.address, namespace: ns });

  it('content ingest, ls, get (ranged reads), label, a digest mismatch, rm', async () => {
    await leases().create({ id: HOLD });
    for (const [ref, blob] of [
      ['layer', layer],
      ['config', config],
      ['manifest', manifest],
    ] as const) {
      const r = await ctrWithStdin(
        ['content', 'ingest', '--expected-size', String(blob.length), '--expected-digest', sha(blob), ref],
        blob,
      );
      expect(r.code, r.stderr).toBe(0);
      await leases().addResource({ id: HOLD, resource: { id: sha(blob), type: 'content' } });
    }
    const ls = table(await ok('content', 'ls'));
    expect(ls[0]).toEqual(['DIGEST', 'SIZE', 'AGE', 'LABELS']);
    expect(
      ls
        .slice(1)
        .map((row) => row[0])
        .sort(),
    ).toEqual([sha(layer), sha(config), sha(manifest)].sort());
    expect((await ok('content', 'ls', '-q')).trim().split('\n').sort()).toEqual(
      [sha(layer), sha(config), sha(manifest)].sort(),
    );
    expect(
      table(await ok('content', 'ls', `size==${config.length}`))
        .slice(1)
        .map((r) => r[0]),
    ).toEqual([sha(config)]);

    const got = await ctrWithStdin(['content', 'get', sha(layer)], Buffer.alloc(0));
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout.equals(layer)).toBe(true);

    // The manifest references its config and layer, as import leaves it.
    const labelled = await ok(
      'content',
      'label',
      sha(manifest),
      `containerd.io/gc.ref.content.config=${sha(config)}`,
      `containerd.io/gc.ref.content.l.0=${sha(layer)}`,
    );
    expect(labelled.trim().split(',').sort()).toEqual(
      [
        `containerd.io/gc.ref.content.config=${sha(config)}`,
        `containerd.io/gc.ref.content.l.0=${sha(layer)}`,
      ].sort(),
    );

    // Case 30 through ctr: the wrong digest fails and nothing is added, no ingest left.
    const wrong = await ctrWithStdin(
      ['content', 'ingest', '--expected-digest', sha('something else'), 'bad'],
      Buffer.from('actual bytes'),
    );
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('unexpected commit digest');
    expect(await ok('content', 'ls', '-q')).not.toContain(sha('actual bytes'));
    expect(table(await ok('content', 'active'))).toEqual([['REF', 'SIZE', 'AGE']]);

    // Malformed digests never reach the store.
    const bad = await ctr('content', 'rm', 'sha256:../../etc');
    expect(bad.code).not.toBe(0);

    // rm of a blob: printed, then gone.
    const loose = Buffer.from('loose blob');
    expect((await ctrWithStdin(['content', 'ingest', 'loose'], loose)).code).toBe(0);
    expect((await ok('content', 'rm', sha(loose))).trim()).toBe(sha(loose));
    const after = await ctrWithStdin(['content', 'get', sha(loose)], Buffer.alloc(0));
    expect(after.code).not.toBe(0);
    expect(after.stderr).toContain('not found');
  });

  it('images ls, tag, label, rm --sync (the collector takes the blobs)', async () => {
    const images = createClient(ImagesService, { address: d.address, namespace: ns });
    await images.create({
      image: {
        name: 'example.com/test/app:1',
        target: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: sha(manifest),
          size: BigInt(manifest.length),
        },
      },
    });
    // The image (and the manifest's gc.ref labels) hold the blobs now.
    await leases().delete({ id: HOLD });
    const ls = table(await ok('images', 'ls'));
    expect(ls[0]).toEqual(['REF', 'TYPE', 'DIGEST', 'SIZE', 'PLATFORMS', 'LABELS']);
    expect(ls[1]?.slice(0, 3)).toEqual([
      'example.com/test/app:1',
      'application/vnd.oci.image.manifest.v1+json',
      sha(manifest),
    ]);
    expect(ls[1]?.slice(3, 6)).toEqual(['3.0', 'MiB', 'linux/amd64']);

    await ok('images', 'tag', 'example.com/test/app:1', 'example.com/test/app:2');
    const again = await ctr('images', 'tag', 'example.com/test/app:1', 'example.com/test/app:2');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('already exists');
    await ok('images', 'label', 'example.com/test/app:2', 'team=blue');
    expect(
      table(await ok('images', 'ls', 'labels.team==blue'))
        .slice(1)
        .map((r) => r[0]),
    ).toEqual(['example.com/test/app:2']);
    expect(table(await ok('images', 'ls', '-q')).flat()).toEqual([
      'example.com/test/app:1',
      'example.com/test/app:2',
    ]);

    // One tag gone: the other still holds every blob.
    await ok('images', 'rm', '--sync', 'example.com/test/app:1');
    expect((await ok('content', 'ls', '-q')).trim().split('\n').sort()).toEqual(
      [sha(layer), sha(config), sha(manifest)].sort(),
    );
    await ok('images', 'rm', '--sync', 'example.com/test/app:2');
    expect((await ok('images', 'ls', '-q')).trim()).toBe('');
    expect((await ok('content', 'ls', '-q')).trim()).toBe('');
    expect(await readdir(join(d.root, 'content', 'blobs', 'sha256'))).toEqual([]);
    const missing = await ctr('images', 'rm', 'example.com/test/app:1');
    expect(missing.stderr).toMatch(/not found/);
  });

  it('images import --no-unpack (Content.Write with labels, Update, Images.Create/Update), export, rm --sync', async () => {
    // An OCI layout archive of the same image, tagged "v1".
    const layout = join(dir, 'layout');
    await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
    for (const b of [layer, config, manifest])
      await writeFile(join(layout, 'blobs', 'sha256', sha(b).slice(7)), b);
    await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(
      join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: sha(manifest),
            size: manifest.length,
            annotations: { 'org.opencontainers.image.ref.name': 'v1' },
          },
        ],
      }),
    );
    const archive = join(dir, 'image.tar');
    await promisify(execFile)('tar', ['-cf', archive, '-C', layout, 'oci-layout', 'index.json', 'blobs']);

    for (let round = 0; round < 2; round++) {
      // The second import finds every blob (Write STAT: AlreadyExists) and the image (Create: AlreadyExists → Update).
      const r = await ctr('images', 'import', '--no-unpack', '--base-name', 'example.com/imp', archive);
      expect(r.code, r.stderr).toBe(0);
    }
    const ls = table(await ok('images', 'ls'));
    expect(ls.slice(1).map((row) => row.slice(0, 3))).toEqual([
      ['example.com/imp:v1', 'application/vnd.oci.image.manifest.v1+json', sha(manifest)],
    ]);
    // Import labels the manifest with its children, so the collector keeps them.
    const content = table(await ok('content', 'ls')).slice(1);
    const manifestRow = content.find((row) => row[0] === sha(manifest));
    expect(manifestRow?.at(-1)).toContain(`containerd.io/gc.ref.content.config=${sha(config)}`);
    expect(manifestRow?.at(-1)).toContain(`containerd.io/gc.ref.content.l.0=${sha(layer)}`);
    expect(table(await ok('content', 'active'))).toEqual([['REF', 'SIZE', 'AGE']]);
    expect(table(await ok('leases', 'ls'))).toEqual([['ID', 'CREATED', 'AT', 'LABELS']]);

    // Export reads every blob back through ranged Reads; the archive holds the same bytes.
    const out = join(dir, 'export.tar');
    await ok('images', 'export', out, 'example.com/imp:v1');
    const unpacked = join(dir, 'export');
    await mkdir(unpacked);
    await promisify(execFile)('tar', ['-xf', out, '-C', unpacked]);
    for (const b of [layer, config, manifest]) {
      expect((await readFile(join(unpacked, 'blobs', 'sha256', sha(b).slice(7)))).equals(b)).toBe(true);
    }

    await ok('images', 'rm', '--sync', 'example.com/imp:v1');
    expect((await ok('content', 'ls', '-q')).trim()).toBe('');
  });
});
