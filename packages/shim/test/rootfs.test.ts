import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isMounted, mountRootfs, rootfsPath, unmountRootfs } from '../src/rootfs.js';

// Task rootfs mounts are real mounts (root only). An overlay over a long layer chain passes the
// kernel's one page of mount data with absolute lowerdirs; the shim must mount it anyway.
const root = process.getuid?.() === 0;

describe.skipIf(!root)('rootfs mounts', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shim-rootfs-with-a-long-enough-directory-name-'));
  });
  afterEach(async () => {
    await unmountRootfs(join(dir, 'bundle')).catch(() => {});
    await rm(dir, { recursive: true, force: true });
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
