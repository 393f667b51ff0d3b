import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, OCI_LINUX_RESOURCES_URL, OCI_SPEC_URL, packJson, unpackAny } from '@ctrd/api-proto';
import { ContainersService } from '@ctrd/api-proto/containers';
import { TasksService } from '@ctrd/api-proto/tasks';
import { EventHistoryService } from '@ctrd/api-proto/eventhistory';
import { TaskService } from '@ctrd/api-proto/shim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonProcess, startDaemon } from './helpers/daemon.js';
import {
  busyboxRootfs,
  cgroupLeftovers,
  ctrOk,
  ctrRun,
  isAlive,
  mountsUnder,
  parseTaskList,
  pidsMentioning,
  sweep,
} from './tasks-support.js';

// Tasks end to end: the real ctrd, the real ctrd-shim and runc, driven by the stock ctr 1.6.

let d: DaemonProcess;
let dir: string;
let rootfs: string;
let fifos: string;
const ns = `tk${randomBytes(4).toString('hex')}`;

const ctr = (...args: string[]) => ctrRun(d, ['-n', ns, ...args]);
const ok = (...args: string[]) => ctrOk(d, ['-n', ns, ...args]);
/** Processes other than the daemon running on its state dir: the shims. */
const shims = () => pidsMentioning(d.state).filter((p) => p !== d.pid);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrd-tk-'));
  rootfs = await busyboxRootfs(join(dir, 'rootfs'));
  fifos = join(dir, 'fifo');
  await mkdir(fifos);
  d = await startDaemon({ dir: join(dir, 'd') });
});

afterAll(async () => {
  await d?.stop('SIGKILL');
  await sweep(dir, join(dir, 'd', 'state'), [ns]);
  await rm(dir, { recursive: true, force: true });
});

describe('tasks through stock ctr', () => {
  it('ctr run --rm prints the output and exits with the container status', async () => {
    const r = await ctr(
      'run',
      '--rm',
      '--fifo-dir',
      fifos,
      '--rootfs',
      rootfs,
      'c1',
      '/bin/sh',
      '-c',
      'echo hi; exit 3',
    );
    expect(r.stdout).toBe('hi\n');
    expect(r.code).toBe(3);
    expect(await ok('c', 'ls', '-q')).toBe('');
  });

  it('run -d, ls, ps, exec, pause/resume, metrics, kill, rm', async () => {
    await ok('run', '-d', '--fifo-dir', fifos, '--rootfs', rootfs, 'c2', '/bin/sleep', '1000');
    const [row] = parseTaskList(await ok('t', 'ls'));
    expect(row).toMatchObject({ id: 'c2', status: 'RUNNING' });
    expect(row?.pid).toBeGreaterThan(1);
    expect(await ok('t', 'ps', 'c2')).toMatch(new RegExp(`^PID\\s+INFO\\n${row?.pid}\\s+-`));
    expect(await ok('t', 'exec', '--fifo-dir', fifos, '--exec-id', 'e1', 'c2', '/bin/echo', 'hi')).toBe(
      'hi\n',
    );
    await ok('t', 'pause', 'c2');
    expect(parseTaskList(await ok('t', 'ls'))[0]?.status).toBe('PAUSED');
    await ok('t', 'resume', 'c2');
    expect(parseTaskList(await ok('t', 'ls'))[0]?.status).toBe('RUNNING');
    const metrics = await ok('t', 'metrics', 'c2');
    expect(metrics).toMatch(/memory\.usage_in_bytes\s+\d+/);
    expect(metrics).toMatch(/pids\.current\s+1/);
    // Update (no `ctr t update` in 1.6): LinuxResources JSON through the API, seen in the cgroup.
    const tasks = createClient(TasksService, { address: d.address, namespace: ns });
    await tasks.update({
      containerId: 'c2',
      resources: packJson(OCI_LINUX_RESOURCES_URL, { memory: { limit: 100 * 1024 * 1024 } }),
    });
    const limit = await readFile(`/sys/fs/cgroup/memory/${ns}/c2/memory.limit_in_bytes`, 'utf8');
    expect(Number(limit)).toBe(100 * 1024 * 1024);
    // CRIU cannot work on this kernel: runc's error reaches the user as is.
    const cp = await ctr('t', 'checkpoint', 'c2');
    expect(cp.code).not.toBe(0);
    expect(cp.stderr).toMatch(/task c2: checkpoint: .*criu/);
    expect(parseTaskList(await ok('t', 'ls'))[0]?.status).toBe('RUNNING');
    const busy = await ctr('t', 'rm', 'c2');
    expect(busy.code).not.toBe(0);
    expect(busy.stderr).toMatch(/task must be stopped before deletion: running/);
    await ok('t', 'kill', '-s', '9', 'c2');
    await expect.poll(async () => parseTaskList(await ok('t', 'ls'))[0]?.status).toBe('STOPPED');
    const rm1 = await ctr('t', 'rm', 'c2');
    expect(rm1.code).toBe(0);
    expect(rm1.stderr).toMatch(/exit with non-zero exit code 137/);
    await ok('c', 'rm', 'c2');
    expect(parseTaskList(await ok('t', 'ls'))).toEqual([]);
  });

  it('rootfs mounts from the request are mounted at bundle/rootfs and undone on delete or failure', async () => {
    await ok('c', 'create', '--rootfs', rootfs, 'c4', '/bin/sleep', '1000');
    await ok('c', 'create', '--rootfs', rootfs, 'c5', '/bin/true');
    const containers = createClient(ContainersService, { address: d.address, namespace: ns });
    const tasks = createClient(TasksService, { address: d.address, namespace: ns });
    for (const id of ['c4', 'c5']) {
      const { container } = await containers.get({ id });
      const spec = JSON.parse(new TextDecoder().decode(container!.spec!.value));
      spec.root.path = 'rootfs';
      await containers.update({
        container: { ...container!, spec: packJson(OCI_SPEC_URL, spec) },
        updateMask: { paths: ['spec'] },
      });
    }
    const bundle = join(d.state, 'bundles', ns, 'c4');
    const { pid } = await tasks.create({
      containerId: 'c4',
      rootfs: [{ type: 'bind', source: rootfs, target: '', options: ['rbind', 'ro'] }],
    });
    await tasks.start({ containerId: 'c4' });
    expect(mountsUnder(join(bundle, 'rootfs'))).not.toEqual([]);
    expect(parseTaskList(await ok('t', 'ls'))).toEqual([{ id: 'c4', pid, status: 'RUNNING' }]);
    // The config.json in the bundle is the stored spec, byte for byte.
    const { container } = await containers.get({ id: 'c4' });
    expect(await readFile(join(bundle, 'config.json'))).toEqual(Buffer.from(container!.spec!.value));

    const bad = await tasks
      .create({
        containerId: 'c5',
        rootfs: [{ type: 'bind', source: join(dir, 'missing'), options: ['rbind'] }],
      })
      .catch((e: Error) => e);
    expect(bad).toBeInstanceOf(Error);
    expect(existsSync(join(d.state, 'bundles', ns, 'c5'))).toBe(false);
    expect(parseTaskList(await ok('t', 'ls')).map((t) => t.id)).toEqual(['c4']);

    await tasks.kill({ containerId: 'c4', signal: 9 });
    expect((await tasks.wait({ containerId: 'c4' })).exitStatus).toBe(137);
    expect((await tasks.delete({ containerId: 'c4' })).exitStatus).toBe(137);
    expect(mountsUnder(dir)).toEqual([]);
    expect(existsSync(bundle)).toBe(false);
    await ok('c', 'rm', 'c4', 'c5');
  });

  it('a shim that dies while the daemon runs has its tasks settled', async () => {
    await ok(
      'run',
      '-d',
      '--fifo-dir',
      fifos,
      '--label',
      'io.ctrd/shim=own',
      '--rootfs',
      rootfs,
      'c3',
      '/bin/sleep',
      '1000',
    );
    const [task] = parseTaskList(await ok('t', 'ls'));
    const address = await readFile(join(d.state, 'bundles', ns, 'c3', 'address'), 'utf8');
    const shimPid = (await createClient(TaskService, { address, namespace: ns }).connect({ id: 'c3' }))
      .shimPid;
    process.kill(shimPid, 'SIGKILL');
    // Found by the daemon's liveness watch (every 2 s), then settled with `ctrd-shim delete`.
    const history = createClient(EventHistoryService, { address: d.address, namespace: ns });
    const events = async (): Promise<string[]> => {
      const seen: string[] = [];
      for await (const env of history.replay({ filters: [`namespace==${ns},event.container_id==c3`] })) {
        const ev = unpackAny(env.event) as { exitStatus?: number } | undefined;
        seen.push(`${env.topic} ${ev?.exitStatus ?? ''}`);
      }
      return seen;
    };
    await expect.poll(events).toContain('/tasks/delete 137');
    const seen = await events();
    expect(parseTaskList(await ok('t', 'ls'))).toEqual([]);
    expect(isAlive(task!.pid)).toBe(false);
    expect(seen.slice(-2)).toEqual(['/tasks/exit 137', '/tasks/delete 137']);
    await ok('c', 'rm', 'c3');
  });

  it('leaves no bundles, shims, mounts or cgroups behind', async () => {
    // The last task's shim is shut down in the background after its Delete.
    await expect.poll(shims).toEqual([]);
    expect(await readdir(join(d.state, 'bundles', ns))).toEqual([]);
    expect(mountsUnder(dir)).toEqual([]);
    expect(cgroupLeftovers([ns])).toEqual([]);
    expect(existsSync(join(d.state, 'runc', ns)) ? await readdir(join(d.state, 'runc', ns)) : []).toEqual([]);
  });
});
