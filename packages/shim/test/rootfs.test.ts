import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { directMount, isMounted, mountRootfs, rootfsPath, unmountRootfs } from '../src/rootfs.js';

// Task rootfs mounts are real mounts (root only). An overlay over a long layer chain passes the
// kernel's one page of mount data with absolute lowerdirs; the shim must mount it anyway.
const root = process.getuid?.() === 0;

describe('which mounts mount(2) takes', () => {
  it('an overlay: flag words become flags, the rest its data', () => {
    expect(
      directMount({
        type: 'overlay',
        source: 'overlay',
        options: ['workdir=/w', 'upperdir=/u', 'lowerdir=/a:/b', 'ro', 'nodev', 'index=off', 'defaults'],
      }),
    ).toEqual({ flags: 1 | 4, data: 'workdir=/w,upperdir=/u,lowerdir=/a:/b,index=off' });
    // A later word undoes an earlier one, as with mount(8).
    expect(
      directMount({ type: 'overlay', source: 'overlay', options: ['ro', 'rw', 'lowerdir=/a:/b'] }),
    ).toEqual({
      flags: 0,
      data: 'lowerdir=/a:/b',
    });
  });

  it('leaves binds, other types, mount(8) words and near-page data to mount(8)', () => {
    expect(directMount({ type: 'bind', source: '/x', options: ['rbind', 'ro'] })).toBeUndefined();
    expect(directMount({ type: 'tmpfs', source: 'tmpfs', options: [] })).toBeUndefined();
    for (const o of ['remount', 'rprivate', 'loop', 'x-mount.mkdir'])
      expect(
        directMount({ type: 'overlay', source: 'overlay', options: ['lowerdir=/a:/b', o] }),
      ).toBeUndefined();
    const long = `lowerdir=${Array.from({ length: 200 }, (_, i) => `/var/lib/layers/${i}/fs`).join(':')}`;
    expect(directMount({ type: 'overlay', source: 'overlay', options: [long] })).toBeUndefined();
  });
});

describe.skipIf(!root)('rootfs mounts', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shim-rootfs-with-a-long-enough-directory-name-'));
  });
  afterEach(async () => {
    await unmountRootfs(join(dir, 'bundle')).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  it('mounts a read-only overlay with mount(2); unmount takes every mount stacked there', async () => {
    const lower = [join(dir, 'l1'), join(dir, 'l2')];
    for (const [i, l] of lower.entries()) {
      await mkdir(l, { recursive: true });
      await writeFile(join(l, `f${i}`), `${i}\n`);
    }
    const bundle = join(dir, 'bundle');
    await mountRootfs(bundle, [
      { type: 'overlay', source: 'overlay', options: [`lowerdir=${lower.join(':')}`, 'ro'] },
    ]);
    const rootfs = rootfsPath(bundle);
    expect(await isMounted(rootfs)).toBe(true);
    expect(await readFile(join(rootfs, 'f1'), 'utf8')).toBe('1\n');
    await expect(writeFile(join(rootfs, 'new'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    const info = await readFile('/proc/self/mountinfo', 'utf8');
    expect(info.split('\n').find((l) => l.split(' ')[4] === rootfs)).toMatch(/ ro[, ]/);
    // A second mount on top; both go, and a third unmount is a no-op.
    await mountRootfs(bundle, [
      { type: 'overlay', source: 'overlay', options: [`lowerdir=${lower.join(':')}`] },
    ]);
    await unmountRootfs(bundle);
    expect(await isMounted(rootfs)).toBe(false);
    await unmountRootfs(bundle);
  });

  it('a mount(2) failure says why and leaves nothing mounted', async () => {
    const bundle = join(dir, 'bundle');
    const err = await mountRootfs(bundle, [
      {
        type: 'overlay',
        source: 'overlay',
        options: [`lowerdir=${join(dir, 'missing')}:${join(dir, 'gone')}`],
      },
    ]).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/mount rootfs at .*rootfs: mount overlay at .*: ENOENT/);
    expect(await isMounted(rootfsPath(bundle))).toBe(false);
  });

  it('mounts an overlay of 120 layers at bundle/rootfs and unmounts it', async () => {
    const layers: string[] = [];
    for (let i = 0; i < 120; i++) {
      const fs = join(dir, 'snapshots', String(i), 'fs');
      await mkdir(fs, { recursive: true });
      await writeFile(join(fs, `layer-${i}`), `${i}\n`);
      layers.unshift(fs);
    }
    const upper = join(dir, 'snapshots', 'top', 'fs');
    const work = join(dir, 'snapshots', 'top', 'work');
    await mkdir(upper, { recursive: true });
    await mkdir(work, { recursive: true });
    const options = [`workdir=${work}`, `upperdir=${upper}`, `lowerdir=${layers.join(':')}`];
    expect(options.join(',').length).toBeGreaterThan(4096);

    const bundle = join(dir, 'bundle');
    await mountRootfs(bundle, [{ type: 'overlay', source: 'overlay', options }]);
    expect(await isMounted(rootfsPath(bundle))).toBe(true);
    expect(await readFile(join(rootfsPath(bundle), 'layer-0'), 'utf8')).toBe('0\n');
    expect(await readFile(join(rootfsPath(bundle), 'layer-119'), 'utf8')).toBe('119\n');

    await unmountRootfs(bundle);
    expect(await isMounted(rootfsPath(bundle))).toBe(false);
  });
});
