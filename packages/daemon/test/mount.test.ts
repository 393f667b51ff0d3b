import {
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { Canceled, FailedPrecondition, InvalidArgument } from '@ctrd/api-proto';
import { MountSchema } from '@ctrd/api-proto/types';
import { afterEach, describe, expect, it } from 'vitest';
import { mountAll, mountsAt, readonlyMounts, unmountAll, withTempMounts } from '../src/mount/mount.js';

// The daemon's mount helper against real mounts (the tests run as root): every test unmounts
// and removes what it made, and checks that nothing is left mounted under its temp dir.

const temps: string[] = [];
afterEach(async () => {
  for (const d of temps.splice(0)) {
    await unmountAll(d).catch(() => {});
    for (const m of (await mountsAt(d)).below) await unmountAll(m).catch(() => {});
    rmSync(d, { recursive: true, force: true });
  }
});
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ctrd-mount-'));
  temps.push(d);
  return d;
}

const bind = (source: string, options: string[] = ['rbind']) =>
  create(MountSchema, { type: 'bind', source, options });

describe('mount helper', () => {
  it('bind-mounts, reads through the mount, and unmounts everything', async () => {
    const dir = temp();
    mkdirSync(join(dir, 'src'));
    mkdirSync(join(dir, 'dst'));
    writeFileSync(join(dir, 'src', 'f'), 'through the mount');
    await mountAll([bind(join(dir, 'src'))], join(dir, 'dst'));
    expect(readFileSync(join(dir, 'dst', 'f'), 'utf8')).toBe('through the mount');
    expect((await mountsAt(join(dir, 'dst'))).on).toBe(1);
    await unmountAll(join(dir, 'dst'));
    expect((await mountsAt(dir)).below).toEqual([]);
    expect(readdirSync(join(dir, 'dst'))).toEqual([]);
  });

  it('unmounts stacked mounts and submounts, and a busy mount lazily', async () => {
    const dir = temp();
    for (const d of ['a', 'b', 'dst']) mkdirSync(join(dir, d));
    mkdirSync(join(dir, 'a', 'sub'));
    writeFileSync(join(dir, 'b', 'g'), 'g');
    await mountAll([bind(join(dir, 'a'))], join(dir, 'dst'));
    await mountAll([bind(join(dir, 'b'))], join(dir, 'dst', 'sub'));
    await mountAll([bind(join(dir, 'b'))], join(dir, 'dst'));
    const fd = openSync(join(dir, 'dst', 'g'), 'r');
    try {
      await unmountAll(join(dir, 'dst'));
    } finally {
      closeSync(fd);
    }
    expect((await mountsAt(dir)).below).toEqual([]);
  });

  it('mounts an overlay read-write and read-only', async () => {
    const dir = temp();
    for (const d of ['lower', 'upper', 'work', 'rw', 'ro']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'lower', 'low'), 'low');
    const overlay = create(MountSchema, {
      type: 'overlay',
      source: 'overlay',
      options: [
        `workdir=${join(dir, 'work')}`,
        `upperdir=${join(dir, 'upper')}`,
        `lowerdir=${join(dir, 'lower')}`,
      ],
    });
    await mountAll([overlay], join(dir, 'rw'));
    writeFileSync(join(dir, 'rw', 'new'), 'new');
    await unmountAll(join(dir, 'rw'));
    expect(readFileSync(join(dir, 'upper', 'new'), 'utf8')).toBe('new');

    const ro = readonlyMounts([overlay]);
    expect(ro[0]!.options).toEqual([`lowerdir=${join(dir, 'upper')}:${join(dir, 'lower')}`]);
    await mountAll(ro, join(dir, 'ro'));
    try {
      expect(readdirSync(join(dir, 'ro')).sort()).toEqual(['low', 'new']);
      expect(() => writeFileSync(join(dir, 'ro', 'x'), 'x')).toThrow(/EROFS/);
    } finally {
      await unmountAll(join(dir, 'ro'));
    }
  });

  it('read-only bind mounts refuse writes', async () => {
    const dir = temp();
    mkdirSync(join(dir, 'src'));
    mkdirSync(join(dir, 'dst'));
    const ro = readonlyMounts([bind(join(dir, 'src'), ['rbind', 'rw'])]);
    expect(ro[0]!.options).toEqual(['rbind', 'ro']);
    await mountAll(ro, join(dir, 'dst'));
    try {
      expect(() => writeFileSync(join(dir, 'dst', 'x'), 'x')).toThrow(/EROFS/);
    } finally {
      await unmountAll(join(dir, 'dst'));
    }
  });

  it('a failed mount leaves nothing mounted and names the source', async () => {
    const dir = temp();
    mkdirSync(join(dir, 'src'));
    mkdirSync(join(dir, 'dst'));
    const err = await mountAll([bind(join(dir, 'src')), bind(join(dir, 'missing'))], join(dir, 'dst')).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FailedPrecondition);
    expect(String((err as Error).message)).toContain(join(dir, 'missing'));
    expect((await mountsAt(dir)).below).toEqual([]);
    await expect(
      mountAll([create(MountSchema, { type: '', source: 'x' })], join(dir, 'dst')),
    ).rejects.toBeInstanceOf(InvalidArgument);
  });

  it('withTempMounts mounts under root/tmpmounts and always cleans up', async () => {
    const root = temp();
    const src = join(root, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'temp');
    let seen = '';
    const out = await withTempMounts(
      [bind(src)],
      async (dir) => {
        expect(dir.startsWith(join(root, 'tmpmounts'))).toBe(true);
        seen = readFileSync(join(dir, 'f'), 'utf8');
        return 42;
      },
      { root },
    );
    expect([out, seen]).toEqual([42, 'temp']);
    expect(readdirSync(join(root, 'tmpmounts'))).toEqual([]);

    await expect(
      withTempMounts(
        [bind(src)],
        async () => {
          throw new Error('boom');
        },
        { root },
      ),
    ).rejects.toThrow('boom');
    expect(readdirSync(join(root, 'tmpmounts'))).toEqual([]);

    const ac = new AbortController();
    await expect(
      withTempMounts(
        [bind(src)],
        async (dir) => {
          ac.abort();
          ac.signal.throwIfAborted();
          return dir;
        },
        { root, signal: ac.signal },
      ),
    ).rejects.toThrow();
    const aborted = new AbortController();
    aborted.abort();
    await expect(
      withTempMounts([bind(src)], async () => 1, { root, signal: aborted.signal }),
    ).rejects.toBeInstanceOf(Canceled);
    await expect(
      withTempMounts([bind(join(root, 'missing'))], async () => 1, { root }),
    ).rejects.toBeInstanceOf(FailedPrecondition);
    expect(readdirSync(join(root, 'tmpmounts'))).toEqual([]);
    expect((await mountsAt(root)).below).toEqual([]);
  });
});
