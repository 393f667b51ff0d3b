import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConsoleSocket,
  fdIO,
  nullIO,
  pipeIO,
  posixSpawner,
  Runc,
  RuncError,
  type Spawner,
} from '../src/index.js';
import { alive, makeSandbox, mountsUnder, RUNC, type Sandbox } from './helpers/rootfs.js';
import { pollWaitExit } from './helpers/wait-exit.js';

// Against the real runc (as root) with busybox bundles under a private --root.

const canRun = process.getuid?.() === 0 && existsSync(RUNC) && existsSync('/bin/busybox');

let sb: Sandbox;
let runc: Runc;
const pids: number[] = [];

async function collect(stream: NodeJS.ReadableStream | undefined): Promise<string> {
  if (!stream) return '';
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const spawners: [string, Spawner | undefined][] = [
  ['child_process', undefined],
  ['posix_spawn', posixSpawner({ waitExit: pollWaitExit })],
];

describe.runIf(canRun).each(spawners)('real runc, started with %s', (_name, spawner) => {
  beforeAll(async () => {
    sb = await makeSandbox('runc-client-real-');
    runc = new Runc({ binary: RUNC, root: sb.root, ...(spawner ? { spawner } : {}) });
  });

  afterAll(async () => {
    const dir = sb.dir;
    // Nothing left behind: no containers, no mounts, no processes, no dir.
    expect(await sb.cleanup()).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    expect(await mountsUnder(dir)).toEqual([]);
    expect(pids.filter(alive)).toEqual([]);
  });

  it('reports its version', async () => {
    const v = await runc.version();
    expect(v.runc).toMatch(/^1\.1\.5/);
    expect(v.spec).toMatch(/^1\.0/);
    expect((await runc.requireVersion()).runc).toBe(v.runc);
    expect(await runc.features()).toMatchObject({
      ociVersionMin: '1.0.0',
      hooks: expect.arrayContaining(['prestart']),
    });
    await expect(runc.requireVersion('9.0.0')).rejects.toThrow(
      /is older than 9\.0\.0; install runc 9\.0\.0 or newer/,
    );
  });

  it('create, start, state, ps, exec, pause/resume, update, stats, events, kill, delete', async () => {
    const bundle = await sb.bundle('life', { args: ['sleep', '1000'] });
    const { pid } = await runc.create('life', bundle);
    pids.push(pid);
    expect(pid).toBeGreaterThan(1);
    let st = await runc.state('life');
    expect(st).toMatchObject({ id: 'life', pid, status: 'created', bundle });

    await runc.start('life');
    st = await runc.state('life');
    expect(st.status).toBe('running');
    expect(await runc.ps('life')).toContain(pid);
    expect((await runc.list()).map((c) => c.id)).toEqual(['life']);

    // exec in the foreground with its output captured and its exit code returned
    const io = pipeIO({ stdin: false });
    const out = collect(io.stdout);
    const err = collect(io.stderr);
    const res = await runc.exec('life', {
      args: ['sh', '-c', 'echo exec-out; echo exec-err >&2; exit 5'],
      io,
    });
    expect(res).toEqual({ exitStatus: 5 });
    expect(await out).toBe('exec-out\n');
    expect(await err).toBe('exec-err\n');

    // exec detached from an OCI process spec
    const det = await runc.exec('life', {
      process: { args: ['sleep', '1000'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } },
      detach: true,
    });
    pids.push(det.pid);
    expect(await runc.ps('life')).toEqual(expect.arrayContaining([pid, det.pid]));

    await runc.pause('life');
    expect((await runc.state('life')).status).toBe('paused');
    await runc.resume('life');
    expect((await runc.state('life')).status).toBe('running');

    await runc.update('life', { pids: { limit: 42 }, memory: { limit: 64 * 1024 * 1024 } });
    const stats = await runc.stats('life');
    expect(stats.pids?.limit).toBe(42);
    expect(stats.pids?.current).toBeGreaterThanOrEqual(2);
    expect(stats.memory?.usage?.limit).toBe(64 * 1024 * 1024);

    const ac = new AbortController();
    const seen = [];
    for await (const ev of runc.events('life', { intervalMs: 200, signal: ac.signal })) {
      seen.push(ev);
      if (seen.length === 2) break;
    }
    expect(seen.map((e) => e.type)).toEqual(['stats', 'stats']);
    expect(seen[0]?.id).toBe('life');

    await runc.kill('life', 'KILL', { all: true });
    await until('the container to stop', async () =>
      (await runc.state('life')).status === 'stopped' ? true : undefined,
    );
    await runc.delete('life');
    expect(await runc.list()).toEqual([]);
    const gone = await runc.state('life').catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(RuncError);
    expect((gone as RuncError).isNotFound()).toBe(true);
  });

  it('run in the foreground propagates the exit code and output', async () => {
    const bundle = await sb.bundle('fg', { args: ['sh', '-c', 'echo out-line; exit 3'] });
    const io = pipeIO({ stdin: false });
    const out = collect(io.stdout);
    expect(await runc.run('fg', bundle, { io })).toEqual({ exitStatus: 3 });
    expect(await out).toBe('out-line\n');
    expect(await runc.list()).toEqual([]);
  });

  it('fds the caller owns and null IO', async () => {
    const bundle = await sb.bundle('fds', { args: ['sh', '-c', 'echo to-the-fd; echo err-too >&2; exit 0'] });
    const path = join(sb.dir, 'fds.out');
    const fd = openSync(path, 'w');
    try {
      expect(await runc.run('fds', bundle, { io: fdIO({ stdout: fd, stderr: fd }) })).toEqual({
        exitStatus: 0,
      });
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(path, 'utf8').split('\n').sort()).toEqual(['', 'err-too', 'to-the-fd']);
    expect(await runc.run('fds', bundle, { io: nullIO() })).toEqual({ exitStatus: 0 });
  });

  it('a container stdin is a pipe the caller writes', async () => {
    const bundle = await sb.bundle('cat', { args: ['cat'] });
    const io = pipeIO();
    const out = collect(io.stdout);
    const done = runc.run('cat', bundle, { io });
    io.stdin?.end('piped through cat\n');
    expect(await done).toEqual({ exitStatus: 0 });
    expect(await out).toBe('piped through cat\n');
  });

  it('a tty session: the pty master arrives on the console socket, resize works, output is read', async () => {
    const bundle = await sb.bundle('tty', {
      args: ['sh', '-c', 'stty size; echo tty-hello; tty'],
      terminal: true,
    });
    const sock = await ConsoleSocket.create();
    try {
      const received = sock.receive(AbortSignal.timeout(30_000));
      const { pid } = await runc.create('tty', bundle, { consoleSocket: sock });
      pids.push(pid);
      const con = await received;
      try {
        expect(con.name).toBe('/dev/ptmx');
        con.resize({ cols: 100, rows: 30 });
        const out = collect(con.readable());
        await runc.start('tty');
        const text = (await out).replace(/\r/g, '');
        expect(text).toContain('30 100\n');
        expect(text).toContain('tty-hello\n');
        expect(text).toMatch(/\/dev\/pts\/\d+/);
      } finally {
        con.close();
      }
      await until('the tty container to stop', async () =>
        (await runc.state('tty')).status === 'stopped' ? true : undefined,
      );
      await runc.delete('tty');
    } finally {
      sock.close();
    }
  });

  it('a tty session takes input through the console writable, then the console closes cleanly', async () => {
    const bundle = await sb.bundle('tty-in', {
      args: ['sh', '-c', 'read line; echo got:$line'],
      terminal: true,
    });
    const sock = await ConsoleSocket.create();
    try {
      const received = sock.receive(AbortSignal.timeout(30_000));
      const { pid } = await runc.run('tty-in', bundle, { detach: true, consoleSocket: sock });
      pids.push(pid);
      const con = await received;
      try {
        const out = collect(con.readable());
        con.writable().write('typed-in\n');
        expect((await out).replace(/\r/g, '')).toContain('got:typed-in\n');
      } finally {
        con.close();
      }
      await until('the container to stop', async () =>
        (await runc.state('tty-in')).status === 'stopped' ? true : undefined,
      );
      await runc.delete('tty-in');
    } finally {
      sock.close();
    }
  });

  it('exec --tty hands its own pty master over the console socket', async () => {
    const bundle = await sb.bundle('tty-exec', { args: ['sleep', '1000'] });
    const init = await runc.run('tty-exec', bundle, { detach: true });
    pids.push(init.pid);
    const sock = await ConsoleSocket.create();
    try {
      const received = sock.receive(AbortSignal.timeout(30_000));
      const ex = await runc.exec('tty-exec', {
        args: ['sh', '-c', 'test -t 1 && echo exec-on-a-tty'],
        tty: true,
        consoleSocket: sock,
        detach: true,
      });
      pids.push(ex.pid);
      const con = await received;
      try {
        expect((await collect(con.readable())).replace(/\r/g, '')).toBe('exec-on-a-tty\n');
      } finally {
        con.close();
      }
    } finally {
      sock.close();
    }
    await runc.delete('tty-exec', { force: true });
  });

  it('refuses a duplicate id with runc’s own message', async () => {
    const bundle = await sb.bundle('dup', { args: ['sleep', '1000'] });
    const { pid } = await runc.create('dup', bundle);
    pids.push(pid);
    const e = (await runc.create('dup', bundle).catch((x: unknown) => x)) as RuncError;
    expect(e).toBeInstanceOf(RuncError);
    expect(e.exitCode).toBe(1);
    expect(e.isAlreadyExists()).toBe(true);
    expect(e.message).toMatch(/^runc create dup: .*exists/);
    await runc.delete('dup', { force: true });
  });

  it('checkpoint reaches runc’s CRIU error as a RuncError carrying runc’s reason', async () => {
    const bundle = await sb.bundle('ckpt', { args: ['sleep', '1000'] });
    const { pid } = await runc.run('ckpt', bundle, { detach: true });
    pids.push(pid);
    const e = (await runc
      .checkpoint('ckpt', { imagePath: join(sb.dir, 'ckpt-image'), workPath: join(sb.dir, 'ckpt-work') })
      .catch((x: unknown) => x)) as RuncError;
    expect(e).toBeInstanceOf(RuncError);
    expect(e.exitCode).not.toBe(0);
    expect(e.runcMessage).toMatch(/criu/i);
    expect(e.message).toBe(`runc checkpoint ckpt: ${e.runcMessage}`);
    expect(e.argv).toContain('checkpoint');
    // CRIU's own log tail comes with it: where CRIU says what went wrong.
    expect(e.criuLog).toMatch(/\(\d+\.\d+\)/);
    await runc.delete('ckpt', { force: true });
  });
});
