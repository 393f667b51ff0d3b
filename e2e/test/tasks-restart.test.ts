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

// Restart recovery: SIGKILL the daemon with containers in two namespaces; while it is down two
// containers exit and the shims of the other namespace are killed; the restarted daemon takes the
// live shim back and settles the tasks of the dead ones, as containerd does.

let d: DaemonProcess;
let dir: string;
let rootfs: string;
let fifos: string;
const hex = randomBytes(3).toString('hex');
const A = `ra${hex}`;
const B = `rb${hex}`;
const A_IDS = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'];
const B_IDS = ['b1', 'b2'];

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
}, 30_000);

afterAll(async () => {
  await d?.stop('SIGKILL');
  await sweep(dir, join(dir, 'd', 'state'), [A, B]);
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('daemon restart', () => {
  it('keeps live tasks, reports exits that happened while down, settles tasks of dead shims', async () => {
    const run = (ns: string, id: string, extra: string[], ...cmd: string[]) =>
      ok(ns, 'run', '-d', '--fifo-dir', fifos, ...extra, '--rootfs', rootfs, id, ...cmd);
    await run(A, 'a1', [], '/bin/sh', '-c', 'while [ ! -e /tmp/go-a1 ]; do sleep 0.1; done; exit 7');
    await run(A, 'a2', [], '/bin/sh', '-c', 'while [ ! -e /tmp/go-a2 ]; do sleep 0.1; done; exit 9');
    for (const id of A_IDS.slice(2, 5)) await run(A, id, [], '/bin/sleep', '1000');
    // a6 runs attached: the stock ctr waits on it with Tasks.Wait across the restart.
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
        'a6',
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
    for (let i = 0; i < 100 && parseTaskList(await ok(A, 't', 'ls')).length < 6; i++) await sleep(100);
    for (const id of B_IDS) await run(B, id, ['--label', 'io.ctrd/shim=own'], '/bin/sleep', '1000');

    const before = parseTaskList(await ok(A, 't', 'ls'));
    expect(before.map((t) => [t.id, t.status])).toEqual(A_IDS.map((id) => [id, 'RUNNING']));
    const pidOf = new Map(before.map((t) => [t.id, t.pid]));
    const bTasks = parseTaskList(await ok(B, 't', 'ls'));
    // A's six tasks share one shim; each of B's has its own.
    const shimIds = async (ns: string, ids: string[]) =>
      Promise.all(ids.map((id) => readFile(join(d.state, 'bundles', ns, id, 'shim-id'), 'utf8')));
    expect(new Set(await shimIds(A, A_IDS)).size).toBe(1);
    const bShimIds = await shimIds(B, B_IDS);
    expect(new Set([...bShimIds, ...(await shimIds(A, ['a1']))]).size).toBe(3);
    const aShim = await shimPidOf(A, 'a1');
    const bShims = await Promise.all(B_IDS.map((id) => shimPidOf(B, id)));
    expect(new Set(bShims).size).toBe(2);

    // A Wait open across the restart ends with the connection: Unavailable.
    const tasks = createClient(TasksService, { address: d.address, namespace: A });
    const openWait = tasks.wait({ containerId: 'a3' }).then(
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

    await writeFile(join(rootfs, 'tmp', 'go-a1'), '');
    await writeFile(join(rootfs, 'tmp', 'go-a2'), '');
    for (let i = 0; i < 100 && (isAlive(pidOf.get('a1')!) || isAlive(pidOf.get('a2')!)); i++)
      await sleep(100);
    expect(isAlive(pidOf.get('a1')!)).toBe(false);
    expect(isAlive(pidOf.get('a2')!)).toBe(false);
    for (const pid of bShims) process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 50 && bShims.some(isAlive); i++) await sleep(100);
    expect(bShims.some(isAlive)).toBe(false);

    d = await startDaemon({ dir: d.dir });

    const after = parseTaskList(await ok(A, 't', 'ls'));
    expect(after.map((t) => [t.id, t.status])).toEqual([
      ['a1', 'STOPPED'],
      ['a2', 'STOPPED'],
      ...A_IDS.slice(2).map((id) => [id, 'RUNNING']),
    ]);
    expect(after.find((t) => t.id === 'a3')?.pid).toBe(pidOf.get('a3'));
    const tasks2 = createClient(TasksService, { address: d.address, namespace: A });
    expect((await tasks2.wait({ containerId: 'a1' })).exitStatus).toBe(7);
    expect((await tasks2.wait({ containerId: 'a2' })).exitStatus).toBe(9);
    expect(await shimPidOf(A, 'a3')).toBe(aShim);
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
      '/tasks/delete b1',
      '/tasks/delete b2',
      '/tasks/exit b1',
      '/tasks/exit b2',
    ]);
    // Alive when their shim died: killed by the settling runc delete --force.
    for (const e of events) expect(e[2]).toBe(137);
    // A `ctr events` subscriber sees the daemon's later events live.
    const r1 = await ctrRun(d, ['-n', A, 't', 'rm', 'a1']);
    expect(r1.stderr).toMatch(/exit with non-zero exit code 7/);

    // Delete everything; nothing may be left behind.
    for (const id of A_IDS.slice(2)) await ok(A, 't', 'kill', '-s', '9', id);
    for (const id of A_IDS.slice(1)) {
      for (let i = 0; i < 50; i++) {
        const t = parseTaskList(await ok(A, 't', 'ls')).find((x) => x.id === id);
        if (t?.status === 'STOPPED') break;
        await sleep(100);
      }
      await ok(A, 't', 'rm', id);
    }
    for (const id of A_IDS) await ok(A, 'c', 'rm', id);
    for (const id of B_IDS) await ok(B, 'c', 'rm', id);
    for (let i = 0; i < 50 && shims().length > 0; i++) await sleep(100);
    expect(shims()).toEqual([]);
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
