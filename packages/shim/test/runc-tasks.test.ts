import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { isNotFound, OCI_LINUX_RESOURCES_URL, OCI_PROCESS_URL, packJson } from '@ctrd/api-proto';
import {
  CheckpointTaskRequestSchema,
  CreateTaskRequestSchema,
  ExecProcessRequestSchema,
  KillRequestSchema,
  UpdateTaskRequestSchema,
} from '@ctrd/api-proto/shim';
import { Status } from '@ctrd/api-proto/task-types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OomWatcher } from '../src/oom-watcher.js';
import { parseStat, Reaper } from '../src/reaper.js';
import { TaskManager } from '../src/task-manager.js';
import { buildBusyboxRootfs, mountsUnder, writeBundle } from './support/busybox.js';
import { createRuncRuntime, runcSys } from '../src/runc-runtime.js';

// The TaskManager in this process against real runc and real busybox containers: real pipes, real
// reaping of reparented container processes, real rootfs bind mounts. This process is the
// subreaper, as the shim is. (The ctrd-shim program itself is tested in e2e/test/shim-tasks.test.ts.)

const run = promisify(execFile);
const NS = 'tm';
let dir: string;
let root: string;
let rootfs: string;
let reaper: Reaper;
let m: TaskManager;
const events: Array<{ topic: string; msg: { containerId?: string } }> = [];
const ids: string[] = [];

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

/** `count()` once it has held still for 300 ms (up to 20 s). */
async function steady(count: () => number): Promise<number> {
  const end = Date.now() + 20_000;
  for (let last = count(); ; ) {
    await new Promise((r) => setTimeout(r, 300));
    const now = count();
    if (now === last || Date.now() > end) return now;
    last = now;
  }
}

async function newTask(
  id: string,
  args: string[],
  io: { stdout?: string } = {},
  resources?: Record<string, unknown>,
): Promise<string> {
  const bundle = join(dir, 'bundles', id);
  await writeBundle(bundle, args, `/ctrd-shim-test/${id}`, resources);
  ids.push(id);
  await m.create(
    NS,
    create(CreateTaskRequestSchema, {
      id,
      bundle,
      rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }],
      stdout: io.stdout ?? '',
    }),
  );
  return bundle;
}

const topicsOf = (id: string) => events.filter((e) => e.msg.containerId === id).map((e) => e.topic);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shim-runc-'));
  root = join(dir, 'runc');
  rootfs = join(dir, 'rootfs');
  await mkdir(root);
  await buildBusyboxRootfs(rootfs);
  runcSys().setSubreaper();
  reaper = new Reaper({ waitPid: runcSys().waitPid });
  reaper.start();
  m = new TaskManager({
    runtime: createRuncRuntime({ binary: 'runc', root }),
    reaper,
    oom: new OomWatcher(),
    publish: (_ns, topic, _schema, msg) => events.push({ topic, msg: msg as { containerId?: string } }),
  });
});

afterAll(async () => {
  for (const id of ids) await run('runc', ['--root', root, 'delete', '--force', id]).catch(() => {});
  m.closeAll();
  const mi = readFileSync('/proc/self/mountinfo', 'utf8');
  for (const mp of mountsUnder(dir, mi).reverse()) await run('umount', ['-l', mp]).catch(() => {});
  reaper.stop();
  await rm(dir, { recursive: true, force: true });
  // runc removes each container's cgroup; the parent the test named is ours to remove.
  for (const c of readdirSync('/sys/fs/cgroup'))
    await rmdir(join('/sys/fs/cgroup', c, 'ctrd-shim-test')).catch(() => {});
});

describe('tasks on real runc', () => {
  it('create/start/wait gives exit code 3, output in the log file, and the exit file', async () => {
    const bundle = await newTask('three', ['sh', '-c', 'echo hello; echo oops >&2; exit 3']);
    expect(m.state(NS, 'three', '').status).toBe(Status.CREATED);
    const w = m.wait(NS, 'three', '');
    await m.start(NS, 'three', '');
    const exit = await w;
    expect(exit.exitStatus).toBe(3);
    const log = (await readFile(join(bundle, 'container.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.map((r) => `${r.stream}:${r.log}`).sort()).toEqual(['stderr:oops\n', 'stdout:hello\n']);
    expect(JSON.parse(await readFile(join(bundle, 'exit.json'), 'utf8'))).toMatchObject({ exit_status: 3 });
    expect((await m.delete(NS, 'three', '')).exitStatus).toBe(3);
    expect(topicsOf('three')).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    expect(mountsUnder(bundle, readFileSync('/proc/self/mountinfo', 'utf8'))).toEqual([]);
  });

  it('two tasks keep their own exit codes; SIGKILL is 137', async () => {
    await newTask('a', ['sh', '-c', 'sleep 0.2; exit 7']);
    await newTask('b', ['sleep', '1000']);
    const wa = m.wait(NS, 'a', '');
    const wb = m.wait(NS, 'b', '');
    await m.start(NS, 'a', '');
    await m.start(NS, 'b', '');
    expect((await wa).exitStatus).toBe(7);
    expect(m.state(NS, 'b', '').status).toBe(Status.RUNNING);
    await m.kill(NS, create(KillRequestSchema, { id: 'b', signal: 9 }));
    expect((await wb).exitStatus).toBe(137);
    await m.delete(NS, 'a', '');
    await m.delete(NS, 'b', '');
    expect(zombieChildren()).toEqual([]);
  });

  it('exec to a fifo, pids with exec details, pause/resume, update, checkpoint error', async () => {
    await newTask('svc', ['sleep', '1000']);
    await m.start(NS, 'svc', '');
    const fifo = join(dir, 'exec.out');
    await run('mkfifo', [fifo]);
    const reader = createReadStream(fifo);
    const chunks: Buffer[] = [];
    reader.on('data', (c) => chunks.push(c as Buffer));
    const ended = new Promise<void>((r) => reader.on('end', () => r()));
    await m.exec(
      NS,
      create(ExecProcessRequestSchema, {
        id: 'svc',
        execId: 'e1',
        stdout: fifo,
        spec: packJson(OCI_PROCESS_URL, {
          args: ['sh', '-c', 'echo from-exec; sleep 0.5; exit 4'],
          cwd: '/',
          env: ['PATH=/bin'],
          user: { uid: 0, gid: 0 },
        }),
      }),
    );
    const w = m.wait(NS, 'svc', 'e1');
    const execPid = await m.start(NS, 'svc', 'e1');
    const pids = await m.pids(NS, 'svc');
    expect(pids.map((p) => p.pid)).toContain(execPid);
    expect(pids.find((p) => p.pid === execPid)?.info?.typeUrl).toBe('containerd.runc.v1.ProcessDetails');
    expect((await w).exitStatus).toBe(4);
    await ended;
    expect(Buffer.concat(chunks).toString()).toBe('from-exec\n');
    await m.delete(NS, 'svc', 'e1');

    await m.pause(NS, 'svc');
    expect(m.state(NS, 'svc', '').status).toBe(Status.PAUSED);
    await m.resume(NS, 'svc');
    expect(m.state(NS, 'svc', '').status).toBe(Status.RUNNING);

    await m.update(
      NS,
      create(UpdateTaskRequestSchema, {
        id: 'svc',
        resources: packJson(OCI_LINUX_RESOURCES_URL, { pids: { limit: 77 } }),
      }),
    );
    expect(readFileSync('/sys/fs/cgroup/pids/ctrd-shim-test/svc/pids.max', 'utf8').trim()).toBe('77');

    const err = await m
      .checkpoint(NS, create(CheckpointTaskRequestSchema, { id: 'svc', path: join(dir, 'ckpt') }))
      .catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/task svc: checkpoint: .*criu/i);

    // sleep is the pid namespace's init: it ignores SIGTERM, so SIGKILL.
    await m.kill(NS, create(KillRequestSchema, { id: 'svc', signal: 9 }));
    expect((await m.wait(NS, 'svc', '')).exitStatus).toBe(137);
    await m.delete(NS, 'svc', '');
    expect(topicsOf('svc')).toEqual([
      '/tasks/create',
      '/tasks/start',
      '/tasks/exec-added',
      '/tasks/exec-started',
      '/tasks/exit',
      '/tasks/paused',
      '/tasks/resumed',
      '/tasks/exit',
      '/tasks/delete',
    ]);
  });

  it('an OOM kill yields /tasks/oom before /tasks/exit', async () => {
    // dd allocates its 64 MiB block up front, far over the 16 MiB limit.
    await newTask(
      'hog',
      ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'],
      {},
      {
        memory: { limit: 16 * 1024 * 1024, swap: 16 * 1024 * 1024 },
      },
    );
    const w = m.wait(NS, 'hog', '');
    await m.start(NS, 'hog', '');
    expect((await w).exitStatus).toBe(137);
    await m.delete(NS, 'hog', '');
    expect(topicsOf('hog')).toEqual([
      '/tasks/create',
      '/tasks/start',
      '/tasks/oom',
      '/tasks/exit',
      '/tasks/delete',
    ]);
  });

  it('runs a task on a terminal: output through the pty, ResizePty sets its size', async () => {
    const bundle = join(dir, 'bundles', 'tty');
    await writeBundle(
      bundle,
      ['sh', '-c', 'sleep 0.5; stty size; echo tty-ok'],
      '/ctrd-shim-test/tty',
      undefined,
      true,
    );
    ids.push('tty');
    const out = join(dir, 'tty.out');
    await run('mkfifo', [out]);
    const reader = createReadStream(out);
    const chunks: Buffer[] = [];
    reader.on('data', (c) => chunks.push(c as Buffer));
    const ended = new Promise<void>((r) => reader.on('end', () => r()));
    await m.create(
      NS,
      create(CreateTaskRequestSchema, {
        id: 'tty',
        bundle,
        terminal: true,
        stdout: out,
        rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }],
      }),
    );
    const w = m.wait(NS, 'tty', '');
    await m.start(NS, 'tty', '');
    m.resize(NS, 'tty', '', 100, 40);
    expect((await w).exitStatus).toBe(0);
    await ended;
    expect(Buffer.concat(chunks).toString().replace(/\r/g, '')).toBe('40 100\ntty-ok\n');
    expect(() => m.resize(NS, 'tty', 'nope', 1, 1)).toThrow(/not found/);
    await m.delete(NS, 'tty', '');
  });

  it("CloseIO ends an exec's stdin once what the client wrote is read", async () => {
    await newTask('cat', ['sleep', '1000']);
    await m.start(NS, 'cat', '');
    const stdin = join(dir, 'cat.in');
    const stdout = join(dir, 'cat.out');
    await run('mkfifo', [stdin, stdout]);
    const reader = createReadStream(stdout);
    const chunks: Buffer[] = [];
    reader.on('data', (c) => chunks.push(c as Buffer));
    const ended = new Promise<void>((r) => reader.on('end', () => r()));
    await m.exec(
      NS,
      create(ExecProcessRequestSchema, {
        id: 'cat',
        execId: 'cat1',
        stdin,
        stdout,
        spec: packJson(OCI_PROCESS_URL, {
          args: ['cat'],
          cwd: '/',
          env: ['PATH=/bin'],
          user: { uid: 0, gid: 0 },
        }),
      }),
    );
    const w = m.wait(NS, 'cat', 'cat1');
    await m.start(NS, 'cat', 'cat1');
    const writer = createWriteStream(stdin);
    await new Promise<void>((r) => writer.write('line one\nline two\n', () => r()));
    await new Promise<void>((r) => writer.end(() => r()));
    await new Promise((r) => setTimeout(r, 200));
    expect(m.state(NS, 'cat', 'cat1').status).toBe(Status.RUNNING);
    m.closeIO(NS, 'cat', 'cat1', true);
    expect((await w).exitStatus).toBe(0);
    await ended;
    expect(Buffer.concat(chunks).toString()).toBe('line one\nline two\n');
    await m.delete(NS, 'cat', 'cat1');
    await m.kill(NS, create(KillRequestSchema, { id: 'cat', signal: 9 }));
    await m.wait(NS, 'cat', '');
    await m.delete(NS, 'cat', '');
  });

  it("a failing runc create returns runc's error and leaves no container or mount", async () => {
    const bundle = join(dir, 'bundles', 'bad');
    await writeBundle(bundle, ['/no/such/binary'], '/ctrd-shim-test/bad');
    ids.push('bad');
    const err = await m
      .create(
        NS,
        create(CreateTaskRequestSchema, {
          id: 'bad',
          bundle,
          rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'ro'] }],
        }),
      )
      .catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/task bad: create: .*no such file or directory/);
    expect(() => m.state(NS, 'bad', '')).toThrow(/not found/);
    expect(mountsUnder(bundle, readFileSync('/proc/self/mountinfo', 'utf8'))).toEqual([]);
    const { stdout } = await run('runc', ['--root', root, 'list', '--format', 'json']);
    expect((JSON.parse(stdout.trim() || 'null') ?? []).map((c: { id: string }) => c.id)).not.toContain('bad');
  });

  it('a missing runc binary is named in the error', async () => {
    const broken = new TaskManager({
      runtime: createRuncRuntime({ binary: '/nonexistent/runc', root }),
      reaper,
      publish: () => {},
    });
    const bundle = join(dir, 'bundles', 'norunc');
    await writeBundle(bundle, ['true'], '/ctrd-shim-test/norunc');
    await expect(
      broken.create(NS, create(CreateTaskRequestSchema, { id: 'norunc', bundle })),
    ).rejects.toThrow(/\/nonexistent\/runc/);
  });

  it('a container deleted behind its back: Wait returns, Kill is NotFound', async () => {
    await newTask('oob', ['sleep', '1000']);
    await m.start(NS, 'oob', '');
    const w = m.wait(NS, 'oob', '');
    await run('runc', ['--root', root, 'delete', '--force', 'oob']);
    expect((await w).exitStatus).toBe(137);
    await expect(m.kill(NS, create(KillRequestSchema, { id: 'oob', signal: 9 }))).rejects.toSatisfy(
      isNotFound,
    );
    await m.delete(NS, 'oob', '');
  });

  it('create/exec/delete cycles leave no fd behind', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const cycle = async (id: string) => {
      const out = join(dir, `${id}.out`);
      await run('mkfifo', [out]);
      const reader = createReadStream(out);
      const closed = new Promise<void>((r) => reader.on('close', () => r()));
      reader.resume();
      await newTask(id, ['sleep', '1000'], { stdout: out });
      await m.start(NS, id, '');
      await m.exec(
        NS,
        create(ExecProcessRequestSchema, {
          id,
          execId: 'x',
          stdout: out,
          spec: packJson(OCI_PROCESS_URL, {
            args: ['echo', 'hi'],
            cwd: '/',
            env: ['PATH=/bin'],
            user: { uid: 0, gid: 0 },
          }),
        }),
      );
      const w = m.wait(NS, id, 'x');
      await m.start(NS, id, 'x');
      await w;
      await m.delete(NS, id, 'x');
      await m.kill(NS, create(KillRequestSchema, { id, signal: 9 }));
      await m.wait(NS, id, '');
      await m.delete(NS, id, '');
      await closed;
    };
    await cycle('fd-warm');
    // fds close a moment after the streams that held them end: count once the number holds still.
    const before = await steady(fds);
    for (let i = 0; i < 5; i++) await cycle(`fd-${i}`);
    await expect.poll(fds).toBe(before);
  });

  it('deleting a created task kills runc init and leaves nothing', async () => {
    await newTask('never', ['true']);
    const r = await m.delete(NS, 'never', '');
    expect(r.pid).toBeGreaterThan(0);
    const { stdout } = await run('runc', ['--root', root, 'list', '--format', 'json']);
    expect(JSON.parse(stdout.trim() || 'null') ?? []).toEqual([]);
    expect(zombieChildren()).toEqual([]);
    expect(mountsUnder(join(dir, 'bundles'), readFileSync('/proc/self/mountinfo', 'utf8'))).toEqual([]);
  });
});
