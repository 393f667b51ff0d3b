import { writeSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, type fromBinary } from '@bufbuild/protobuf';
import {
  isAlreadyExists,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  OCI_PROCESS_URL,
  packJson,
  createInMemoryClient,
  service,
} from '@ctrd/api-proto';
import { LogStream } from '@ctrd/api-proto/logs';
import { ShimLogsService } from '@ctrd/api-proto/shim';
import type { TaskExitSchema } from '@ctrd/api-proto/event-types';
import { CreateTaskRequestSchema, ExecProcessRequestSchema, KillRequestSchema } from '@ctrd/api-proto/shim';
import { Status } from '@ctrd/api-proto/task-types';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ExitInfo } from '../src/reaper.js';
import type { Runtime, RuntimeCreateOptions } from '../src/runtime.js';
import type { Publish } from '../src/task-manager.js';
import { TaskManager } from '../src/task-manager.js';
import { createShimLogsService } from '../src/task-service.js';

// The task state machine and its events with a fake runtime and a fake reaper: runc itself is covered
// by e2e/test/shim-tasks.test.ts.

class FakeRuntime implements Runtime {
  calls: string[] = [];
  nextPid = 1000;
  failStart = false;
  /** Written to the process's stdout and stderr at create, as a process would. */
  output: { stdout?: string; stderr?: string } = {};
  async create(id: string, _bundle: string, opts: RuntimeCreateOptions) {
    this.calls.push(`create ${id}`);
    if (this.output.stdout && opts.stdio.stdout !== undefined)
      writeSync(opts.stdio.stdout, this.output.stdout);
    if (this.output.stderr && opts.stdio.stderr !== undefined)
      writeSync(opts.stdio.stderr, this.output.stderr);
    return this.nextPid++;
  }
  async start(id: string) {
    this.calls.push(`start ${id}`);
    if (this.failStart) throw new Error('runc start failed: boom');
  }
  async exec(id: string) {
    this.calls.push(`exec ${id}`);
    return this.nextPid++;
  }
  async kill(id: string, sig: number) {
    this.calls.push(`kill ${id} ${sig}`);
  }
  async delete(id: string, force: boolean) {
    this.calls.push(`delete ${id}${force ? ' --force' : ''}`);
  }
  async state() {
    return undefined;
  }
  async ps() {
    return [1000, 1001];
  }
  async pause(id: string) {
    this.calls.push(`pause ${id}`);
  }
  async resume(id: string) {
    this.calls.push(`resume ${id}`);
  }
  async update(id: string) {
    this.calls.push(`update ${id}`);
  }
  async checkpoint() {
    throw new Error('criu failed: type NOTIFY errno 0');
  }
  async newConsoleSocket(): Promise<never> {
    throw new Error('no console in this fake');
  }
}

class FakeReaper {
  private pending = new Map<number, (i: ExitInfo) => void>();
  watch(pid: number) {
    return new Promise<ExitInfo>((r) => this.pending.set(pid, r));
  }
  forget(pid: number) {
    this.pending.delete(pid);
  }
  exit(pid: number, exitStatus: number) {
    this.pending.get(pid)?.({ pid, exitStatus, exitedAt: new Date() });
    this.pending.delete(pid);
  }
}

let dir: string;
let runtime: FakeRuntime;
let reaper: FakeReaper;
let events: Array<{ ns: string; topic: string; msg: unknown }>;
let m: TaskManager;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shim-tm-'));
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({ ociVersion: '1.0.2', process: { args: ['true'] } }),
  );
  runtime = new FakeRuntime();
  reaper = new FakeReaper();
  events = [];
  const publish: Publish = (ns, topic, _schema, msg) => events.push({ ns, topic, msg });
  m = new TaskManager({ runtime, reaper, publish });
});
afterEach(async () => {
  m.closeAll();
  await rm(dir, { recursive: true, force: true });
});

const req = (id: string, bundle: string) => create(CreateTaskRequestSchema, { id, bundle });

describe('task manager', () => {
  it('runs the lifecycle and publishes create, start, exit, delete in order', async () => {
    const pid = await m.create('ns1', req('a', dir));
    expect(pid).toBe(1000);
    expect(m.state('ns1', 'a', '').status).toBe(Status.CREATED);
    const w1 = m.wait('ns1', 'a', '');
    const w2 = m.wait('ns1', 'a', '');
    expect(await m.start('ns1', 'a', '')).toBe(1000);
    expect(m.state('ns1', 'a', '').status).toBe(Status.RUNNING);
    reaper.exit(1000, 3);
    expect((await w1).exitStatus).toBe(3);
    expect((await w2).exitStatus).toBe(3);
    expect(m.state('ns1', 'a', '').status).toBe(Status.STOPPED);
    const exitFile = JSON.parse(await readFile(join(dir, 'exit.json'), 'utf8'));
    expect(exitFile.exit_status).toBe(3);
    const del = await m.delete('ns1', 'a', '');
    expect(del.exitStatus).toBe(3);
    expect(events.map((e) => e.topic)).toEqual([
      '/tasks/create',
      '/tasks/start',
      '/tasks/exit',
      '/tasks/delete',
    ]);
    expect(events.every((e) => e.ns === 'ns1')).toBe(true);
    const exit = events[2]?.msg as ReturnType<typeof fromBinary<typeof TaskExitSchema>>;
    expect(exit).toMatchObject({ containerId: 'a', id: 'a', pid: 1000, exitStatus: 3 });
    expect(() => m.state('ns1', 'a', '')).toThrow('task a not found');
    expect(runtime.calls).toEqual(['create a', 'start a', 'delete a']);
  });

  it('keys tasks by namespace and refuses a duplicate id', async () => {
    await m.create('ns1', req('a', dir));
    await m.create('ns2', req('a', dir));
    await expect(m.create('ns1', req('a', dir))).rejects.toSatisfy(isAlreadyExists);
    const both = await Promise.allSettled([m.create('ns3', req('b', dir)), m.create('ns3', req('b', dir))]);
    expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(() => m.state('ns4', 'a', '')).toThrow(/not found/);
  });

  it('lists the init state of every task of one namespace, by id (ctrd.shim.v1.Tasks/List)', async () => {
    await m.create('ns1', req('b', dir));
    await m.create('ns1', req('a', dir));
    await m.create('ns2', req('c', dir));
    await m.start('ns1', 'a', '');
    const listed = m.list('ns1');
    expect(listed.map((s) => [s.id, s.execId, s.status])).toEqual([
      ['a', '', Status.RUNNING],
      ['b', '', Status.CREATED],
    ]);
    expect(listed[0]).toEqual(m.state('ns1', 'a', ''));
    expect(m.list('ns2').map((s) => s.id)).toEqual(['c']);
    expect(m.list('empty')).toEqual([]);
  });

  it('refuses operations the state does not allow, with FailedPrecondition', async () => {
    await m.create('ns', req('a', dir));
    await expect(m.pause('ns', 'a')).rejects.toSatisfy(isFailedPrecondition);
    await m.start('ns', 'a', '');
    await expect(m.start('ns', 'a', '')).rejects.toSatisfy(isFailedPrecondition);
    await expect(m.delete('ns', 'a', '')).rejects.toThrow(
      'task a: cannot delete a running process: stop it first',
    );
    await m.pause('ns', 'a');
    expect(m.state('ns', 'a', '').status).toBe(Status.PAUSED);
    await expect(m.resume('ns', 'a')).resolves.toBeUndefined();
    await expect(m.resume('ns', 'a')).rejects.toSatisfy(isFailedPrecondition);
    reaper.exit(1000, 137);
    await m.wait('ns', 'a', '');
    await expect(m.kill('ns', create(KillRequestSchema, { id: 'a', signal: 9 }))).rejects.toSatisfy(
      isNotFound,
    );
    expect(events.map((e) => e.topic)).toContain('/tasks/paused');
    expect(events.map((e) => e.topic)).toContain('/tasks/resumed');
  });

  it('validates inputs before runc runs', async () => {
    await expect(m.create('ns', req('a', 'rel/bundle'))).rejects.toSatisfy(isInvalidArgument);
    await expect(m.create('ns', req('../x', dir))).rejects.toSatisfy(isInvalidArgument);
    const nocfg = await mkdtemp(join(tmpdir(), 'shim-tm-nocfg-'));
    await expect(m.create('ns', req('a', nocfg))).rejects.toThrow(/config.json does not exist/);
    await writeFile(join(nocfg, 'config.json'), '{nope');
    await expect(m.create('ns', req('a', nocfg))).rejects.toThrow(/not a valid OCI spec/);
    await writeFile(
      join(nocfg, 'config.json'),
      JSON.stringify({ process: { args: ['sh'], cwd: '/proc/self/fd/5' } }),
    );
    await expect(m.create('ns', req('a', nocfg))).rejects.toThrow(
      /cwd "\/proc\/self\/fd\/5" must be an absolute path/,
    );
    await rm(nocfg, { recursive: true });
    await expect(
      m.create(
        'ns',
        create(CreateTaskRequestSchema, { id: 'a', bundle: dir, stdout: join(dir, 'missing-fifo') }),
      ),
    ).rejects.toThrow(/does not exist: create it with mkfifo/);
    expect(runtime.calls).toEqual([]);
  });

  it('runs execs with their own exit status and an exec-added/exec-started pair', async () => {
    await m.create('ns', req('a', dir));
    await m.start('ns', 'a', '');
    const spec = packJson(OCI_PROCESS_URL, { args: ['sh'], cwd: '/' });
    await m.exec('ns', create(ExecProcessRequestSchema, { id: 'a', execId: 'e1', spec }));
    await expect(
      m.exec('ns', create(ExecProcessRequestSchema, { id: 'a', execId: 'e1', spec })),
    ).rejects.toSatisfy(isAlreadyExists);
    await expect(
      m.exec(
        'ns',
        create(ExecProcessRequestSchema, {
          id: 'a',
          execId: 'e2',
          spec: packJson(OCI_PROCESS_URL, { args: ['sh'], cwd: '/proc/self/fd/3' }),
        }),
      ),
    ).rejects.toSatisfy(isInvalidArgument);
    const w = m.wait('ns', 'a', 'e1');
    const pid = await m.start('ns', 'a', 'e1');
    expect(m.state('ns', 'a', 'e1').status).toBe(Status.RUNNING);
    reaper.exit(pid, 42);
    expect((await w).exitStatus).toBe(42);
    expect(m.state('ns', 'a', '').status).toBe(Status.RUNNING);
    expect((await m.delete('ns', 'a', 'e1')).exitStatus).toBe(42);
    expect(events.map((e) => e.topic)).toEqual([
      '/tasks/create',
      '/tasks/start',
      '/tasks/exec-added',
      '/tasks/exec-started',
      '/tasks/exit',
    ]);
  });

  it('ResizePty on a process without a terminal is a no-op that answers OK, as in containerd', async () => {
    await m.create('ns', req('a', dir));
    m.resize('ns', 'a', '', 80, 24);
    await m.start('ns', 'a', '');
    m.resize('ns', 'a', '', 100, 40);
    const spec = packJson(OCI_PROCESS_URL, { args: ['sh'], cwd: '/' });
    await m.exec('ns', create(ExecProcessRequestSchema, { id: 'a', execId: 'e1', spec }));
    m.resize('ns', 'a', 'e1', 100, 40);
    expect(() => m.resize('ns', 'a', 'nope', 1, 1)).toThrow(/not found/);
    expect(() => m.resize('ns', 'b', '', 1, 1)).toThrow(/not found/);
    expect(runtime.calls).toEqual(['create a', 'start a']);
  });

  it('serialises per task but never across tasks', async () => {
    await m.create('ns', req('slow', dir));
    await m.create('ns', req('fast', dir));
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const realStart = runtime.start.bind(runtime);
    runtime.start = async (id: string) => {
      if (id === 'slow') await gate;
      return realStart(id);
    };
    const slow = m.start('ns', 'slow', '');
    await m.start('ns', 'fast', '');
    expect(m.state('ns', 'fast', '').status).toBe(Status.RUNNING);
    expect(m.state('ns', 'slow', '').status).toBe(Status.CREATED);
    release();
    await slow;
    expect(m.state('ns', 'slow', '').status).toBe(Status.RUNNING);
  });

  it('publishes the exit after the start even when the process dies at once', async () => {
    await m.create('ns', req('a', dir));
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    runtime.start = async () => {
      reaper.exit(1000, 1);
      await gate;
    };
    const started = m.start('ns', 'a', '');
    await new Promise((r) => setTimeout(r, 20));
    release();
    await started;
    await m.wait('ns', 'a', '');
    expect(events.map((e) => e.topic)).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit']);
  });

  it('a wait can be abandoned with its signal', async () => {
    await m.create('ns', req('a', dir));
    const ac = new AbortController();
    const w = m.wait('ns', 'a', '', ac.signal);
    ac.abort(new Error('client went away'));
    await expect(w).rejects.toThrow('client went away');
  });

  it('serves the kept output of a task through ctrd.shim.v1.Logs, following until the exit', async () => {
    runtime.output = { stdout: 'out 1\nout 2\n', stderr: 'err 1\n' };
    await m.create('ns', req('a', dir));
    await m.start('ns', 'a', '');
    const logs = (namespace: string) =>
      createInMemoryClient(ShimLogsService, {
        services: [service(ShimLogsService, createShimLogsService({ manager: m, defaultNamespace: 'x' }))],
        namespace,
      });
    const read = async (r: Parameters<ReturnType<typeof logs>['read']>[0], namespace = 'ns') => {
      const out: string[] = [];
      for await (const res of logs(namespace).read(r))
        for (const e of res.entries)
          out.push(`${LogStream[e.stream]} ${e.line.trim()} ${e.time ? 'at' : '-'}`);
      return out;
    };
    // The copy from the pipes into the log is asynchronous: wait for it.
    for (let i = 0; i < 50 && (await read({ containerId: 'a' })).length < 3; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect((await read({ containerId: 'a' })).sort()).toEqual([
      'STDERR err 1 at',
      'STDOUT out 1 at',
      'STDOUT out 2 at',
    ]);
    expect(await read({ containerId: 'a', streams: [LogStream.STDOUT], tail: 1 })).toEqual([
      'STDOUT out 2 at',
    ]);
    await expect(read({ containerId: 'b' })).rejects.toSatisfy(isNotFound);
    await expect(read({ containerId: 'a' }, 'other')).rejects.toSatisfy(isNotFound);
    const following = read({ containerId: 'a', follow: true, streams: [LogStream.STDERR] });
    await new Promise((r) => setTimeout(r, 20));
    reaper.exit(1000, 0);
    expect(await following).toEqual(['STDERR err 1 at']);
  });
});
