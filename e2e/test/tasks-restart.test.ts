import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, unpackAny } from '@ctrd/api-proto';
import { EventHistoryService } from '@ctrd/api-proto/eventhistory';
import { TaskService } from '@ctrd/api-proto/shim';
import { TasksService } from '@ctrd/api-proto/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemon } from './helpers/daemon.js';
import {
  busyboxRootfs,
  CTR,
  cgroupLeftovers,
  ctrOk,
  ctrRun,
  isAlive,
  mountsUnder,
  parseTaskList,
  pidsMentioning,
  sweep,
  zombieChildrenOf,
} from './tasks-support.js';

// Restart recovery: SIGKILL the daemon with 20 containers in namespace A and 3 in B (one shim per
// namespace); while it is down five of A's containers exit with distinct codes and B's shim is
// killed; the restarted daemon takes A's live shim back and settles B's tasks, as containerd does.

let d: DaemonProcess;
let dir: string;
let rootfs: string;
let fifos: string;
const hex = randomBytes(3).toString('hex');
const A = `ra${hex}`;
const B = `rb${hex}`;
const A_IDS = Array.from({ length: 20 }, (_, i) => `a${i + 1}`);
/** a1..a5 exit with 11..15 once told to, while the daemon is down. */
const EXITING = A_IDS.slice(0, 5);
const exitCode = (id: string) => 10 + Number(id.slice(1));
/** Sleeping until killed; a20 is the attached one. */
const SLEEPING = A_IDS.slice(5, 19);
const B_IDS = ['b1', 'b2', 'b3'];

const ok = (ns: string, ...args: string[]) => ctrOk(d, ['-n', ns, ...args]);
const shims = () => pidsMentioning(d.state).filter((p) => p !== d.pid);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function shimPidOf(ns: string, id: string): Promise<number> {
  const address = await readFile(join(d.state, 'bundles', ns, id, 'address'), 'utf8');
  const shim = createClient(TaskService, { address, namespace: ns, timeoutMs: 5000 });
  return (await shim.connect({ id })).shimPid;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrd-rs-'));
  rootfs = await busyboxRootfs(join(dir, 'rootfs'));
  fifos = join(dir, 'fifo');
  await mkdir(fifos);
  d = await startDaemon({ dir: join(dir, 'd') });
});

afterAll(async () => {
  await d?.stop('SIGKILL');
  await sweep(dir, join(dir, 'd', 'state'), [A, B]);
  await rm(dir, { recursive: true, force: true });
});

describe('daemon restart', () => {
  it('keeps live tasks, reports exits that happened while down, settles tasks of dead shims', async () => {
    const run = (ns: string, id: string, extra: string[], ...cmd: string[]) =>
      ok(ns, 'run', '-d', '--fifo-dir', fifos, ...extra, '--rootfs', rootfs, id, ...cmd);
    for (const id of EXITING) {
      const script = `while [ ! -e /tmp/go-${id} ]; do sleep 0.1; done; exit ${exitCode(id)}`;
      await run(A, id, [], '/bin/sh', '-c', script);
    }
    for (const id of SLEEPING) await run(A, id, [], '/bin/sleep', '1000');
    // a20 runs attached: the stock ctr waits on it with Tasks.Wait across the restart.
    const attached = spawn(
      CTR,
      [
        '--address',
        d.socket,
        '-n',
        A,
        'run',
        '--fifo-dir',
        fifos,
        '--rootfs',
        rootfs,
        'a20',
        '/bin/sleep',
        '1000',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let attachedErr = '';
    attached.stderr.on('data', (b: Buffer) => {
      attachedErr += b.toString();
    });
    const attachedExit = new Promise<number | null>((r) => attached.once('exit', (code) => r(code)));
    await expect.poll(async () => parseTaskList(await ok(A, 't', 'ls')).length).toBeGreaterThanOrEqual(20);
    for (const id of B_IDS) await run(B, id, [], '/bin/sleep', '1000');

    // ctr lists ids as strings sort (a1, a10, a11, ...): compare in numeric order.
    const byId = (a: string, b: string) => Number(a.slice(1)) - Number(b.slice(1));
    const before = parseTaskList(await ok(A, 't', 'ls')).sort((x, y) => byId(x.id, y.id));
    expect(before.map((t) => [t.id, t.status])).toEqual(A_IDS.map((id) => [id, 'RUNNING']));
    const pidOf = new Map(before.map((t) => [t.id, t.pid]));
    const bTasks = parseTaskList(await ok(B, 't', 'ls'));
    // A's twenty tasks share one shim; B's three share another.
    const shimIds = async (ns: string, ids: string[]) =>
      Promise.all(ids.map((id) => readFile(join(d.state, 'bundles', ns, id, 'shim-id'), 'utf8')));
    const aShimIds = new Set(await shimIds(A, A_IDS));
    const bShimIds = new Set(await shimIds(B, B_IDS));
    expect(aShimIds.size).toBe(1);
    expect(bShimIds.size).toBe(1);
    expect([...aShimIds][0]).not.toBe([...bShimIds][0]);
    const aShim = await shimPidOf(A, 'a1');
    const bShims = [...new Set(await Promise.all(B_IDS.map((id) => shimPidOf(B, id))))];
    expect(bShims).toHaveLength(1);

    // A Wait open across the restart ends with the connection: Unavailable.
    const tasks = createClient(TasksService, { address: d.address, namespace: A });
    const openWait = tasks.wait({ containerId: 'a6' }).then(
      () => 'returned',
      (e) => e,
    );
    await sleep(200);

    expect((await d.stop('SIGKILL')).signal).toBe('SIGKILL');
    // The stock ctr (grpc-go) sees the connection drop as Unavailable; our Connect client sees its
    // stream cancelled with the session.
    expect(await attachedExit).not.toBe(0);
    expect(attachedErr).toMatch(/Unavailable/);
    expect(await openWait).toBeInstanceOf(Error);

    for (const id of EXITING) await writeFile(join(rootfs, 'tmp', `go-${id}`), '');
    const exitingAlive = () => EXITING.filter((id) => isAlive(pidOf.get(id)!));
    await expect.poll(exitingAlive).toEqual([]);
    for (const pid of bShims) process.kill(pid, 'SIGKILL');
    await expect.poll(() => bShims.some(isAlive)).toBe(false);

    d = await startDaemon({ dir: d.dir });

    const after = parseTaskList(await ok(A, 't', 'ls'));
    expect(after.map((t) => [t.id, t.status]).sort((x, y) => byId(x[0]!, y[0]!))).toEqual([
      ...EXITING.map((id) => [id, 'STOPPED']),
      ...A_IDS.slice(5).map((id) => [id, 'RUNNING']),
    ]);
    for (const id of A_IDS.slice(5)) expect(after.find((t) => t.id === id)?.pid).toBe(pidOf.get(id));
    const tasks2 = createClient(TasksService, { address: d.address, namespace: A });
    for (const id of EXITING) expect((await tasks2.wait({ containerId: id })).exitStatus).toBe(exitCode(id));
    expect(await shimPidOf(A, 'a6')).toBe(aShim);
    // The exits that happened while the daemon was down were queued by A's shim and delivered on its
    // return: every one is in the event history with its own status.
    const aHistory = createClient(EventHistoryService, { address: d.address, namespace: A });
    const exits = async () => {
      const seen = new Map<string, number>();
      for await (const env of aHistory.replay({ filters: [`namespace==${A},topic=="/tasks/exit"`] })) {
        const ev = unpackAny(env.event) as { containerId?: string; exitStatus?: number } | undefined;
        if (ev?.containerId) seen.set(ev.containerId, ev.exitStatus ?? -1);
      }
      return Object.fromEntries(seen);
    };
    await expect.poll(exits).toEqual(Object.fromEntries(EXITING.map((id) => [id, exitCode(id)])));
    expect(zombieChildrenOf(aShim)).toEqual([]);

    // B's tasks were settled: gone, their processes killed, /tasks/exit and /tasks/delete sent.
    expect(parseTaskList(await ok(B, 't', 'ls'))).toEqual([]);
    for (const t of bTasks) expect(isAlive(t.pid)).toBe(false);
    expect(await readdir(join(d.state, 'bundles', B))).toEqual([]);
    const history = createClient(EventHistoryService, { address: d.address, namespace: B });
    const events: [string, string, number][] = [];
    for await (const env of history.replay({ filters: [`namespace==${B}`] })) {
      const ev = unpackAny(env.event) as { containerId?: string; exitStatus?: number } | undefined;
      events.push([env.topic, ev?.containerId ?? '', ev?.exitStatus ?? -1]);
    }
    expect(events.map((e) => `${e[0]} ${e[1]}`).sort()).toEqual([
      ...B_IDS.map((id) => `/tasks/delete ${id}`),
      ...B_IDS.map((id) => `/tasks/exit ${id}`),
    ]);
    // Alive when their shim died: killed by the settling runc delete --force.
    for (const e of events) expect(e[2]).toBe(137);
    // A `ctr events` subscriber sees the daemon's later events live.
    const r1 = await ctrRun(d, ['-n', A, 't', 'rm', 'a1']);
    expect(r1.stderr).toMatch(/exit with non-zero exit code 11/);

    // Delete everything; nothing may be left behind.
    for (const id of A_IDS.slice(5)) await ok(A, 't', 'kill', '-s', '9', id);
    for (const id of A_IDS.slice(1)) {
      await expect
        .poll(async () => parseTaskList(await ok(A, 't', 'ls')).find((x) => x.id === id)?.status)
        .toBe('STOPPED');
      await ok(A, 't', 'rm', id);
    }
    for (const id of A_IDS) await ok(A, 'c', 'rm', id);
    for (const id of B_IDS) await ok(B, 'c', 'rm', id);
    await expect.poll(shims).toEqual([]);
    expect(isAlive(aShim)).toBe(false);
    expect(await readdir(join(d.state, 'bundles', A))).toEqual([]);
    expect(mountsUnder(dir)).toEqual([]);
    expect(cgroupLeftovers([A, B])).toEqual([]);
    for (const ns of [A, B]) {
      const runcRoot = join(d.state, 'runc', ns);
      expect(existsSync(runcRoot) ? await readdir(runcRoot) : []).toEqual([]);
    }
  }, 180_000);
});
