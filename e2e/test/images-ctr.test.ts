import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemon } from './helpers/daemon.js';
import {
  type BuiltImage,
  busyboxImage,
  makeImage,
  makeLayer,
  ociLayoutTar,
  tarBytes,
} from './helpers/oci-image.js';
import { buildBusyboxRootfs } from './helpers/rootfs.js';
import { type Run, runCommand } from './helpers/run.js';
import { CTR, mountsUnder, sweep } from './tasks-support.js';

// Images end to end on a real ctrd: our ctr imports a busybox OCI archive (built by
// helpers/oci-image), lists it, runs it with the image's command, env and working dir, exports it
// and imports the export in another namespace; images made by umoci and skopeo import and run;
// the stock containerd ctr 1.6 imports, lists, runs, exports and lists snapshots against ctrd;
// removing images and containers lets GC take every blob and snapshot; and bad archives (huge
// manifest, 200 layers, a corrupted blob, a layer escaping with ../) fail clearly and store nothing.

const execFileP = promisify(execFile);
const ctrBin = join(dirname(createRequire(import.meta.url).resolve('@ctrd/ctr/package.json')), 'bin/run.js');
const UMOCI = '/usr/bin/umoci';
const SKOPEO = '/usr/bin/skopeo';

let scratch: string;
let fifos: string;
let d: DaemonProcess;
let busybox: BuiltImage;
let archive: string;
const tag = randomBytes(3).toString('hex');
const NAME = `docker.io/library/busybox:e2e-${tag}`;
const namespaces: string[] = [];

function ns(prefix: string): string {
  const name = `${prefix}${randomBytes(3).toString('hex')}`;
  namespaces.push(name);
  return name;
}

/** Our ctr in namespace `n`. */
function ours(n: string, args: string[], timeout = 60_000): Promise<Run> {
  return runCommand(process.execPath, [ctrBin, '--address', d.socket, '-n', n, ...args], { timeout });
}

async function oursOk(n: string, args: string[]): Promise<string> {
  const r = await ours(n, args);
  if (r.code !== 0)
    throw new Error(`ctr ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${d.logs().slice(-3000)}`);
  return r.stdout;
}

function stock(n: string, args: string[], timeout = 60_000): Promise<Run> {
  return runCommand(CTR, ['--address', d.socket, '-n', n, ...args], { timeout });
}

async function stockOk(n: string, args: string[]): Promise<string> {
  const r = await stock(n, args);
  if (r.code !== 0) throw new Error(`stock ctr ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

const lines = (out: string) => out.split('\n').filter((l) => l !== '');

/** Waits until the namespace holds no blobs and no snapshots (the collector runs after deletes). */
async function expectEmptied(n: string): Promise<void> {
  let content = '';
  let snapshots = '';
  for (const end = Date.now() + 60_000; Date.now() < end; ) {
    content = await oursOk(n, ['content', 'ls', '-q']);
    snapshots = await oursOk(n, ['snapshots', 'ls', '-q']);
    if (content === '' && snapshots === '') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect({ content: lines(content), snapshots: lines(snapshots) }).toEqual({ content: [], snapshots: [] });
}

const RUN_CONFIG = {
  Cmd: ['sh', '-c', 'echo "$GREETING from $(pwd) as $(id -u)"'],
  Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello'],
  WorkingDir: '/srv',
  StopSignal: 'SIGINT',
};

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'ctrd-img-'));
  fifos = join(scratch, 'fifo');
  await mkdir(fifos);
  d = await startDaemon({ dir: join(scratch, 'd') });
  busybox = await busyboxImage(RUN_CONFIG);
  archive = join(scratch, 'busybox.tar');
  await writeFile(archive, await ociLayoutTar([{ image: busybox, name: NAME }]));
});

afterAll(async () => {
  await d?.stop('SIGKILL');
  await sweep(scratch, join(scratch, 'd', 'state'), namespaces);
  await rm(scratch, { recursive: true, force: true });
});

describe('our ctr: import, ls, run, export, re-import', () => {
  const a = ns('imga');
  const b = ns('imgb');

  it('imports the archive, lists it and runs it with the image config', async () => {
    const imported = await ours(a, ['images', 'import', archive]);
    expect(imported).toMatchObject({ code: 0, stdout: `${NAME}\n` });
    expect(imported.stderr).toContain('unpacking linux/');
    const ls = lines(await oursOk(a, ['images', 'ls']));
    expect(ls[0]).toMatch(/^REF\s+TYPE\s+DIGEST\s+SIZE\s+PLATFORMS\s+LABELS$/);
    expect(ls[1]).toContain(
      `${NAME}    application/vnd.oci.image.manifest.v1+json    ${busybox.manifestDesc.digest}`,
    );
    expect(ls[1]).toMatch(/\d+\.\d MiB\s+linux\/\w+\s+-$/);
    const check = await oursOk(a, ['images', 'check']);
    expect(check).toMatch(/complete \(3\/3\).*true/);

    const run = await ours(a, ['run', '--rm', '--fifo-dir', fifos, NAME, 'job1']);
    expect(run).toMatchObject({ code: 0, stdout: 'hello from /srv as 0\n' });
    // A command replaces Cmd; --env overrides the image's; --cwd overrides WorkingDir; exit codes pass through.
    const custom = await ours(a, [
      'run',
      '--rm',
      '--fifo-dir',
      fifos,
      '--env',
      'GREETING=bye',
      '--cwd',
      '/tmp',
      `busybox:e2e-${tag}`,
      'job2',
      'sh',
      '-c',
      'echo "$GREETING $(pwd)"; exit 3',
    ]);
    expect(custom).toMatchObject({ code: 3, stdout: 'bye /tmp\n' });
    // --rm left no container and no container snapshot: only the image's committed layer.
    expect(await oursOk(a, ['containers', 'ls', '-q'])).toBe('');
    expect(lines(await oursOk(a, ['snapshots', 'ls', '-q']))).toHaveLength(1);
  });

  it('a container keeps its snapshot and stop-signal label until c rm', async () => {
    await oursOk(a, ['containers', 'create', NAME, 'kept']);
    const info = JSON.parse(await oursOk(a, ['containers', 'info', 'kept']));
    expect(info).toMatchObject({ image: NAME, snapshotter: 'overlayfs', snapshotKey: 'kept' });
    expect(JSON.stringify(info)).toContain('"io.containerd.image.config.stop-signal":"SIGINT"');
    expect(await oursOk(a, ['snapshots', 'ls'])).toMatch(/\nkept\s+sha256:\S+\s+Active\n/);
    await oursOk(a, ['containers', 'rm', 'kept']);
    expect(await oursOk(a, ['snapshots', 'ls'])).not.toContain('kept');
  });

  it('exports an OCI layout that imports and runs in another namespace', async () => {
    const out = join(scratch, 'export.tar');
    await oursOk(a, ['images', 'export', out, NAME]);
    const { stdout: listing } = await execFileP('tar', ['tf', out]);
    expect(lines(listing).sort()).toEqual(
      [
        'blobs/',
        'blobs/sha256/',
        ...[...busybox.blobs.keys()].map((k) => `blobs/sha256/${k.slice(7)}`),
        'index.json',
        'manifest.json',
        'oci-layout',
      ].sort(),
    );
    const { stdout: index } = await execFileP('tar', ['xOf', out, 'index.json']);
    expect(JSON.parse(index).manifests[0].annotations).toEqual({
      'io.containerd.image.name': NAME,
      'org.opencontainers.image.ref.name': `e2e-${tag}`,
    });
    expect(await oursOk(b, ['images', 'import', out])).toBe(`${NAME}\n`);
    const run = await ours(b, ['run', '--rm', '--fifo-dir', fifos, NAME, 'job3']);
    expect(run).toMatchObject({ code: 0, stdout: 'hello from /srv as 0\n' });
  });

  it('images rm and rm let the collector take every blob and snapshot', async () => {
    await oursOk(b, ['containers', 'create', NAME, 'left']);
    expect(await oursOk(b, ['images', 'rm', '--sync', NAME])).toBe(`${NAME}\n`);
    // The container still holds its snapshot chain; removing it frees the rest.
    expect(lines(await oursOk(b, ['snapshots', 'ls', '-q'])).length).toBeGreaterThan(0);
    await oursOk(b, ['rm', 'left']);
    await expectEmptied(b);
    await oursOk(a, ['images', 'rm', '--sync', NAME]);
    await expectEmptied(a);
  });
});

describe('images made by other tools', () => {
  const n = ns('imgu');

  it('an image built with umoci (init, new, unpack, repack, config) imports and runs', async () => {
    const layout = join(scratch, 'umoci-layout');
    const bundle = join(scratch, 'umoci-bundle');
    await execFileP(UMOCI, ['init', '--layout', layout]);
    await execFileP(UMOCI, ['new', '--image', `${layout}:v1`]);
    await execFileP(UMOCI, ['unpack', '--image', `${layout}:v1`, bundle]);
    await buildBusyboxRootfs(join(bundle, 'rootfs'));
    await execFileP(UMOCI, ['repack', '--image', `${layout}:v1`, bundle]);
    await execFileP(UMOCI, [
      'config',
      '--image',
      `${layout}:v1`,
      '--config.cmd',
      'sh',
      '--config.cmd',
      '-c',
      '--config.cmd',
      'echo umoci $MODE',
      '--config.env',
      'MODE=repacked',
      '--config.workingdir',
      '/tmp',
    ]);
    const tar = join(scratch, 'umoci.tar');
    await execFileP('tar', ['-C', layout, '-cf', tar, '.']);
    const imported = await ours(n, ['images', 'import', '--base-name', 'localhost/umoci', tar]);
    expect(imported).toMatchObject({ code: 0, stdout: 'localhost/umoci:v1\n' });
    const run = await ours(n, ['run', '--rm', '--fifo-dir', fifos, 'localhost/umoci:v1', 'u1']);
    expect(run).toMatchObject({ code: 0, stdout: 'umoci repacked\n' });

    // skopeo copies the same layout into an oci-archive with a full ref name.
    const skopeoTar = join(scratch, 'skopeo.tar');
    await execFileP(SKOPEO, ['copy', `oci:${layout}:v1`, `oci-archive:${skopeoTar}:localhost/skopeo:v2`]);
    expect(await oursOk(n, ['images', 'import', skopeoTar])).toBe('localhost/skopeo:v2\n');
    const run2 = await ours(n, ['run', '--rm', '--fifo-dir', fifos, 'localhost/skopeo:v2', 'u2', 'pwd']);
    expect(run2).toMatchObject({ code: 0, stdout: '/tmp\n' });
  });
});

describe('stock containerd ctr 1.6 against ctrd', () => {
  const n = ns('imgs');

  it('i import, i ls, run --rm IMAGE, i export, snapshots ls', async () => {
    const imported = await stockOk(n, ['i', 'import', archive]);
    expect(imported).toContain(`unpacking ${NAME} (${busybox.manifestDesc.digest})...done`);
    const ls = lines(await stockOk(n, ['i', 'ls']));
    expect(ls[1]).toMatch(
      new RegExp(
        `^${NAME.replaceAll('.', '\\.')}\\s+application/vnd\\.oci\\.image\\.manifest\\.v1\\+json\\s+${busybox.manifestDesc.digest}\\s+\\S+ MiB\\s+linux/\\w+\\s+-`,
      ),
    );
    const run = await stock(n, ['run', '--rm', '--fifo-dir', fifos, NAME, 'st1']);
    expect(run).toMatchObject({ code: 0, stdout: 'hello from /srv as 0\n' });
    const withCmd = await stock(n, [
      'run',
      '--rm',
      '--fifo-dir',
      fifos,
      '--env',
      'GREETING=stock',
      NAME,
      'st2',
      'sh',
      '-c',
      'echo $GREETING; pwd',
    ]);
    expect(withCmd).toMatchObject({ code: 0, stdout: 'stock\n/srv\n' });
    const snaps = lines(await stockOk(n, ['snapshots', 'ls']));
    expect(snaps[0]).toMatch(/^KEY\s+PARENT\s+KIND/);
    expect(snaps).toHaveLength(2);
    expect(snaps[1]).toMatch(/^sha256:[0-9a-f]{64}\s+Committed/);
    const out = join(scratch, 'stock-export.tar');
    await stockOk(n, ['i', 'export', out, NAME]);
    // Ours reads what stock exported, into a fresh namespace, and runs it.
    const m = ns('imgm');
    expect(await oursOk(m, ['images', 'import', out])).toBe(`${NAME}\n`);
    expect(await ours(m, ['run', '--rm', '--fifo-dir', fifos, NAME, 'st3'])).toMatchObject({
      code: 0,
      stdout: 'hello from /srv as 0\n',
    });
    // Stock rm + our GC check.
    await stockOk(n, ['i', 'rm', '--sync', NAME]);
    await expectEmptied(n);
  });
});

describe('bad archives fail clearly and store nothing', () => {
  const n = ns('imgx');

  async function importBad(name: string, bytes: Buffer): Promise<Run> {
    const file = join(scratch, `${name}.tar`);
    await writeFile(file, bytes);
    const r = await ours(n, ['images', 'import', file]);
    expect(r.code).toBe(1);
    expect(await oursOk(n, ['images', 'ls', '-q'])).toBe('');
    return r;
  }

  it('a manifest over 4 MiB', async () => {
    const big = makeImage({
      layers: busybox.layers,
      config: RUN_CONFIG,
      manifestExtra: { annotations: { pad: 'x'.repeat(4 * 1024 * 1024) } },
    });
    const r = await importBad('big', await ociLayoutTar([{ image: big, name: 'localhost/big:1' }]));
    expect(r.stderr).toMatch(
      /^ctr: .*manifest sha256:[0-9a-f]{64}: \d+ bytes, over the limit of 4194304 bytes/m,
    );
    await expectEmptied(n);
  });

  it('200 layers', async () => {
    const layer = makeLayer(await tarBytes([{ name: 'a', type: 'file', body: Buffer.from('a') }]));
    const many = makeImage({
      layers: [layer],
      diffIds: Array(200).fill(layer.diffId),
      layerDescs: Array(200).fill(layer.desc),
    });
    const r = await importBad('many', await ociLayoutTar([{ image: many, name: 'localhost/many:1' }]));
    expect(r.stderr).toContain('200 layers, more than the limit of 128');
    await expectEmptied(n);
  });

  it('a blob whose bytes do not match its digest', async () => {
    // A layer no other namespace holds: a known digest would be shared, not written again.
    const layer = makeLayer(await tarBytes([{ name: 'unique', type: 'file', body: Buffer.from(tag) }]));
    const img = makeImage({ layers: [layer], config: RUN_CONFIG });
    const r = await importBad(
      'corrupt',
      await ociLayoutTar([{ image: img, name: 'localhost/corrupt:1' }], { corrupt: layer.desc.digest }),
    );
    expect(r.stderr).toContain(`archive entry blobs/sha256/${layer.desc.digest.slice(7)}`);
    expect(r.stderr).toContain('unexpected commit digest');
    await expectEmptied(n);
  });
});

describe('a layer with ../ entries', () => {
  const n = ns('imgy');

  it('is unpacked with every path kept inside its snapshot, as containerd does', async () => {
    const evil = makeLayer(
      await tarBytes([
        { name: 'bin/', type: 'dir', mode: 0o755 },
        { name: 'bin/busybox', type: 'file', mode: 0o755, body: await readFile('/bin/busybox') },
        { name: 'bin/cat', type: 'symlink', linkname: 'busybox' },
        { name: `../../escaped-${tag}`, type: 'file', body: Buffer.from('pwned') },
      ]),
    );
    const img = makeImage({ layers: [evil], config: { Cmd: ['/bin/cat', `/escaped-${tag}`] } });
    const file = join(scratch, 'evil.tar');
    await writeFile(file, await ociLayoutTar([{ image: img, name: 'localhost/evil:1' }]));
    expect(await oursOk(n, ['images', 'import', file])).toBe('localhost/evil:1\n');
    const run = await ours(n, ['run', '--rm', '--fifo-dir', fifos, 'localhost/evil:1', 'e1']);
    expect(run).toMatchObject({ code: 0, stdout: 'pwned' });
    // The only copy is the one at the snapshot's root.
    const { stdout } = await execFileP('find', [
      '/tmp',
      '/var/tmp',
      scratch,
      '-xdev',
      '-name',
      `escaped-${tag}`,
    ]);
    const found = lines(stdout);
    expect(found.length).toBeGreaterThan(0);
    for (const path of found) expect(path).toMatch(new RegExp(`^${scratch}/d/root/.*/fs/escaped-${tag}$`));
    await oursOk(n, ['images', 'rm', '--sync', 'localhost/evil:1']);
    await expectEmptied(n);
    expect(mountsUnder(scratch)).toEqual([]);
  });
});
