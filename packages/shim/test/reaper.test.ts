import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitStatusOf, parseStat, Reaper } from '../src/reaper.js';
import { runcSys } from '../src/runc-runtime.js';

// Real processes: this test process becomes a child subreaper, so the grandchildren that `sh` leaves
// behind are reparented to it, the way container processes are reparented to the shim.

const run = promisify(execFile);
let reaper: Reaper;

function zombieChildren(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = parseStat(readFileSync(`/proc/${name}/stat`, 'latin1'));
      if (s?.state === 'Z' && s.ppid === process.pid) out.push(Number(name));
    } catch {}
  }
  return out;
}

/** Resolves once `pid` has exited and been reaped (no /proc entry, not even a zombie's). */
const gone = (pid: number) => expect.poll(() => existsSync(`/proc/${pid}`)).toBe(false);

/** Runs `script` in sh, which prints the pid of a background job and exits, orphaning the job to us. */
async function orphan(script: string): Promise<number> {
  const { stdout } = await run('sh', ['-c', `(${script}) </dev/null >/dev/null 2>&1 & echo $!`]);
  return Number(stdout.trim());
}

beforeAll(() => {
  runcSys().setSubreaper();
  reaper = new Reaper({ waitPid: runcSys().waitPid, intervalMs: 200, sweepThrottleMs: 50 });
  reaper.start();
});
afterAll(() => {
  reaper.stop();
});

describe('reaper', () => {
  it('reports the exact exit code of an orphaned process it watches', async () => {
    const pid = await orphan('sleep 0.3; exit 5');
    const info = await reaper.watch(pid);
    expect(info).toMatchObject({ pid, exitStatus: 5 });
    expect(info.exitedAt).toBeInstanceOf(Date);
  });

  it('reports a signal as 128+n', async () => {
    const pid = await orphan('exec sleep 100');
    const exited = reaper.watch(pid);
    process.kill(pid, 'SIGKILL');
    expect((await exited).exitStatus).toBe(137);
    const pid2 = await orphan('exec sleep 100');
    const exited2 = reaper.watch(pid2);
    process.kill(pid2, 'SIGTERM');
    expect((await exited2).exitStatus).toBe(143);
  });

  it('keeps the status of a process that exited before it was watched', async () => {
    // It outlives sh (which would otherwise reap it itself), then exits before anyone watches it.
    const pid = await orphan('sleep 0.1; exit 4');
    await gone(pid);
    expect(zombieChildren()).not.toContain(pid);
    expect((await reaper.watch(pid)).exitStatus).toBe(4);
  });

  it('reaps unwatched orphans so no zombie is left', async () => {
    const before = reaper.orphansReaped;
    for (let i = 0; i < 5; i++) await orphan('sleep 0.1');
    await expect.poll(() => reaper.orphansReaped).toBeGreaterThanOrEqual(before + 5);
    expect(zombieChildren()).toEqual([]);
  });

  it('never steals the exit of a child Node spawned itself', async () => {
    const results = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) =>
          new Promise<number | null>((resolve) => {
            const c = spawn('sh', ['-c', `sleep 0.${i + 1}; exit ${i + 10}`]);
            c.on('exit', (code) => resolve(code));
          }),
      ),
    );
    expect(results).toEqual([10, 11, 12, 13, 14, 15, 16, 17]);
  });

  it('many watchers of many processes all get their own status', async () => {
    const pids = await Promise.all(Array.from({ length: 10 }, (_, i) => orphan(`sleep 0.2; exit ${i + 20}`)));
    const infos = await Promise.all(pids.map((p) => reaper.watch(p)));
    expect(infos.map((i) => i.exitStatus)).toEqual(Array.from({ length: 10 }, (_, i) => i + 20));
    expect(zombieChildren()).toEqual([]);
  });

  it('without the kernel lists of children, finds exits by watched pid and /proc sweeps', async () => {
    reaper.stop();
    const fallback = new Reaper({
      waitPid: runcSys().waitPid,
      intervalMs: 200,
      sweepThrottleMs: 50,
      childrenLists: false,
    });
    fallback.start();
    try {
      const pids = await Promise.all(
        Array.from({ length: 4 }, (_, i) => orphan(`sleep 0.2; exit ${i + 30}`)),
      );
      const infos = await Promise.all(pids.map((p) => fallback.watch(p)));
      expect(infos.map((i) => i.exitStatus)).toEqual([30, 31, 32, 33]);
      const before = fallback.orphansReaped;
      for (let i = 0; i < 3; i++) await orphan('sleep 0.1');
      await expect.poll(() => fallback.orphansReaped).toBeGreaterThanOrEqual(before + 3);
      expect(zombieChildren()).toEqual([]);
    } finally {
      fallback.stop();
      reaper.start();
    }
  });

  it('with waitid naming the exited child, reaps per exit and still leaves Node its children', async () => {
    reaper.stop();
    const sys = runcSys();
    let peeks = 0;
    const peeking = new Reaper({
      waitPid: sys.waitPid,
      peekExited: () => {
        peeks++;
        return sys.peekExited();
      },
      intervalMs: 60_000,
      sweepThrottleMs: 50,
    });
    peeking.start();
    try {
      const pids = await Promise.all(
        Array.from({ length: 6 }, (_, i) => orphan(`sleep 0.2; exit ${i + 40}`)),
      );
      // One already gone before it is watched (it outlives sh, which would otherwise reap it
      // itself, then exits): its status is kept for the watcher.
      const early = await orphan('sleep 0.2; exit 47');
      await gone(early);
      const infos = await Promise.all([...pids, early].map((p) => peeking.watch(p)));
      expect(infos.map((i) => i.exitStatus)).toEqual([40, 41, 42, 43, 44, 45, 47]);
      const before = peeking.orphansReaped;
      for (let i = 0; i < 3; i++) await orphan('sleep 0.1');
      const own = await new Promise<number | null>((resolve) => {
        const c = spawn('sh', ['-c', 'sleep 0.15; exit 9']);
        c.on('exit', (code) => resolve(code));
      });
      expect(own).toBe(9);
      // No safety timer ran (60 s, more than the poll waits): SIGCHLD and the peek did it all.
      await expect.poll(() => peeking.orphansReaped).toBeGreaterThanOrEqual(before + 3);
      expect(peeks).toBeGreaterThan(0);
      expect(zombieChildren()).toEqual([]);
    } finally {
      peeking.stop();
      reaper.start();
    }
  });

  it('maps wait statuses like containerd', () => {
    expect(exitStatusOf(3, null)).toBe(3);
    expect(exitStatusOf(null, 9)).toBe(137);
    expect(parseStat('12 (a) b) c) Z 34 1 1')).toEqual({ state: 'Z', ppid: 34 });
  });
});
