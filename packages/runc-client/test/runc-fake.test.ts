import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compareVersions, fileIO, pipeIO, Runc, RuncError, RuncValidationError } from '../src/index.js';
import { type FakeRunc, makeFakeRunc } from './helpers/fake-runc.js';

let fake: FakeRunc;
/** A bundle dir with a minimal config.json (the client checks it before runc runs). */
let B: string;
beforeEach(async () => {
  fake = await makeFakeRunc();
  B = join(fake.dir, 'bundle');
  await mkdir(B);
  await writeFile(
    join(B, 'config.json'),
    JSON.stringify({ ociVersion: '1.0.2', process: { cwd: '/', args: ['sh'] } }),
  );
});
afterEach(async () => {
  await fake.cleanup();
});

const runcWith = (
  env: Record<string, string> = {},
  extra: Partial<ConstructorParameters<typeof Runc>[0]> = {},
) => new Runc({ binary: fake.binary, root: '/run/test-root', env: fake.env(env), ...extra });

const ERR = (msg: string) => JSON.stringify({ level: 'error', msg, time: '2024-01-01T00:00:00Z' });

describe('argv reaching runc', () => {
  it('puts global flags before the verb', async () => {
    const runc = runcWith({}, { systemdCgroup: true, debug: true, criu: '/c', rootless: true });
    await runc.start('c1');
    expect(await fake.argv()).toEqual([
      '--root',
      '/run/test-root',
      '--log-format',
      'json',
      '--systemd-cgroup',
      '--rootless',
      'true',
      '--debug',
      '--criu',
      '/c',
      'start',
      'c1',
    ]);
  });

  it('create returns the pid from a temp pid file, and removes the file', async () => {
    const { pid } = await runcWith({ FAKE_RUNC_PID: '777' }).create('c1', B, { noPivot: true });
    expect(pid).toBe(777);
    const args = await fake.argv();
    const pidFile = args[args.indexOf('--pid-file') + 1] as string;
    expect(args.slice(args.indexOf('create'))).toEqual([
      'create',
      '--bundle',
      B,
      '--pid-file',
      pidFile,
      '--no-pivot',
      'c1',
    ]);
    expect(existsSync(pidFile)).toBe(false);
  });

  it('create with container IO sends runc errors to a per-call log, not to the container stderr', async () => {
    const runc = runcWith({ FAKE_RUNC_LOG: ERR('runc create failed: boom'), FAKE_RUNC_EXIT: '1' });
    const io = pipeIO({ stdin: false });
    let err = '';
    io.stderr?.on('data', (d) => {
      err += d;
    });
    const e = await runc.create('c1', B, { io }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RuncError);
    expect((e as RuncError).runcMessage).toBe('runc create failed: boom');
    expect((e as RuncError).exitCode).toBe(1);
    const args = await fake.argv();
    expect(args).toContain('--log');
    io.close();
    expect(err).toBe('');
  });

  it('exec writes the process spec to a temp file and returns the detached pid', async () => {
    const spec = { args: ['sh'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 }, terminal: false };
    const r = await runcWith({ FAKE_RUNC_PID: '99' }).exec('c1', { process: spec, detach: true });
    expect(r).toEqual({ pid: 99 });
    expect(await fake.processJson()).toEqual(spec);
    const args = await fake.argv();
    expect(args.slice(args.indexOf('exec'))).toEqual([
      'exec',
      '--detach',
      '--pid-file',
      expect.stringMatching(/\/pid$/),
      '--process',
      expect.stringMatching(/process\.json$/),
      'c1',
    ]);
  });

  it('exec in the foreground returns the process exit code, output through pipes', async () => {
    const io = pipeIO({ stdin: false });
    let out = '';
    io.stdout?.on('data', (d) => {
      out += d;
    });
    const ended = new Promise((res) => io.stdout?.once('end', res));
    const r = await runcWith({ FAKE_RUNC_CHILD_STDOUT: 'hello\n', FAKE_RUNC_EXIT: '42' }).exec('c1', {
      args: ['echo', 'hello'],
      io,
    });
    expect(r).toEqual({ exitStatus: 42 });
    await ended;
    expect(out).toBe('hello\n');
  });

  it('run in the foreground: the container exit code is a result, a logged error is a RuncError', async () => {
    expect(await runcWith({ FAKE_RUNC_EXIT: '3' }).run('c1', B)).toEqual({ exitStatus: 3 });
    const e = await runcWith({ FAKE_RUNC_EXIT: '1', FAKE_RUNC_LOG: ERR('unable to start container process') })
      .run('c1', B)
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RuncError);
    expect((e as Error).message).toBe('runc run c1: unable to start container process');
  });

  it('run detached returns the pid', async () => {
    expect(await runcWith({ FAKE_RUNC_PID: '1234' }).run('c1', B, { detach: true, keep: true })).toEqual({
      pid: 1234,
    });
    expect(await fake.argv()).toEqual(expect.arrayContaining(['--detach', '--keep']));
  });

  it('update sends the resources JSON on stdin', async () => {
    const res = { memory: { limit: 1048576 }, pids: { limit: 10 } };
    await runcWith({ FAKE_RUNC_READ_STDIN: '1' }).update('c1', res);
    expect(JSON.parse(await fake.stdin())).toEqual(res);
    const args = await fake.argv();
    expect(args.slice(args.indexOf('update'))).toEqual(['update', '--resources', '-', 'c1']);
  });

  it('kill, delete, pause, resume, checkpoint and restore pass their flags', async () => {
    const runc = runcWith();
    const tail = async () => {
      const a = await fake.argv();
      return a.slice(4);
    };
    await runc.kill('c1', 'SIGTERM', { all: true });
    expect(await tail()).toEqual(['kill', '--all', 'c1', 'SIGTERM']);
    await runc.kill('c1', 9);
    expect(await tail()).toEqual(['kill', 'c1', '9']);
    await runc.delete('c1', { force: true });
    expect(await tail()).toEqual(['delete', '--force', 'c1']);
    await runc.pause('c1');
    expect(await tail()).toEqual(['pause', 'c1']);
    await runc.resume('c1');
    expect(await tail()).toEqual(['resume', 'c1']);
    await runc.checkpoint('c1', { imagePath: '/img', leaveRunning: true, emptyNamespaces: ['network'] });
    expect(await tail()).toEqual([
      'checkpoint',
      '--image-path',
      '/img',
      '--empty-ns',
      'network',
      '--leave-running',
      'c1',
    ]);
    expect(await runc.restore('c1', { bundle: B, imagePath: '/img', detach: true })).toEqual({
      pid: 4242,
    });
  });
});

describe('parsed output', () => {
  it('state, list, ps', async () => {
    const st = {
      ociVersion: '1.0.2',
      id: 'c1',
      pid: 10,
      status: 'running',
      bundle: B,
      rootfs: '/b/rootfs',
      created: 'x',
    };
    expect(await runcWith({ FAKE_RUNC_STDOUT: JSON.stringify(st) }).state('c1')).toEqual(st);
    expect(await runcWith({ FAKE_RUNC_STDOUT: 'null' }).list()).toEqual([]);
    expect(await runcWith({ FAKE_RUNC_STDOUT: JSON.stringify([st]) }).list()).toEqual([st]);
    expect(await runcWith({ FAKE_RUNC_STDOUT: '[10,11]' }).ps('c1')).toEqual([10, 11]);
    expect((await fake.argv()).slice(4)).toEqual(['ps', '--format', 'json', 'c1']);
  });

  it('version', async () => {
    const out =
      'runc version 1.1.5\ncommit: v1.1.5-0-gf19387a\nspec: 1.0.2-dev\ngo: go1.19.8\nlibseccomp: 2.5.4\n';
    expect(await runcWith({ FAKE_RUNC_STDOUT: out }).version()).toEqual({
      runc: '1.1.5',
      commit: 'v1.1.5-0-gf19387a',
      spec: '1.0.2-dev',
      go: 'go1.19.8',
      libseccomp: '2.5.4',
    });
    expect((await fake.argv()).slice(-1)).toEqual(['--version']);
  });

  it('features', async () => {
    expect(await runcWith({ FAKE_RUNC_STDOUT: '{"ociVersionMin":"1.0.0"}' }).features()).toEqual({
      ociVersionMin: '1.0.0',
    });
  });

  it('events --stats returns the stats data', async () => {
    const ev = { type: 'stats', id: 'c1', data: { pids: { current: 2 } } };
    expect(await runcWith({ FAKE_RUNC_STDOUT: JSON.stringify(ev) }).stats('c1')).toEqual({
      pids: { current: 2 },
    });
    expect((await fake.argv()).slice(4)).toEqual(['events', '--stats', 'c1']);
  });

  it('events streams typed events line by line', async () => {
    const lines = [
      { type: 'stats', id: 'c1', data: { pids: { current: 1 } } },
      { type: 'oom', id: 'c1' },
    ];
    const runc = runcWith({ FAKE_RUNC_STDOUT: `${lines.map((l) => JSON.stringify(l)).join('\n')}\n` });
    const got = [];
    for await (const ev of runc.events('c1', { intervalMs: 1000 })) got.push(ev);
    expect(got).toEqual(lines);
    expect((await fake.argv()).slice(4)).toEqual(['events', '--interval', '1000ms', 'c1']);
  });

  it('a non-JSON answer is an error that shows the output', async () => {
    await expect(runcWith({ FAKE_RUNC_STDOUT: 'garbage' }).state('c1')).rejects.toThrow(
      /not JSON: "garbage"/,
    );
  });
});

describe('errors', () => {
  it('carries runc JSON log message, exit code and argv', async () => {
    const e = (await runcWith({ FAKE_RUNC_EXIT: '1', FAKE_RUNC_LOG: ERR('container does not exist') })
      .start('c9')
      .catch((x: unknown) => x)) as RuncError;
    expect(e).toBeInstanceOf(RuncError);
    expect(e.message).toBe('runc start c9: container does not exist');
    expect(e.exitCode).toBe(1);
    expect(e.argv).toEqual([fake.binary, '--root', '/run/test-root', '--log-format', 'json', 'start', 'c9']);
    expect(e.isNotFound()).toBe(true);
  });

  it('reads text-format logs too', async () => {
    const e = (await runcWith(
      {
        FAKE_RUNC_EXIT: '1',
        FAKE_RUNC_LOG: 'time="2024-01-01T00:00:00Z" level=error msg="container with given ID already exists"',
      },
      { logFormat: 'text' },
    )
      .kill('c1', 'KILL')
      .catch((x: unknown) => x)) as RuncError;
    expect(e.runcMessage).toBe('container with given ID already exists');
    expect(e.isAlreadyExists()).toBe(true);
  });

  it('reads errors from a configured --log file (only the lines of this call)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'runc-log-'));
    try {
      const log = join(dir, 'runc.log');
      const runc = runcWith({ FAKE_RUNC_EXIT: '1', FAKE_RUNC_LOG: ERR('first failure') }, { log });
      await expect(runc.create('c1', B, { io: pipeIO() })).rejects.toThrow('runc create c1: first failure');
      const runc2 = runcWith({ FAKE_RUNC_EXIT: '1', FAKE_RUNC_LOG: ERR('second failure') }, { log });
      await expect(runc2.create('c1', B, { io: pipeIO() })).rejects.toThrow('runc create c1: second failure');
      expect(await readFile(log, 'utf8')).toContain('first failure');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('falls back to plain stderr', async () => {
    await expect(
      runcWith({ FAKE_RUNC_EXIT: '2', FAKE_RUNC_STDERR: 'flag provided but not defined: -x' }).pause('c1'),
    ).rejects.toThrow('runc pause c1: flag provided but not defined: -x');
  });
});

describe('validation before runc runs', () => {
  it('a runc older than the minimum is refused by requireVersion', async () => {
    const old = runcWith({ FAKE_RUNC_STDOUT: 'runc version 1.0.3\ncommit: v1.0.3\nspec: 1.0.2-dev\n' });
    await expect(old.requireVersion()).rejects.toThrow(
      `runc binary ${fake.binary}: version 1.0.3 is older than 1.1.0; install runc 1.1.0 or newer`,
    );
    const ok = runcWith({ FAKE_RUNC_STDOUT: 'runc version 1.1.5+ds1\nspec: 1.0.2-dev\n' });
    expect((await ok.requireVersion()).runc).toBe('1.1.5+ds1');
    expect(compareVersions('1.2.0-rc.1', '1.1.12')).toBeGreaterThan(0);
    expect(compareVersions('1.1', '1.1.0')).toBe(0);
  });

  it('a bundle without a usable config.json', async () => {
    const empty = join(fake.dir, 'empty');
    await mkdir(empty);
    await expect(runcWith().create('c1', empty)).rejects.toThrow(
      `runc create c1: bundle ${empty} has no config.json; write the OCI spec there (e.g. runc spec --bundle ${empty})`,
    );
    await writeFile(join(empty, 'config.json'), '{"ociVersion": "1.0.2",');
    await expect(runcWith().run('c1', empty)).rejects.toThrow(/config.json is not valid JSON/);
    expect(await fake.called()).toBe(false);
  });

  it('a process cwd that is relative or under /proc/*/fd, and out-of-range ids', async () => {
    await writeFile(
      join(B, 'config.json'),
      JSON.stringify({ process: { cwd: '/proc/self/fd/7', args: ['sh'] } }),
    );
    await expect(runcWith().create('c1', B)).rejects.toThrow(
      /under \/proc\/\*\/fd, which can reach the host/,
    );
    const r = runcWith();
    await expect(r.exec('c1', { args: ['sh'], cwd: 'tmp' })).rejects.toThrow(/must be an absolute path/);
    await expect(r.exec('c1', { args: ['sh'], cwd: '/proc/1/fd/../fd/3' })).rejects.toThrow(/under \/proc/);
    for (const uid of [-1, 2 ** 31, 2 ** 32, 2 ** 53 + 2, 1.5]) {
      await expect(
        r.exec('c1', { process: { cwd: '/', args: ['id'], user: { uid, gid: 0 } } }),
      ).rejects.toThrow(/uid .* is invalid; use an integer from 0 to 2147483647/);
    }
    await expect(
      r.exec('c1', {
        process: { cwd: '/', args: ['id'], user: { uid: 0, gid: 0, additionalGids: [2 ** 32] } },
      }),
    ).rejects.toThrow(/additional gid/);
    expect(await fake.called()).toBe(false);
  });

  it('a refused call closes the container ends of the IO, so the caller streams end', async () => {
    const io = pipeIO();
    const ended = new Promise((r) => io.stdout?.once('close', r));
    io.stdout?.resume();
    await expect(runcWith().run('c1', 'relative', { io })).rejects.toBeInstanceOf(RuncValidationError);
    await ended;
    io.close();
  });

  it('a missing binary says how to fix it', async () => {
    const runc = new Runc({ binary: '/nonexistent/runc' });
    await expect(runc.state('c1')).rejects.toThrow(
      /runc binary \/nonexistent\/runc: not found or not executable; install runc or pass its path/,
    );
    await expect(runc.state('c1')).rejects.toBeInstanceOf(RuncValidationError);
    const byName = new Runc({ binary: 'runc-does-not-exist', env: { PATH: '/nowhere' } });
    await expect(byName.list()).rejects.toThrow(/not found in PATH/);
  });

  it('a relative bundle is refused', async () => {
    await expect(runcWith().create('c1', 'bundle')).rejects.toThrow(
      /bundle path "bundle" is relative; pass an absolute path/,
    );
    await expect(runcWith().run('c1', './b')).rejects.toBeInstanceOf(RuncValidationError);
    expect(await fake.called()).toBe(false);
  });

  it('an id runc would reject is refused', async () => {
    for (const id of ['', 'a/b', '..', '.', 'has space', 'semi;colon']) {
      await expect(runcWith().start(id)).rejects.toBeInstanceOf(RuncValidationError);
    }
    await expect(runcWith().delete('a/b')).rejects.toThrow(
      /container id "a\/b" is invalid; use only letters/,
    );
    expect(await fake.called()).toBe(false);
    await runcWith().start('ok_id-1.2+x');
    expect(await fake.called()).toBe(true);
  });

  it('relative root and image paths are refused', async () => {
    expect(() => new Runc({ root: 'state' })).toThrow(/root path "state" is relative/);
    await expect(runcWith().checkpoint('c1', { imagePath: 'img' })).rejects.toThrow(
      /image path "img" is relative/,
    );
  });
});

describe('abort', () => {
  it('an aborted signal stops before running', async () => {
    await expect(runcWith().start('c1', { signal: AbortSignal.abort() })).rejects.toThrow();
    expect(await fake.called()).toBe(false);
  });

  it('aborting kills runc', async () => {
    const t0 = Date.now();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await expect(runcWith({ FAKE_RUNC_SLEEP: '30' }).pause('c1', { signal: ac.signal })).rejects.toThrow();
    // Killed, not waited for: well before the 30 s the fake would sleep.
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('breaking out of an events stream ends it at once', async () => {
    const runc = runcWith({ FAKE_RUNC_STDOUT: '{"type":"oom","id":"c1"}\n', FAKE_RUNC_SLEEP: '30' });
    const t0 = Date.now();
    for await (const ev of runc.events('c1')) {
      expect(ev).toEqual({ type: 'oom', id: 'c1' });
      break;
    }
    // Ended, not waited for: well before the 30 s the fake would sleep.
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('aborting stops an events stream', async () => {
    const ac = new AbortController();
    const runc = runcWith({
      FAKE_RUNC_STDOUT: '{"type":"stats","id":"c1","data":{}}\n',
      FAKE_RUNC_SLEEP: '10',
    });
    const got: unknown[] = [];
    const p = (async () => {
      for await (const ev of runc.events('c1', { signal: ac.signal })) {
        got.push(ev);
        ac.abort();
      }
    })();
    await expect(p).rejects.toThrow();
    expect(got).toHaveLength(1);
  });
});

describe('file IO', () => {
  it('appends the container output to files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'runc-fileio-'));
    try {
      const out = join(dir, 'out.log');
      await runcWith({ FAKE_RUNC_CHILD_STDOUT: 'to the file\n' }).run('c1', B, {
        io: fileIO({ stdout: out, stderr: out }),
      });
      expect(await readFile(out, 'utf8')).toBe('to the file\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
