import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callsLogged, type DaemonProcess, runCtrd, startDaemon } from './helpers/daemon.js';
import { CTR, ctrOk, ctrRun } from './tasks-support.js';

// The real ctrd process on a private temp root, state dir and socket, driven by the stock
// containerd 1.6 `ctr` (never the system containerd) and by curl over Connect JSON.

const exec = promisify(execFile);

let d: DaemonProcess;
let rootfs: string;
let scratch: string;

const ctr = (...args: string[]) => ctrRun(d, args, 20_000);
const ok = (...args: string[]) => ctrOk(d, args);

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'ctrd-core-'));
  rootfs = join(scratch, 'rootfs');
  await mkdir(rootfs);
  // In the test's own dir: the restarts below start new daemons on it, and the whole dir goes at the end.
  d = await startDaemon({ dir: join(scratch, 'd') });
});

afterAll(async () => {
  await d?.dispose();
  await rm(scratch, { recursive: true, force: true });
});

describe('ctrd driven by stock ctr 1.6', () => {
  it('sets up its directories and socket with the right modes', async () => {
    expect((await stat(d.root)).mode & 0o777).toBe(0o700);
    expect((await stat(d.state)).mode & 0o777).toBe(0o711);
    const sock = await stat(d.socket);
    expect(sock.isSocket()).toBe(true);
    expect(sock.mode & 0o777).toBe(0o660);
  });

  it('version', async () => {
    const out = await ok('version');
    expect(out).toMatch(/Server:\s+Version:\s+\d+\.\d+\.\d+/);
    expect(out).toMatch(/UUID: [0-9a-f-]{36}/);
  });

  it('namespaces create, ls, label, rm', async () => {
    await ok('namespaces', 'create', 'team-a', 'owner=alice');
    await ok('namespaces', 'label', 'team-a', 'tier=gold');
    await ok('namespaces', 'label', 'team-a', 'owner=');
    const ls = await ok('namespaces', 'ls');
    expect(ls).toMatch(/^team-a\s+tier=gold\s*$/m);
    const dup = await ctr('namespaces', 'create', 'team-a');
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toMatch(/already exists/);
    await ok('namespaces', 'rm', 'team-a');
    expect(await ok('namespaces', 'ls')).not.toMatch(/team-a/);
  });

  it('containers create, ls, info, label, rm; a non-empty namespace cannot be removed', async () => {
    await ok('containers', 'create', '--label', 'app=web', '--rootfs', rootfs, 'web', '/bin/true');
    expect(await ok('containers', 'ls')).toMatch(/^web\s+-\s+io\.containerd\.runc\.v2\s*$/m);
    const info = JSON.parse(await ok('containers', 'info', 'web'));
    expect(info.ID).toBe('web');
    expect(info.Labels).toEqual({ app: 'web' });
    expect(info.Runtime.Name).toBe('io.containerd.runc.v2');
    expect(info.Spec.process.args).toEqual(['/bin/true']);
    expect(info.Spec.root.path).toBe(rootfs);
    expect(await ok('containers', 'label', 'web', 'tier=front')).toMatch(/tier=front/);
    expect(JSON.parse(await ok('containers', 'info', 'web')).Labels).toEqual({ app: 'web', tier: 'front' });
    const busy = await ctr('namespaces', 'rm', 'default');
    expect(busy.code).not.toBe(0);
    expect(busy.stderr).toMatch(/must be empty, but it still has containers/);
    const bad = await ctr('containers', 'create', '--rootfs', rootfs, 'bad/id', '/bin/true');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/invalid argument/);
    await ok('containers', 'rm', 'web');
    expect(await ok('containers', 'ls')).not.toMatch(/web/);
    const gone = await ctr('containers', 'info', 'web');
    expect(gone.stderr).toMatch(/container "web" in namespace "default": not found/);
  });

  it('leases ls', async () => {
    expect(await ok('leases', 'ls')).toMatch(/^ID\s+CREATED AT\s+LABELS/);
  });

  it('events sees /containers/create from another client', async () => {
    const subscribed = callsLogged(d, 'Events/Subscribe');
    const sub = spawn(CTR, ['--address', d.socket, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    sub.stdout.on('data', (b) => {
      out += b;
    });
    try {
      // Subscribe is live only: wait until the daemon serves the stream.
      await expect.poll(() => callsLogged(d, 'Events/Subscribe')).toBeGreaterThan(subscribed);
      await ok('containers', 'create', '--rootfs', rootfs, 'evt', '/bin/true');
      await expect.poll(() => out).toMatch(/\/containers\/create/);
      expect(out).toMatch(/default\s+\/containers\/create\s+\{.*"id":"evt"/);
    } finally {
      sub.kill('SIGTERM');
      await ctr('containers', 'rm', 'evt');
    }
  });

  it('Connect JSON on the same socket (curl)', async () => {
    await ok('containers', 'create', '--rootfs', rootfs, 'json1', '/bin/true');
    const { stdout } = await exec('curl', [
      '-sS',
      '--unix-socket',
      d.socket,
      '--http2-prior-knowledge',
      '-H',
      'content-type: application/json',
      '-H',
      'containerd-namespace: default',
      '-d',
      '{}',
      'http://localhost/containerd.services.containers.v1.Containers/List',
    ]);
    const body = JSON.parse(stdout);
    expect(body.containers.map((c: { id: string }) => c.id)).toEqual(['json1']);
    expect(body.containers[0].runtime.name).toBe('io.containerd.runc.v2');
    // The OCI spec (JSON bytes on the wire) reads as a google.protobuf.Value Any in JSON.
    expect(body.containers[0].spec['@type']).toBe('type.googleapis.com/google.protobuf.Value');
    expect(body.containers[0].spec.value.process.args).toEqual(['/bin/true']);
    await ok('containers', 'rm', 'json1');
  });

  it('--debug logs each call with method, namespace, duration and code', () => {
    const lines = d
      .logs()
      .split('\n')
      .filter((l) => l.includes('"msg":"call"'))
      .map((l) => JSON.parse(l));
    expect(lines).toContainEqual(
      expect.objectContaining({
        method: 'containerd.services.containers.v1.Containers/Create',
        namespace: 'default',
        code: 'ok',
        ms: expect.any(Number),
      }),
    );
  });

  it('a second ctrd on the same root exits non-zero at once with a clear message', async () => {
    const r = await runCtrd([
      '--config',
      '/dev/null',
      '--root',
      d.root,
      '--state-dir',
      d.state,
      '--listen',
      join(d.dir, 'other.sock'),
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`root ${d.root}: another ctrd is running on it \\(pid ${d.pid}\\)`));
    // and the first one is unaffected
    expect(await ok('version')).toMatch(/Server:/);
  });

  it('bad flags exit 2 with usage; bad values name the flag', async () => {
    const r = await runCtrd(['--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/usage: ctrd/);
    const v = await runCtrd(['--config', '/dev/null', '--metrics-interval', 'soon']);
    expect(v.code).toBe(2);
    expect(v.stderr).toMatch(/--metrics-interval/);
    const c = await runCtrd(['config', 'default']);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/^metrics_interval = "1m0s"$/m);
  });

  it('restart after SIGTERM, then after SIGKILL, keeps everything', async () => {
    await ok('namespaces', 'create', 'keep', 'k=v');
    await ok('-n', 'keep', 'containers', 'create', '--label', 'x=y', '--rootfs', rootfs, 'kept', '/bin/true');
    const uuid = (await ok('version')).match(/UUID: (\S+)/)?.[1];

    const term = await d.stop('SIGTERM');
    expect(term).toEqual({ code: 0, signal: null });
    d = await startDaemon({ dir: d.dir });
    expect(JSON.parse(await ok('-n', 'keep', 'containers', 'info', 'kept')).Labels).toEqual({ x: 'y' });
    expect(await ok('namespaces', 'ls')).toMatch(/^keep\s+k=v/m);
    expect((await ok('version')).match(/UUID: (\S+)/)?.[1]).toBe(uuid);

    const killed = await d.stop('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    // The kernel dropped the root lock with the process; the stale socket is replaced.
    d = await startDaemon({ dir: d.dir });
    expect(JSON.parse(await ok('-n', 'keep', 'containers', 'info', 'kept')).ID).toBe('kept');
    await ok('-n', 'keep', 'containers', 'rm', 'kept');
    await ok('namespaces', 'rm', 'keep');
  });
});
