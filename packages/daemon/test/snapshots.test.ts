import { execFile } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, link, writeFile, chmod, lchown } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  unpackAny,
  isAlreadyExists,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  createInMemoryClient,
} from '@ctrd/api-proto';
import {
  SnapshotCommitSchema,
  SnapshotPrepareSchema,
  SnapshotRemoveSchema,
} from '@ctrd/api-proto/event-types';
import { LeasesService } from '@ctrd/api-proto/leases';
import { Kind, SnapshotsService } from '@ctrd/api-proto/snapshots';
import type { Mount } from '@ctrd/api-proto/types';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtinPlugins } from '../src/builtin-plugins.js';
import { defaultConfig } from '../src/config.js';
import { initPlugins, PluginType } from '../src/plugin.js';
import type { Exchange } from '../src/services/exchange.js';
import { mountsBelow } from '../src/snapshots/backend.js';
import { type LocalSnapshots, MAX_CHAIN } from '../src/snapshots/local-snapshots.js';
import { mountCommand } from '../src/snapshots/mount-command.js';
import { lgetxattr, lsetxattr } from '../src/sys/libc.js';
import { type Harness, harness } from './harness.js';

// Snapshots through the in-memory transport, with real overlay and bind mounts in temp dirs.

const run = promisify(execFile);

let h: Harness;
let mnt: string;
beforeEach(async () => {
  h = await harness();
  mnt = join(h.root, 'mnt');
  await mkdir(mnt);
});
afterEach(async () => {
  for (const m of (await mountsBelow(h.root)).reverse()) await run('umount', ['-l', m]).catch(() => {});
  await h.close();
});

const sn = () => h.client(SnapshotsService);
const local = () => h.plugins.get<LocalSnapshots>(PluginType.Service, 'snapshots-service');
const snRoot = (name: string) => join(h.root, 'snapshots', name);
const err = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

/** Mounts `mounts` at a new dir under mnt, the way the shim does (mount(8)), compacting long overlays. */
async function mountAt(mounts: Mount[], name: string): Promise<string> {
  const target = join(mnt, name);
  await mkdir(target, { recursive: true });
  for (const m of mounts) {
    const c = mountCommand(m, target);
    await run('mount', c.args, { cwd: c.cwd });
  }
  return target;
}

async function unmount(target: string): Promise<void> {
  await run('umount', [target]);
}

/** Prepares `key` on `parent`, writes `files` into it through a mount, commits it as `name`. */
async function layer(
  snapshotter: string,
  name: string,
  parent: string,
  files: Record<string, string>,
): Promise<void> {
  const key = `extract-${name}`;
  const { mounts } = await sn().prepare({ snapshotter, key, parent });
  const at = await mountAt(mounts, key);
  try {
    for (const [f, body] of Object.entries(files)) {
      await mkdir(join(at, f, '..'), { recursive: true });
      await writeFile(join(at, f), body);
    }
  } finally {
    await unmount(at);
  }
  await sn().commit({ snapshotter, key, name });
}

describe('Snapshots (overlayfs)', () => {
  it('both snapshotters load here, and unknown or empty names are InvalidArgument', async () => {
    expect(local().snapshotters().sort()).toEqual(['native', 'overlayfs']);
    expect(isInvalidArgument(await err(sn().prepare({ snapshotter: 'btrfs', key: 'a' })))).toBe(true);
    expect(isInvalidArgument(await err(sn().prepare({ snapshotter: '', key: 'a' })))).toBe(true);
    expect(isInvalidArgument(await err(sn().stat({ snapshotter: 'zfs', key: 'a' })))).toBe(true);
  });

  it('prepare/commit chains give containerd 1.6 mounts that really mount and show the lower files', async () => {
    const { mounts: m0 } = await sn().prepare({ snapshotter: 'overlayfs', key: 'k0' });
    expect(m0).toHaveLength(1);
    expect(m0[0]).toMatchObject({
      type: 'bind',
      source: join(snRoot('overlayfs'), '1', 'fs'),
      options: ['rw', 'rbind'],
    });
    const at0 = await mountAt(m0, 'k0');
    await writeFile(join(at0, 'base.txt'), 'base\n');
    await unmount(at0);
    await sn().commit({ snapshotter: 'overlayfs', key: 'k0', name: 'base' });

    const { mounts: m1 } = await sn().prepare({ snapshotter: 'overlayfs', key: 'k1', parent: 'base' });
    const fs = (id: number) => join(snRoot('overlayfs'), String(id), 'fs');
    const index = existsSync('/sys/module/overlay/parameters/index') ? ['index=off'] : [];
    expect(m1).toEqual([
      expect.objectContaining({
        type: 'overlay',
        source: 'overlay',
        options: [
          ...index,
          `workdir=${join(snRoot('overlayfs'), '2', 'work')}`,
          `upperdir=${fs(2)}`,
          `lowerdir=${fs(1)}`,
        ],
      }),
    ]);
    const at1 = await mountAt(m1, 'k1');
    expect(readFileSync(join(at1, 'base.txt'), 'utf8')).toBe('base\n');
    await writeFile(join(at1, 'top.txt'), 'top\n');
    await rm(join(at1, 'base.txt'));
    await unmount(at1);
    // Changes land in the upper dir only; the parent is untouched.
    expect(readFileSync(join(fs(2), 'top.txt'), 'utf8')).toBe('top\n');
    expect(readFileSync(join(fs(1), 'base.txt'), 'utf8')).toBe('base\n');
    await sn().commit({ snapshotter: 'overlayfs', key: 'k1', name: 'layer2' });

    // A view of a chain: lowerdirs only, nearest first; read-only.
    const { mounts: v } = await sn().view({ snapshotter: 'overlayfs', key: 'v', parent: 'layer2' });
    expect(v[0]?.options).toEqual([...index, `lowerdir=${fs(2)}:${fs(1)}`]);
    const atv = await mountAt(v, 'v');
    expect(readdirSync(atv).sort()).toEqual(['top.txt']);
    expect(await err(writeFile(join(atv, 'x'), 'x'))).toMatchObject({ code: 'EROFS' });
    await unmount(atv);
    // A view of one layer: a read-only bind of that layer.
    const { mounts: v1 } = await sn().view({ snapshotter: 'overlayfs', key: 'v1', parent: 'base' });
    expect(v1).toEqual([expect.objectContaining({ type: 'bind', source: fs(1), options: ['ro', 'rbind'] })]);
    const atv1 = await mountAt(v1, 'v1');
    expect(readFileSync(join(atv1, 'base.txt'), 'utf8')).toBe('base\n');
    expect(await err(writeFile(join(atv1, 'x'), 'x'))).toMatchObject({ code: 'EROFS' });
    await unmount(atv1);
    // Mounts answers the same again; a committed snapshot has none.
    expect((await sn().mounts({ snapshotter: 'overlayfs', key: 'v' })).mounts).toEqual(v);
    expect(isFailedPrecondition(await err(sn().mounts({ snapshotter: 'overlayfs', key: 'base' })))).toBe(
      true,
    );
  });

  it('commit: the active key goes, the name is committed; views, unknown keys and taken names fail as in containerd', async () => {
    await sn().prepare({ snapshotter: 'overlayfs', key: 'a', labels: { x: '1' } });
    await sn().commit({ snapshotter: 'overlayfs', key: 'a', name: 'c', labels: { y: '2' } });
    expect(isNotFound(await err(sn().stat({ snapshotter: 'overlayfs', key: 'a' })))).toBe(true);
    const { info } = await sn().stat({ snapshotter: 'overlayfs', key: 'c' });
    expect(info).toMatchObject({ name: 'c', parent: '', kind: Kind.COMMITTED, labels: { y: '2' } });
    expect(info?.createdAt).toBeDefined();

    await sn().view({ snapshotter: 'overlayfs', key: 'v', parent: 'c' });
    expect(
      isFailedPrecondition(await err(sn().commit({ snapshotter: 'overlayfs', key: 'v', name: 'n' }))),
    ).toBe(true);
    expect(
      isFailedPrecondition(await err(sn().commit({ snapshotter: 'overlayfs', key: 'c', name: 'n' }))),
    ).toBe(true);
    expect(isNotFound(await err(sn().commit({ snapshotter: 'overlayfs', key: 'nope', name: 'n' })))).toBe(
      true,
    );
    await sn().prepare({ snapshotter: 'overlayfs', key: 'b', parent: 'c' });
    expect(isAlreadyExists(await err(sn().commit({ snapshotter: 'overlayfs', key: 'b', name: 'c' })))).toBe(
      true,
    );
    // Nothing changed by the failures.
    expect((await sn().stat({ snapshotter: 'overlayfs', key: 'b' })).info?.kind).toBe(Kind.ACTIVE);
    expect((await sn().stat({ snapshotter: 'overlayfs', key: 'v' })).info?.kind).toBe(Kind.VIEW);
    // Keys are per namespace and snapshotter.
    expect(
      isNotFound(await err(h.client(SnapshotsService, 'other').stat({ snapshotter: 'overlayfs', key: 'c' }))),
    ).toBe(true);
    expect(isNotFound(await err(sn().stat({ snapshotter: 'native', key: 'c' })))).toBe(true);
  });

  it('remove: FailedPrecondition with children, then in order; the directories go', async () => {
    await layer('overlayfs', 'p', '', { f: 'p' });
    await sn().prepare({ snapshotter: 'overlayfs', key: 'child', parent: 'p' });
    const e = await err(sn().remove({ snapshotter: 'overlayfs', key: 'p' }));
    expect(isFailedPrecondition(e)).toBe(true);
    expect(String(e)).toMatch(/cannot remove snapshot with child "child"/);
    expect((await sn().stat({ snapshotter: 'overlayfs', key: 'p' })).info?.name).toBe('p');
    await sn().remove({ snapshotter: 'overlayfs', key: 'child' });
    await sn().remove({ snapshotter: 'overlayfs', key: 'p' });
    expect(isNotFound(await err(sn().remove({ snapshotter: 'overlayfs', key: 'p' })))).toBe(true);
    expect(await readdir(snRoot('overlayfs'))).toEqual([]);
  });

  it('keys are any string: spaces, sha256: names, path-like keys never become paths', async () => {
    const chain = `sha256:${'ab'.repeat(32)}`;
    const key = `extract-1700000000000000000-AbCd ${chain}`;
    await sn().prepare({ snapshotter: 'overlayfs', key });
    await sn().commit({ snapshotter: 'overlayfs', key, name: chain });
    await sn().prepare({ snapshotter: 'overlayfs', key: '../../../etc/passwd', parent: chain });
    await sn().prepare({ snapshotter: 'overlayfs', key: '/abs ü\t"quoted"' });
    expect((await sn().stat({ snapshotter: 'overlayfs', key: '../../../etc/passwd' })).info?.parent).toBe(
      chain,
    );
    expect((await readdir(snRoot('overlayfs'))).sort()).toEqual(['1', '2', '3']);
    const names = [];
    for await (const r of sn().list({ snapshotter: 'overlayfs' })) names.push(...r.info.map((i) => i.name));
    expect(names.sort()).toEqual(['../../../etc/passwd', '/abs ü\t"quoted"', chain].sort());
  });

  it(`a chain of ${MAX_CHAIN} layers mounts; one more is refused`, async () => {
    let parent = '';
    for (let i = 1; i <= MAX_CHAIN; i++) {
      const key = `k${i}`;
      await sn().prepare({ snapshotter: 'overlayfs', key, parent });
      // Write straight into the upper dir: a mount per layer would make this test slow.
      await writeFile(join(snRoot('overlayfs'), String(i), 'fs', `f${i}`), `${i}`);
      await sn().commit({ snapshotter: 'overlayfs', key, name: `l${i}` });
      parent = `l${i}`;
    }
    const { mounts } = await sn().prepare({ snapshotter: 'overlayfs', key: 'top', parent });
    const lower = mounts[0]!.options.find((o) => o.startsWith('lowerdir='))!;
    expect(lower.split(':')).toHaveLength(MAX_CHAIN);
    const at = await mountAt(mounts, 'top');
    expect(readFileSync(join(at, 'f1'), 'utf8')).toBe('1');
    expect(readFileSync(join(at, `f${MAX_CHAIN}`), 'utf8')).toBe(String(MAX_CHAIN));
    expect(readdirSync(at)).toHaveLength(MAX_CHAIN);
    await unmount(at);
    await sn().commit({ snapshotter: 'overlayfs', key: 'top', name: 'l129' });
    const e = await err(sn().prepare({ snapshotter: 'overlayfs', key: 'too-deep', parent: 'l129' }));
    expect(isInvalidArgument(e)).toBe(true);
    expect(String(e)).toMatch(/more than 128/);
    expect(
      isInvalidArgument(await err(sn().view({ snapshotter: 'overlayfs', key: 'too-deep', parent: 'l129' }))),
    ).toBe(true);
    expect(isNotFound(await err(sn().stat({ snapshotter: 'overlayfs', key: 'too-deep' })))).toBe(true);
  }, 120_000);

  it('20 concurrent prepares of one key: one wins, the rest get AlreadyExists, nothing is left over', async () => {
    await layer('overlayfs', 'base', '', { a: 'a' });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        sn().prepare({ snapshotter: 'overlayfs', key: 'same', parent: 'base' }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(19);
    for (const r of rejected) expect(isAlreadyExists(r.reason)).toBe(true);
    expect((await readdir(snRoot('overlayfs'))).sort()).toEqual(['1', '2']);
  });

  it('bad input is InvalidArgument or NotFound and stores nothing', async () => {
    const bad = [
      { key: '' },
      { key: 'a\0b' },
      { key: 'x'.repeat(1025) },
      { key: 'ok', parent: 'p\0' },
      { key: 'ok', labels: { k: 'v'.repeat(5000) } },
    ];
    for (const b of bad) {
      expect(
        isInvalidArgument(await err(sn().prepare({ snapshotter: 'overlayfs', ...b }))),
        JSON.stringify(b).slice(0, 40),
      ).toBe(true);
    }
    // 1024 bytes of multi-byte characters is the limit, not 1024 characters.
    expect(
      isInvalidArgument(await err(sn().prepare({ snapshotter: 'overlayfs', key: 'é'.repeat(513) }))),
    ).toBe(true);
    await sn().prepare({ snapshotter: 'overlayfs', key: 'é'.repeat(512) });
    await sn().remove({ snapshotter: 'overlayfs', key: 'é'.repeat(512) });
    const missing = await err(sn().prepare({ snapshotter: 'overlayfs', key: 'ok', parent: 'missing' }));
    expect(isNotFound(missing)).toBe(true);
    expect(String(missing)).toMatch(/parent snapshot "missing"/);
    await sn().prepare({ snapshotter: 'overlayfs', key: 'active' });
    expect(
      isInvalidArgument(await err(sn().prepare({ snapshotter: 'overlayfs', key: 'ok', parent: 'active' }))),
    ).toBe(true);
    expect(isAlreadyExists(await err(sn().prepare({ snapshotter: 'overlayfs', key: 'active' })))).toBe(true);
    expect(isAlreadyExists(await err(sn().view({ snapshotter: 'overlayfs', key: 'active' })))).toBe(true);
    expect(
      isInvalidArgument(
        await err(h.client(SnapshotsService, 'bad/ns').prepare({ snapshotter: 'overlayfs', key: 'k' })),
      ),
    ).toBe(true);
    expect(
      isFailedPrecondition(
        await err(h.client(SnapshotsService, '').prepare({ snapshotter: 'overlayfs', key: 'k' })),
      ),
    ).toBe(true);
    const all = [];
    for await (const r of sn().list({ snapshotter: 'overlayfs' })) all.push(...r.info.map((i) => i.name));
    expect(all).toEqual(['active']);
    expect(await readdir(snRoot('overlayfs'))).toEqual(['2']);
  });

  it('crash leftovers: tmp dirs are removed at start, orphan dirs by Cleanup, and ids never collide', async () => {
    await sn().prepare({ snapshotter: 'overlayfs', key: 'kept' });
    // What a crash in the middle of a build or a removal leaves: tmp- dirs, and a dir without a row.
    await mkdir(join(snRoot('overlayfs'), 'tmp-abc123', 'fs', 'deep'), { recursive: true });
    await mkdir(join(snRoot('native'), 'tmp-rm-7-xyz', 'fs'), { recursive: true });
    await mkdir(join(snRoot('overlayfs'), '5', 'fs'), { recursive: true });
    await h.plugins.close();
    const again = await initPlugins(builtinPlugins({ root: h.root }), {
      config: { ...defaultConfig, root: h.root, stateDir: join(h.root, 'state') },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      rootDir: h.root,
      stateDir: join(h.root, 'state'),
    });
    try {
      const c = createInMemoryClient(SnapshotsService, { services: again.services, namespace: 'default' });
      expect((await readdir(snRoot('overlayfs'))).sort()).toEqual(['1', '5']);
      expect(await readdir(snRoot('native'))).toEqual([]);
      // The next id is past the orphan's, so its name is never reused.
      await c.prepare({ snapshotter: 'overlayfs', key: 'new' });
      expect((await readdir(snRoot('overlayfs'))).sort()).toEqual(['1', '5', '6']);
      await c.cleanup({ snapshotter: 'overlayfs' });
      expect((await readdir(snRoot('overlayfs'))).sort()).toEqual(['1', '6']);
      expect((await c.stat({ snapshotter: 'overlayfs', key: 'kept' })).info?.kind).toBe(Kind.ACTIVE);
    } finally {
      await again.close();
    }
  });

  it('a failed build leaves nothing: abort mid-prepare', async () => {
    await layer('native', 'big', '', { a: 'x'.repeat(1000) });
    const ac = new AbortController();
    ac.abort();
    await expect(
      local().prepare('default', 'native', 'k', 'big', {}, undefined, ac.signal),
    ).rejects.toThrow();
    expect(isNotFound(await err(sn().stat({ snapshotter: 'native', key: 'k' })))).toBe(true);
    expect(await readdir(snRoot('native'))).toEqual(['1']);
  });

  it('usage: walked for active snapshots, measured once at commit, zero for views', async () => {
    const { mounts } = await sn().prepare({ snapshotter: 'overlayfs', key: 'u' });
    const fs = mounts[0]!.source;
    await writeFile(join(fs, 'a'), Buffer.alloc(100 * 1024, 1));
    await mkdir(join(fs, 'd'));
    await writeFile(join(fs, 'd', 'b'), 'b');
    await link(join(fs, 'a'), join(fs, 'd', 'hard'));
    const u = await sn().usage({ snapshotter: 'overlayfs', key: 'u' });
    // fs, a (hard linked twice, counted once), d, d/b.
    expect(u.inodes).toBe(4n);
    expect(u.size).toBeGreaterThanOrEqual(BigInt(100 * 1024));
    expect(u.size).toBeLessThan(BigInt(100 * 1024 + 64 * 1024));
    await sn().commit({ snapshotter: 'overlayfs', key: 'u', name: 'uc' });
    await writeFile(join(fs, 'late'), Buffer.alloc(50 * 1024, 1));
    expect(await sn().usage({ snapshotter: 'overlayfs', key: 'uc' })).toMatchObject({
      size: u.size,
      inodes: u.inodes,
    });
    await sn().view({ snapshotter: 'overlayfs', key: 'uv', parent: 'uc' });
    expect(await sn().usage({ snapshotter: 'overlayfs', key: 'uv' })).toMatchObject({ size: 0n, inodes: 0n });
    expect(isNotFound(await err(sn().usage({ snapshotter: 'overlayfs', key: 'nope' })))).toBe(true);
  });

  it('events /snapshot/prepare, /snapshot/commit, /snapshot/remove in the request namespace; none for views', async () => {
    const c = h.client(SnapshotsService, 'evns');
    await c.prepare({ snapshotter: 'overlayfs', key: 'e1' });
    await c.commit({ snapshotter: 'overlayfs', key: 'e1', name: 'e1c' });
    await c.prepare({ snapshotter: 'overlayfs', key: 'e2', parent: 'e1c' });
    await c.view({ snapshotter: 'overlayfs', key: 'e3', parent: 'e1c' });
    await c.remove({ snapshotter: 'overlayfs', key: 'e2' });
    const ex = h.plugins.get<Exchange>(PluginType.Event, 'exchange');
    const got: string[] = [];
    for await (const env of ex.replay(undefined, ['topic~="^/snapshot/"'], false)) {
      expect(env.namespace).toBe('evns');
      const schema =
        env.topic === '/snapshot/prepare'
          ? SnapshotPrepareSchema
          : env.topic === '/snapshot/commit'
            ? SnapshotCommitSchema
            : SnapshotRemoveSchema;
      expect(env.event?.typeUrl).toBe(schema.typeName);
      const { $typeName: _, ...fields } = unpackAny(env.event!) as unknown as Record<string, unknown>;
      got.push(`${env.topic} ${JSON.stringify(fields)}`);
    }
    expect(got).toEqual([
      '/snapshot/prepare {"key":"e1","parent":""}',
      '/snapshot/commit {"key":"e1","name":"e1c"}',
      '/snapshot/prepare {"key":"e2","parent":"e1c"}',
      '/snapshot/remove {"key":"e2"}',
    ]);
  });

  it('under a lease: prepare and commit record snapshots/<snapshotter> resources; commit and remove drop the key', async () => {
    await h.client(LeasesService).create({ id: 'L' });
    const c = h.client(SnapshotsService, 'default', 'L');
    const res = async () =>
      (await h.client(LeasesService).listResources({ id: 'L' })).resources.map((r) => `${r.type} ${r.id}`);
    await c.prepare({ snapshotter: 'overlayfs', key: 'lk' });
    expect(await res()).toEqual(['snapshots/overlayfs lk']);
    await c.commit({ snapshotter: 'overlayfs', key: 'lk', name: 'lname' });
    expect(await res()).toEqual(['snapshots/overlayfs lname']);
    await c.view({ snapshotter: 'overlayfs', key: 'lv', parent: 'lname' });
    expect(await res()).toEqual(['snapshots/overlayfs lname', 'snapshots/overlayfs lv']);
    await sn().remove({ snapshotter: 'overlayfs', key: 'lv' });
    expect(await res()).toEqual(['snapshots/overlayfs lname']);
    // An unknown lease is NotFound and nothing is created.
    const e = await err(
      h.client(SnapshotsService, 'default', 'nolease').prepare({ snapshotter: 'overlayfs', key: 'x' }),
    );
    expect(isNotFound(e)).toBe(true);
    expect(isNotFound(await err(sn().stat({ snapshotter: 'overlayfs', key: 'x' })))).toBe(true);
  });

  it('update: labels and labels.<k> masks, empty value removes, other fields refused; list filters', async () => {
    await sn().prepare({ snapshotter: 'overlayfs', key: 'a', labels: { keep: '1', drop: '2' } });
    await sn().commit({ snapshotter: 'overlayfs', key: 'a', name: 'ca', labels: { team: 'x' } });
    await sn().view({ snapshotter: 'overlayfs', key: 'vb', parent: 'ca', labels: { team: 'y' } });
    await sn().prepare({ snapshotter: 'overlayfs', key: 'pc', parent: 'ca' });
    let { info } = await sn().update({
      snapshotter: 'overlayfs',
      info: { name: 'pc', labels: { a: '1', b: '2' } },
      updateMask: { paths: ['labels.a'] },
    });
    expect(info?.labels).toEqual({ a: '1' });
    ({ info } = await sn().update({ snapshotter: 'overlayfs', info: { name: 'pc', labels: { b: '2' } } }));
    expect(info?.labels).toEqual({ b: '2' });
    ({ info } = await sn().update({
      snapshotter: 'overlayfs',
      info: { name: 'pc', labels: {} },
      updateMask: { paths: ['labels.b'] },
    }));
    expect(info?.labels).toEqual({});
    expect(
      isInvalidArgument(
        await err(
          sn().update({
            snapshotter: 'overlayfs',
            info: { name: 'pc', parent: 'x' },
            updateMask: { paths: ['parent'] },
          }),
        ),
      ),
    ).toBe(true);
    expect(isInvalidArgument(await err(sn().update({ snapshotter: 'overlayfs', info: { name: '' } })))).toBe(
      true,
    );
    expect(isNotFound(await err(sn().update({ snapshotter: 'overlayfs', info: { name: 'zz' } })))).toBe(true);

    const names = async (...filters: string[]) => {
      const out: string[] = [];
      for await (const r of sn().list({ snapshotter: 'overlayfs', filters }))
        out.push(...r.info.map((i) => i.name));
      return out;
    };
    expect(await names('kind==committed')).toEqual(['ca']);
    expect(await names('kind==view')).toEqual(['vb']);
    expect(await names('kind==active')).toEqual(['pc']);
    expect(await names('parent==ca')).toEqual(['pc', 'vb']);
    expect(await names('labels.team==y')).toEqual(['vb']);
    expect(await names('name==ca', 'name==pc')).toEqual(['ca', 'pc']);
    expect(isInvalidArgument(await err(names('kind=="x')))).toBe(true);
  });

  it('List streams in batches of 100', async () => {
    for (let i = 0; i < 205; i++)
      await sn().prepare({ snapshotter: 'overlayfs', key: `k${String(i).padStart(3, '0')}` });
    const sizes: number[] = [];
    for await (const r of sn().list({ snapshotter: 'overlayfs' })) sizes.push(r.info.length);
    expect(sizes).toEqual([100, 100, 5]);
  });
});

describe('Snapshots (native)', () => {
  it('copies the parent with modes, owners, symlinks, hard links, device nodes, fifos and xattrs; mounts are binds', async () => {
    const { mounts } = await sn().prepare({ snapshotter: 'native', key: 'b' });
    expect(mounts).toEqual([
      expect.objectContaining({
        type: 'bind',
        source: join(snRoot('native'), '1', 'fs'),
        options: ['rw', 'rbind'],
      }),
    ]);
    const fs = mounts[0]!.source;
    await writeFile(join(fs, 'file'), 'data');
    await lchown(join(fs, 'file'), 1234, 5678);
    await chmod(join(fs, 'file'), 0o4751);
    await symlink('/nowhere/at/all', join(fs, 'dangling'));
    await link(join(fs, 'file'), join(fs, 'hard'));
    await mkdir(join(fs, 'dir'));
    await chmod(join(fs, 'dir'), 0o1777);
    await run('mknod', [join(fs, 'null'), 'c', '1', '3']);
    await run('mknod', [join(fs, 'fifo'), 'p']);
    lsetxattr(Buffer.from(join(fs, 'file')), 'user.k', Buffer.from('v'));
    await chmod(fs, 0o750);
    await sn().commit({ snapshotter: 'native', key: 'b', name: 'base' });

    const { mounts: m2 } = await sn().prepare({ snapshotter: 'native', key: 'c', parent: 'base' });
    const c = m2[0]!.source;
    expect(m2[0]).toMatchObject({
      type: 'bind',
      source: join(snRoot('native'), '2', 'fs'),
      options: ['rw', 'rbind'],
    });
    const f = statSync(join(c, 'file'));
    expect([f.mode & 0o7777, f.uid, f.gid]).toEqual([0o4751, 1234, 5678]);
    expect(statSync(join(c, 'hard')).ino).toBe(f.ino);
    expect(statSync(join(c, 'file')).ino).not.toBe(statSync(join(fs, 'file')).ino);
    expect(readlinkSync(join(c, 'dangling'))).toBe('/nowhere/at/all');
    expect(statSync(join(c, 'dir')).mode & 0o7777).toBe(0o1777);
    expect(lstatSync(join(c, 'null')).isCharacterDevice()).toBe(true);
    expect(lstatSync(join(c, 'null')).rdev).toBe(lstatSync(join(fs, 'null')).rdev);
    expect(lstatSync(join(c, 'fifo')).isFIFO()).toBe(true);
    expect(statSync(c).mode & 0o777).toBe(0o750);
    expect(Buffer.from(lgetxattr(Buffer.from(join(c, 'file')), 'user.k') ?? []).toString()).toBe('v');
    // The copy is the child's own: writes do not reach the parent.
    await writeFile(join(c, 'file'), 'changed');
    expect(readFileSync(join(fs, 'file'), 'utf8')).toBe('data');

    // A view binds the parent read-only, without a copy.
    const { mounts: v } = await sn().view({ snapshotter: 'native', key: 'v', parent: 'base' });
    expect(v).toEqual([expect.objectContaining({ type: 'bind', source: fs, options: ['ro', 'rbind'] })]);
    const at = await mountAt(v, 'v');
    expect(readFileSync(join(at, 'file'), 'utf8')).toBe('data');
    expect(await err(writeFile(join(at, 'x'), 'x'))).toMatchObject({ code: 'EROFS' });
    await unmount(at);
    expect(isFailedPrecondition(await err(sn().remove({ snapshotter: 'native', key: 'base' })))).toBe(true);
  });
});

describe('overlay support check', () => {
  it('where overlay cannot work, the overlayfs plugin fails with the reason and only native is there', async () => {
    // The kernel refuses an overlay's merged dir as another overlay's upper dir: a root there.
    const dir = await mkdtemp(join(h.root, 'nested-'));
    for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(dir, d));
    const root = join(dir, 'm');
    await run('mount', [
      '-t',
      'overlay',
      '-o',
      `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`,
      'overlay',
      root,
    ]);
    const plugins = await initPlugins(builtinPlugins({ root }), {
      config: { ...defaultConfig, root, stateDir: join(dir, 'state') },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      rootDir: root,
      stateDir: join(dir, 'state'),
    });
    try {
      const rec = plugins.records.find((r) => r.type === PluginType.Snapshot && r.id === 'overlayfs');
      expect(rec?.initError?.message).toMatch(/^overlayfs on .*: not supported: /);
      expect(plugins.get<LocalSnapshots>(PluginType.Service, 'snapshots-service').snapshotters()).toEqual([
        'native',
      ]);
      // Its probe left nothing behind.
      expect(await readdir(join(root, 'snapshots', 'overlayfs'))).toEqual([]);
    } finally {
      await plugins.close();
      await run('umount', [root]);
    }
  });
});
