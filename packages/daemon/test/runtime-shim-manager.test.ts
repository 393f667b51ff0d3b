import { describe, expect, it } from 'vitest';
import { ownShimId, ShimManager, sharedShimId } from '../src/runtime/shim-manager.js';
import { FakeLauncher } from './runtime-fake-shim.js';

function manager(cap = 3) {
  const launcher = new FakeLauncher();
  const dead: string[] = [];
  const m = new ShimManager({ launcher, cap, watchMs: 0, onDead: (s) => dead.push(s.id) });
  return { launcher, m, dead };
}

describe('ShimManager', () => {
  it('groups tasks of a namespace on one shim up to the cap, then starts the next', async () => {
    const { launcher, m } = manager(3);
    const shims = [];
    for (let i = 0; i < 7; i++) shims.push(await m.acquire('a', `t${i}`, false));
    expect(shims.map((s) => s.id)).toEqual([
      ...Array(3).fill(sharedShimId('a', 1)),
      ...Array(3).fill(sharedShimId('a', 2)),
      sharedShimId('a', 3),
    ]);
    expect(launcher.starts).toEqual([sharedShimId('a', 1), sharedShimId('a', 2), sharedShimId('a', 3)]);
    const other = await m.acquire('b', 't0', false);
    expect(other.id).toBe(sharedShimId('b', 1));
    expect(other.id).not.toBe(shims[0]?.id);
    expect(m.shimOf('a', 't4')?.id).toBe(sharedShimId('a', 2));
    expect(
      m
        .tasks('a')
        .map((t) => t.id)
        .sort(),
    ).toEqual(['t0', 't1', 't2', 't3', 't4', 't5', 't6']);
    m.close();
  });

  it('concurrent acquires share one launch and respect the cap', async () => {
    const { launcher, m } = manager(2);
    const got = await Promise.all(['x', 'y', 'z'].map((id) => m.acquire('a', id, false)));
    expect(got.map((s) => s.id)).toEqual([sharedShimId('a', 1), sharedShimId('a', 1), sharedShimId('a', 2)]);
    expect(launcher.starts.length).toBe(2);
    m.close();
  });

  it('a container asking for its own shim gets one, apart from the shared group', async () => {
    const { launcher, m } = manager(10);
    const shared = await m.acquire('a', 'c1', false);
    const own = await m.acquire('a', 'c2', true);
    expect(own.id).toBe(ownShimId('a', 'c2'));
    expect(own.id).not.toBe(shared.id);
    expect(own.own).toBe(true);
    expect([...own.tasks]).toEqual(['c2']);
    expect(launcher.starts).toEqual([shared.id, own.id]);
    // A shim per namespace too: the same container id elsewhere has another own shim.
    expect((await m.acquire('b', 'c2', true)).id).not.toBe(own.id);
    m.close();
  });

  it('the last task released shuts the shim down; the slot of a released task is reused', async () => {
    const { launcher, m } = manager(2);
    const s = await m.acquire('a', 't1', false);
    await m.acquire('a', 't2', false);
    await m.release(s, 't1');
    expect(launcher.shimAt('a', s.id)?.shutdownCalls).toBe(0);
    expect((await m.acquire('a', 't3', false)).id).toBe(s.id);
    await m.release(s, 't2');
    await m.release(s, 't3');
    expect(launcher.shimAt('a', s.id)).toBeUndefined();
    expect(m.list()).toEqual([]);
    // A new task gets a new shim process under the same id.
    expect((await m.acquire('a', 't4', false)).id).toBe(s.id);
    expect(launcher.starts).toEqual([s.id, s.id]);
    m.close();
  });

  it('with a linger, an emptied shared shim waits for the next task, then stops', async () => {
    const launcher = new FakeLauncher();
    const m = new ShimManager({ launcher, cap: 5, watchMs: 0, lingerMs: 150 });
    const s = await m.acquire('a', 't1', false);
    await m.release(s, 't1');
    // Still there: the next task reuses it, with no second start.
    expect(launcher.shimAt('a', s.id)).toBeDefined();
    expect((await m.acquire('a', 't2', false)).id).toBe(s.id);
    expect(launcher.starts).toEqual([s.id]);
    // A task arriving cancels the stop: well past the linger, the shim still serves.
    await new Promise((r) => setTimeout(r, 250));
    expect(launcher.shimAt('a', s.id)?.shutdownCalls).toBe(0);
    await m.release(s, 't2');
    await expect.poll(() => launcher.shimAt('a', s.id)).toBeUndefined();
    expect(m.list()).toEqual([]);
    // A container's own shim never lingers.
    const own = await m.acquire('a', 'c', true);
    await m.release(own, 'c');
    expect(launcher.shimAt('a', own.id)).toBeUndefined();
    m.close();
  });

  it('stopIdle stops the shims waiting for a task; stopStray stops an empty shim no one tracks', async () => {
    const launcher = new FakeLauncher();
    const m = new ShimManager({ launcher, cap: 5, watchMs: 0, lingerMs: 60_000 });
    const s = await m.acquire('a', 't1', false);
    const busy = await m.acquire('b', 't1', false);
    await m.release(s, 't1');
    await m.stopIdle();
    expect(launcher.shimAt('a', s.id)).toBeUndefined();
    expect(launcher.shimAt('b', busy.id)).toBeDefined();
    const stray = await launcher.start('c', 'stray');
    await m.stopStray(stray);
    expect(launcher.shimAt('c', 'stray')).toBeUndefined();
    m.close();
  });

  it('a failed launch gives the slot back', async () => {
    const launcher = new FakeLauncher();
    launcher.start = async () => {
      throw new Error('no shim');
    };
    const m = new ShimManager({ launcher, cap: 5, watchMs: 0 });
    await expect(m.acquire('a', 't1', false)).rejects.toThrow('no shim');
    expect(m.list()).toEqual([]);
    m.close();
  });

  it('adopts a live shim at restart, refuses a dead one, and reports a shim that dies', async () => {
    const { launcher, m, dead } = manager(5);
    const address = await launcher.start('a', 'shared-1-x');
    const s = await m.adopt('a', 'shared-1-x', address, ['t1', 't2']);
    expect(s && [...s.tasks]).toEqual(['t1', 't2']);
    expect(await m.adopt('a', 'gone', 'unix:///fake/a/gone', ['t3'])).toBeUndefined();
    expect(await m.check(s!)).toBe(true);
    launcher.shimAt('a', 'shared-1-x')!.dead = true;
    expect(await m.check(s!)).toBe(false);
    expect(dead).toEqual(['shared-1-x']);
    expect(m.shimOf('a', 't1')).toBeUndefined();
    m.close();
  });
});
