import { execFile, spawn } from 'node:child_process';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { create, fromBinary } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import type { Server } from '@ctrd/api-proto';
import {
  createClient,
  createServer,
  isFailedPrecondition,
  isNotFound,
  OCI_PROCESS_URL,
  packJson,
  service,
  typeNameFromUrl,
  unpackAny,
} from '@ctrd/api-proto';
import { MetricsSchema as CgroupsV1Metrics } from '@ctrd/api-proto/cgroups/v1';
import type { Envelope } from '@ctrd/api-proto/events';
import { EventsService } from '@ctrd/api-proto/events';
import { TaskExitSchema } from '@ctrd/api-proto/event-types';
import { ProcessDetailsSchema } from '@ctrd/api-proto/runc-options';
import { TaskService } from '@ctrd/api-proto/shim';
import { Status } from '@ctrd/api-proto/task-types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxRootfs } from './helpers/rootfs.js';
import { mountsUnder } from './tasks-support.js';

// A real ctrd-shim process running real busybox containers through real runc, driven through its
// Task API, sending events to a fake daemon (an Events server on a temp socket). Everything lives in
// a private temp dir with a private runc root; afterAll removes every container, mount and process.

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const SHIM_BIN = join(dirname(require.resolve('@ctrd/shim/package.json')), 'dist', 'bundle', 'bin.js');
const NS = 'shimtest';

let dir: string;
let stateDir: string;
let runcRoot: string;
let rootfs: string;
let daemonSock: string;
let daemon: Server | undefined;
const envelopes: Envelope[] = [];
let shimAddress: string;
let shimPid = 0;
let tasks: Client<typeof TaskService>;
const created: string[] = [];

async function startDaemon(): Promise<void> {
  daemon = await createServer({
    socketPath: daemonSock,
    services: [
      service(EventsService, {
        forward: (req) => {
          if (req.envelope) envelopes.push(req.envelope);
          return {};
        },
      }),
    ],
  });
}

interface OciSpec {
  process: { args: string[]; terminal: boolean };
  linux: { cgroupsPath?: string; resources?: unknown };
}

/** A bundle whose rootfs the shim bind-mounts from the shared busybox tree at Create. */
async function bundle(id: string, args: string[], extra?: (spec: OciSpec) => void): Promise<string> {
  const b = join(dir, 'bundles', id);
  await mkdir(b, { recursive: true, mode: 0o700 });
  await run('runc', ['spec'], { cwd: b });
  const spec = JSON.parse(await readFile(join(b, 'config.json'), 'utf8'));
  spec.process.args = args;
  spec.process.terminal = false;
  spec.linux.cgroupsPath = `/ctrd-shim-e2e/${id}`;
  extra?.(spec);
  await writeFile(join(b, 'config.json'), JSON.stringify(spec));
  return b;
}

async function createTask(id: string, args: string[], io: { stdout?: string; stderr?: string } = {}) {
  const b = await bundle(id, args);
  created.push(id);
  const r = await tasks.create({
    id,
    bundle: b,
    rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }],
    stdout: io.stdout ?? '',
    stderr: io.stderr ?? '',
  });
  return { bundle: b, pid: r.pid };
}

function topics(id: string): string[] {
  return envelopes
    .filter((e) => {
      const m = e.event ? (unpackAny(e.event) as { containerId?: string } | undefined) : undefined;
      return m?.containerId === id;
    })
    .map((e) => e.topic);
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function zombieChildren(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (f[0] === 'Z' && Number(f[1]) === pid) out.push(Number(name));
    } catch {}
  }
  return out;
}

async function runcList(): Promise<Array<{ id: string }>> {
  const { stdout } = await run('runc', ['--root', runcRoot, 'list', '--format', 'json']);
  return JSON.parse(stdout.trim() || 'null') ?? [];
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shim-e2e-'));
  stateDir = join(dir, 'state');
  runcRoot = join(dir, 'runc');
  rootfs = join(dir, 'rootfs');
  daemonSock = join(dir, 'daemon.sock');
  await buildBusyboxRootfs(rootfs);
  await startDaemon();
  const { stdout } = await run(process.execPath, [
    SHIM_BIN,
    'start',
    '--namespace',
    NS,
    '--id',
    'group1',
    '--state-dir',
    stateDir,
    '--address',
    daemonSock,
    '--runc-root',
    runcRoot,
    '--oom-notify',
  ]);
  shimAddress = stdout.trim();
  tasks = createClient(TaskService, { address: shimAddress, namespace: NS, timeoutMs: 30_000 });
  shimPid = (await tasks.connect({})).shimPid;
});

afterAll(async () => {
  for (const id of created) {
    await run('runc', ['--root', runcRoot, 'delete', '--force', id]).catch(() => {});
  }
  if (shimPid > 0) {
    try {
      process.kill(shimPid, 'SIGKILL');
    } catch {}
  }
  for (const mp of mountsUnder(dir).reverse()) await run('umount', ['-l', mp]).catch(() => {});
  await daemon?.close({ graceMs: 100 });
  await rm(dir, { recursive: true, force: true });
  // runc removes each container's cgroup; the parent the test named is ours to remove.
  for (const c of readdirSync('/sys/fs/cgroup'))
    await rmdir(join('/sys/fs/cgroup', c, 'ctrd-shim-e2e')).catch(() => {});
});

describe('ctrd-shim with real runc', () => {
  it('serves on a 0600 path socket in a 0700 directory and answers Connect', async () => {
    const path = shimAddress.replace(/^unix:\/\//, '');
    expect(path.startsWith(join(stateDir, 's'))).toBe(true);
    const { stdout } = await run('stat', ['-c', '%a %F', path, dirname(path)]);
    expect(stdout.trim().split('\n')).toEqual(['600 socket', '700 directory']);
    const c = await tasks.connect({});
    expect(c.shimPid).toBe(shimPid);
    expect(readFileSync(join(stateDir, 'shims', 'group1', 'shim.pid'), 'utf8').trim()).toBe(String(shimPid));
    expect(readFileSync(join(stateDir, 'shims', 'group1', 'address'), 'utf8').trim()).toBe(shimAddress);
    expect(c.version).toMatch(/^\d+\.\d+\.\d+/);
    // A second start of the same shim reuses it.
    const again = await run(process.execPath, [
      SHIM_BIN,
      'start',
      '--namespace',
      NS,
      '--id',
      'group1',
      '--state-dir',
      stateDir,
      '--address',
      daemonSock,
      '--runc-root',
      runcRoot,
    ]);
    expect(again.stdout.trim()).toBe(shimAddress);
  });

  it('create, start, wait: exit code 3, the exit file, and the events in order', async () => {
    const { bundle: b, pid } = await createTask('exit3', [
      'sh',
      '-c',
      'echo out-line; echo err-line >&2; exit 3',
    ]);
    expect(pid).toBeGreaterThan(0);
    expect((await tasks.state({ id: 'exit3' })).status).toBe(Status.CREATED);
    const waiters = [tasks.wait({ id: 'exit3' }), tasks.wait({ id: 'exit3' }), tasks.wait({ id: 'exit3' })];
    const started = await tasks.start({ id: 'exit3' });
    expect(started.pid).toBe(pid);
    const results = await Promise.all(waiters);
    for (const w of results) {
      expect(w.exitStatus).toBe(3);
      expect(Number(w.exitedAt?.seconds)).toBeGreaterThan(0);
    }
    const st = await tasks.state({ id: 'exit3' });
    expect(st.status).toBe(Status.STOPPED);
    expect(st.exitStatus).toBe(3);
    const exitFile = JSON.parse(await readFile(join(b, 'exit.json'), 'utf8'));
    expect(exitFile).toMatchObject({ pid, exit_status: 3 });
    const log = (await readFile(join(b, 'container.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ stream: 'stdout', log: 'out-line\n' }),
        expect.objectContaining({ stream: 'stderr', log: 'err-line\n' }),
      ]),
    );
    const del = await tasks.delete({ id: 'exit3' });
    expect(del.exitStatus).toBe(3);
    expect(del.pid).toBe(pid);
    await until('events', () => topics('exit3').length >= 4);
    expect(topics('exit3')).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    const exitEnv = envelopes.find((e) => e.topic === '/tasks/exit' && e.namespace === NS)!;
    expect(exitEnv.event?.typeUrl).toBe('containerd.events.TaskExit');
    const exit = fromBinary(TaskExitSchema, exitEnv.event!.value);
    expect(exit).toMatchObject({ containerId: 'exit3', id: 'exit3', pid, exitStatus: 3 });
    await expect(tasks.state({ id: 'exit3' })).rejects.toSatisfy(isNotFound);
    expect(mountsUnder(b)).toEqual([]);
  });

  it('two tasks in one shim report their own exit codes; a SIGKILL is 137', async () => {
    await createTask('t-a', ['sh', '-c', 'sleep 0.3; exit 7']);
    await createTask('t-b', ['sleep', '1000']);
    const wa = tasks.wait({ id: 't-a' });
    const wb = tasks.wait({ id: 't-b' });
    await tasks.start({ id: 't-a' });
    await tasks.start({ id: 't-b' });
    expect((await tasks.state({ id: 't-b' })).status).toBe(Status.RUNNING);
    expect((await wa).exitStatus).toBe(7);
    expect((await tasks.state({ id: 't-b' })).status).toBe(Status.RUNNING);
    await tasks.kill({ id: 't-b', signal: 9 });
    expect((await wb).exitStatus).toBe(137);
    await expect(tasks.kill({ id: 't-b', signal: 9 })).rejects.toSatisfy(isNotFound);
    await expect(tasks.delete({ id: 'nope' })).rejects.toThrow(/task nope not found/);
    expect((await tasks.delete({ id: 't-a' })).exitStatus).toBe(7);
    expect((await tasks.delete({ id: 't-b' })).exitStatus).toBe(137);
    expect(zombieChildren(shimPid)).toEqual([]);
  });

  it('exec writes to a fifo; pids, pause/resume, update and stats on a running task', async () => {
    await createTask('svc', ['sleep', '1000']);
    await tasks.start({ id: 'svc' });
    const fifo = join(dir, 'exec-out');
    await run('mkfifo', [fifo]);
    const chunks: Buffer[] = [];
    const reader = createReadStream(fifo);
    reader.on('data', (c) => chunks.push(c as Buffer));
    const readerDone = new Promise<void>((r) => reader.on('end', () => r()));
    await tasks.exec({
      id: 'svc',
      execId: 'e1',
      stdout: fifo,
      spec: packJson(OCI_PROCESS_URL, {
        args: ['sh', '-c', 'echo hello-from-exec; sleep 0.5'],
        cwd: '/',
        env: ['PATH=/bin'],
        user: { uid: 0, gid: 0 },
      }),
    });
    const w = tasks.wait({ id: 'svc', execId: 'e1' });
    const { pid: execPid } = await tasks.start({ id: 'svc', execId: 'e1' });
    const pids = await tasks.pids({ id: 'svc' });
    const withExec = pids.processes.find((p) => p.pid === execPid);
    expect(withExec?.info && typeNameFromUrl(withExec.info.typeUrl)).toBe(
      'containerd.runc.v1.ProcessDetails',
    );
    expect(fromBinary(ProcessDetailsSchema, withExec!.info!.value).execId).toBe('e1');
    expect((await w).exitStatus).toBe(0);
    await readerDone;
    expect(Buffer.concat(chunks).toString()).toBe('hello-from-exec\n');
    expect((await tasks.delete({ id: 'svc', execId: 'e1' })).exitStatus).toBe(0);
    await until('exec events', () => topics('svc').includes('/tasks/exec-started'));
    expect(topics('svc')).toEqual(expect.arrayContaining(['/tasks/exec-added', '/tasks/exec-started']));

    await tasks.pause({ id: 'svc' });
    expect((await tasks.state({ id: 'svc' })).status).toBe(Status.PAUSED);
    await expect(tasks.pause({ id: 'svc' })).rejects.toSatisfy(isFailedPrecondition);
    await tasks.resume({ id: 'svc' });
    expect((await tasks.state({ id: 'svc' })).status).toBe(Status.RUNNING);
    await until('pause events', () => topics('svc').includes('/tasks/resumed'));

    await tasks.update({
      id: 'svc',
      resources: packJson('types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', {
        pids: { limit: 123 },
      }),
    });
    expect(readFileSync('/sys/fs/cgroup/pids/ctrd-shim-e2e/svc/pids.max', 'utf8').trim()).toBe('123');

    const stats = await tasks.stats({ id: 'svc' });
    expect(stats.stats?.typeUrl).toBe('io.containerd.cgroups.v1.Metrics');
    const m = fromBinary(CgroupsV1Metrics, stats.stats!.value);
    expect(m.pids?.current).toBeGreaterThan(0n);
    expect(m.memory?.usage?.usage).toBeGreaterThan(0n);

    await expect(tasks.delete({ id: 'svc' })).rejects.toSatisfy(isFailedPrecondition);
    // sleep is the pid namespace's init and ignores SIGTERM.
    await tasks.kill({ id: 'svc', signal: 9 });
    expect((await tasks.wait({ id: 'svc' })).exitStatus).toBe(137);
    await tasks.delete({ id: 'svc' });
  });

  it("checkpoint returns runc's CRIU error", async () => {
    await createTask('ckpt', ['sleep', '1000']);
    await tasks.start({ id: 'ckpt' });
    const err = await tasks
      .checkpoint({ id: 'ckpt', path: join(dir, 'ckpt-image') })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/checkpoint/i);
    expect((err as Error).message).toMatch(/criu/i);
    await tasks.kill({ id: 'ckpt', signal: 9 });
    await tasks.wait({ id: 'ckpt' });
    await tasks.delete({ id: 'ckpt' });
  });

  it('rejects a relative bundle and a bundle without config.json', async () => {
    await expect(tasks.create({ id: 'bad1', bundle: 'relative/path' })).rejects.toThrow(/absolute/);
    const empty = join(dir, 'bundles', 'empty');
    await mkdir(empty, { recursive: true });
    await expect(tasks.create({ id: 'bad2', bundle: empty })).rejects.toThrow(/config.json does not exist/);
    await expect(tasks.create({ id: '../x', bundle: empty })).rejects.toThrow(/invalid/i);
  });

  it('queues events while the daemon is down and delivers them in order when it returns', async () => {
    await daemon?.close({ graceMs: 100 });
    daemon = undefined;
    const before = envelopes.length;
    await createTask('offline', ['sh', '-c', 'exit 5']);
    await tasks.start({ id: 'offline' });
    expect((await tasks.wait({ id: 'offline' })).exitStatus).toBe(5);
    await tasks.delete({ id: 'offline' });
    await new Promise((r) => setTimeout(r, 300));
    expect(envelopes.length).toBe(before);
    await startDaemon();
    await until('queued events', () => topics('offline').length >= 4);
    expect(topics('offline')).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
  });

  it('keeps the cost of a running container well under 1 MiB of shim memory', async () => {
    const rss = () =>
      Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${shimPid}/status`, 'utf8'))?.[1]) * 1024;
    const n = 25;
    const ids = Array.from({ length: n }, (_, i) => `dense-${i}`);
    // Warm up code paths first, so the measure is the tasks' own cost.
    for (const id of ids.slice(0, 3)) {
      await createTask(id, ['sleep', '1000']);
      await tasks.start({ id });
    }
    await new Promise((r) => setTimeout(r, 500));
    const before = rss();
    for (const id of ids.slice(3)) {
      await createTask(id, ['sleep', '1000']);
      await tasks.start({ id });
    }
    await new Promise((r) => setTimeout(r, 1000));
    const perTask = (rss() - before) / (n - 3);
    expect(perTask).toBeLessThan(1024 * 1024);
    for (const id of ids) {
      await tasks.kill({ id, signal: 9 });
      await tasks.wait({ id });
      await tasks.delete({ id });
    }
    expect(zombieChildren(shimPid)).toEqual([]);
  });

  it('shuts down once no task is left, leaving nothing behind', async () => {
    await createTask('last', ['sleep', '1000']);
    await tasks.start({ id: 'last' });
    await tasks.shutdown({});
    await new Promise((r) => setTimeout(r, 200));
    expect((await tasks.connect({})).shimPid).toBe(shimPid);
    await tasks.kill({ id: 'last', signal: 9 });
    await tasks.wait({ id: 'last' });
    await tasks.delete({ id: 'last' });
    expect(zombieChildren(shimPid)).toEqual([]);
    await tasks.shutdown({});
    await until('shim exit', () => !existsSync(`/proc/${shimPid}`));
    shimPid = 0;
    expect(await runcList()).toEqual([]);
    expect(mountsUnder(dir)).toEqual([]);
    expect(await readdir(join(stateDir, 's'))).toEqual([]);
    expect(await readdir(join(stateDir, 'shims', 'group1'))).toEqual(['shim.log']);
  });
});

describe('ctrd-shim delete', () => {
  it('settles a task whose shim was killed: runc state gone, rootfs unmounted, exit status printed', async () => {
    const { stdout } = await run(process.execPath, [
      SHIM_BIN,
      'start',
      '--namespace',
      NS,
      '--id',
      'doomed',
      '--state-dir',
      stateDir,
      '--address',
      daemonSock,
      '--runc-root',
      runcRoot,
    ]);
    const client = createClient(TaskService, { address: stdout.trim(), namespace: NS, timeoutMs: 30_000 });
    const { shimPid: pid } = await client.connect({});
    const b = await bundle('orphan', ['sh', '-c', 'exit 9']);
    created.push('orphan');
    await client.create({
      id: 'orphan',
      bundle: b,
      rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }],
    });
    await client.start({ id: 'orphan' });
    expect((await client.wait({ id: 'orphan' })).exitStatus).toBe(9);
    process.kill(pid, 'SIGKILL');
    await until(
      'shim death',
      () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'latin1').includes(') Z'),
    );
    expect(mountsUnder(b).length).toBe(1);
    const out = await run(process.execPath, [
      SHIM_BIN,
      'delete',
      '--namespace',
      NS,
      '--id',
      'orphan',
      '--bundle',
      b,
      '--runc-root',
      runcRoot,
    ]);
    expect(JSON.parse(out.stdout)).toMatchObject({ exit_status: 9 });
    expect(mountsUnder(b)).toEqual([]);
    expect((await runcList()).map((c) => c.id)).not.toContain('orphan');
  });
});

// Unused helper kept for manual debugging of a failing run.
export function spawnShimForeground(args: string[]) {
  return spawn(process.execPath, [SHIM_BIN, 'serve', ...args], { stdio: 'inherit' });
}
void create;
