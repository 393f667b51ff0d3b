import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient, OCI_SPEC_URL, packJson } from '@ctrd/api-proto';
import { ContainersService } from '@ctrd/api-proto/containers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemon } from './helpers/daemon.js';
import { buildBusyboxRootfs } from './helpers/rootfs.js';
import { ctrOk, ctrRun, mountsUnder, sweep } from './tasks-support.js';

// Snapshots end to end: a real ctrd driven by the stock ctr 1.6 `snapshots` verbs, the mount
// commands it prints run as printed, and a container whose rootfs is an overlay snapshot on a
// committed busybox layer, started by the stock `ctr t start` (which asks Snapshots.Mounts itself).

const run = promisify(execFile);

let d: DaemonProcess;
let dir: string;
let fifos: string;
const ns = `sn${randomBytes(4).toString('hex')}`;
const layerName = `sha256:${randomBytes(32).toString('hex')}`;

const ctr = (...args: string[]) => ctrRun(d, ['-n', ns, ...args]);
const ok = (...args: string[]) => ctrOk(d, ['-n', ns, ...args]);
/** A ctr table as rows of cells, cut at the header's column starts (keys may hold spaces). */
function rows(out: string): string[][] {
  const [header = '', ...lines] = out.replace(/\n$/, '').split('\n');
  const starts = [...header.matchAll(/\S+/g)].map((m) => m.index);
  return [header, ...lines].map((l) => starts.map((at, i) => l.slice(at, starts[i + 1] ?? l.length).trim()));
}

/** Runs the `mount -t T SRC TARGET -o OPTS` lines `ctr snapshots mounts` prints, as printed. */
async function runPrinted(out: string): Promise<void> {
  for (const line of out.trim().split('\n')) {
    expect(line).toMatch(/^mount -t \S+ \S+ \S+ -o \S+$/);
    await run('sh', ['-c', line]);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrd-sn-'));
  fifos = join(dir, 'fifo');
  await mkdir(fifos);
  d = await startDaemon({ dir: join(dir, 'd') });
});

afterAll(async () => {
  await d?.stop('SIGKILL');
  await sweep(dir, join(dir, 'd', 'state'), [ns]);
  await rm(dir, { recursive: true, force: true });
});

describe('snapshots through stock ctr', () => {
  it('prepare, mounts (run as printed), commit, view, ls, info, usage, tree, rm', async () => {
    await ok('snapshots', 'prepare', 'base-key');
    expect(rows(await ok('snapshots', 'ls'))).toEqual([
      ['KEY', 'PARENT', 'KIND'],
      ['base-key', '', 'Active'],
    ]);
    // The first layer is a bind of its directory; fill it with busybox through that mount.
    const target = join(dir, 'base');
    await mkdir(target);
    const printed = await ok('snapshots', 'mounts', target, 'base-key');
    expect(printed).toBe(
      `mount -t bind ${join(d.root, 'snapshots', 'overlayfs', '1', 'fs')} ${target} -o rw,rbind\n`,
    );
    await runPrinted(printed);
    await buildBusyboxRootfs(target);
    await writeFile(join(target, 'etc', 'greeting'), 'from the base layer\n');
    await run('umount', [target]);

    await ok('snapshots', 'commit', 'base', 'base-key');
    // ctr's unpack names: "extract-<nanos>-<rand> <chainID>", committed as the chain id.
    const key = `extract-${process.hrtime.bigint()}-AbCd ${layerName}`;
    await ok('snapshots', 'prepare', key, 'base');
    const upper = join(dir, 'upper');
    await mkdir(upper);
    const overlay = await ok('snapshots', 'mounts', upper, key);
    expect(overlay).toMatch(
      /^mount -t overlay overlay \S+ -o (index=off,)?workdir=\S+,upperdir=\S+,lowerdir=\S+\n$/,
    );
    await runPrinted(overlay);
    expect(readFileSync(join(upper, 'etc', 'greeting'), 'utf8')).toBe('from the base layer\n');
    await writeFile(join(upper, 'hello'), 'hello from the second layer\n');
    await run('umount', [upper]);
    await ok('snapshots', 'commit', layerName, key);

    await ok('snapshots', 'view', 'a view', layerName);
    const ls = rows(await ok('snapshots', 'ls'));
    expect(ls[0]).toEqual(['KEY', 'PARENT', 'KIND']);
    expect(ls.slice(1).sort()).toEqual(
      [
        ['a view', layerName, 'View'],
        ['base', '', 'Committed'],
        [layerName, 'base', 'Committed'],
      ].sort(),
    );
    const info = JSON.parse(await ok('snapshots', 'info', layerName));
    expect(info).toMatchObject({ Kind: 'Committed', Name: layerName, Parent: 'base' });
    const usage = rows(await ok('snapshots', 'usage', 'base'));
    expect(usage[0]).toEqual(['KEY', 'SIZE', 'INODES']);
    // busybox is about 1-2 MB; the layer holds it and a few hundred applet links.
    expect(usage[1]?.[1]).toMatch(/^\d+(\.\d+)? MiB$/);
    expect(Number(usage[1]?.[2])).toBeGreaterThan(100);
    expect(await ok('snapshots', 'tree')).toBe(` base\n  \\_ ${layerName}\n    \\_ a view\n`);

    const busy = await ctr('snapshots', 'rm', 'base');
    expect(busy.code).not.toBe(0);
    expect(busy.stderr).toMatch(/cannot remove snapshot with child .*failed precondition/);
    const missing = await ctr('snapshots', 'info', 'nope');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/snapshot "nope" .*not found/);
    // Snapshots keep their namespace from being deleted.
    const nsRm = await ctrRun(d, ['namespaces', 'rm', ns]);
    expect(nsRm.stderr).toMatch(/failed precondition|not empty/);
    await ok('snapshots', 'rm', 'a view');
    // The other snapshotter is separate.
    expect(rows(await ok('snapshots', '--snapshotter', 'native', 'ls'))).toEqual([['KEY', 'PARENT', 'KIND']]);
    const unknown = await ctr('snapshots', '--snapshotter', 'nosuch', 'ls');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/snapshotter "nosuch": not loaded/);
  });

  it('a container on an overlay snapshot runs through stock ctr t start; ctr c rm removes the snapshot', async () => {
    await ok('snapshots', 'prepare', 'c1-snap', layerName);
    // A spec from stock ctr (c create --rootfs), then the container recreated on the snapshot.
    const unused = join(dir, 'unused');
    await mkdir(unused);
    await ok('c', 'create', '--rootfs', unused, 'tmpl', '/bin/true');
    const containers = createClient(ContainersService, { address: d.address, namespace: ns });
    const { container } = await containers.get({ id: 'tmpl' });
    const spec = JSON.parse(new TextDecoder().decode(container!.spec!.value));
    spec.root = { path: 'rootfs', readonly: false };
    spec.process.args = ['/bin/sh', '-c', 'cat /hello /etc/greeting; echo written > /written'];
    await containers.delete({ id: 'tmpl' });
    await containers.create({
      container: {
        ...container!,
        id: 'c1',
        spec: packJson(OCI_SPEC_URL, spec),
        snapshotter: 'overlayfs',
        snapshotKey: 'c1-snap',
      },
    });
    const started = await ctr('t', 'start', '--fifo-dir', fifos, 'c1');
    expect(started.stderr).toBe('');
    expect(started.stdout).toBe('hello from the second layer\nfrom the base layer\n');
    expect(started.code).toBe(0);
    // The container's write went to the snapshot's upper dir, not to the layers below.
    const upperdir = /upperdir=([^,\s]+)/.exec(await ok('snapshots', 'mounts', '/x', 'c1-snap'))?.[1];
    expect(readFileSync(join(upperdir!, 'written'), 'utf8')).toBe('written\n');
    expect(existsSync(join(d.root, 'snapshots', 'overlayfs', '2', 'fs', 'written'))).toBe(false);
    expect(mountsUnder(join(d.state, 'bundles'))).toEqual([]);

    await ok('c', 'rm', 'c1');
    const left = rows(await ok('snapshots', 'ls')).map((r) => r[0]);
    expect(left).not.toContain('c1-snap');
    expect(existsSync(upperdir!)).toBe(false);
  });
});
