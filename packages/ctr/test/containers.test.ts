import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OCI_SPEC_URL, unpackJson } from '@ctrd/api-proto';
import { afterAll, describe, expect, it } from 'vitest';
import type { OciSpec } from '../src/oci-spec.js';
import { FakeDaemon } from './fake-daemon.js';
import { runCtr } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ctr-containers-'));
const rootfs = join(dir, 'rootfs');
mkdirSync(join(rootfs, 'etc'), { recursive: true });
writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/sh\n');
writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nstaff:x:50:\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function specOf(d: FakeDaemon, ns: string, id: string): OciSpec {
  const c = d.containers.get(ns)?.get(id);
  expect(c?.spec?.typeUrl).toBe(OCI_SPEC_URL);
  return unpackJson<OciSpec>(c?.spec, OCI_SPEC_URL);
}

describe('ctr containers create', () => {
  it('builds containerd’s default Linux spec around --rootfs and the command', async () => {
    const d = new FakeDaemon();
    const res = await runCtr(['containers', 'create', '--rootfs', rootfs, 'web', 'sh', '-c', 'echo hi'], {
      routes: d.routes,
    });
    expect(res).toEqual({ code: 0, stdout: '', stderr: '' });
    const c = d.containers.get('default')?.get('web');
    expect(c?.runtime?.name).toBe('io.containerd.runc.v2');
    const spec = specOf(d, 'default', 'web');
    expect(spec.ociVersion).toBe('1.0.2-dev');
    expect(spec.root.path).toBe(rootfs);
    expect(spec.process.args).toEqual(['sh', '-c', 'echo hi']);
    expect(spec.process.cwd).toBe('/');
    expect(spec.process.user).toEqual({ uid: 0, gid: 0 });
    expect(spec.process.env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    expect(spec.process.capabilities?.bounding).toContain('CAP_NET_BIND_SERVICE');
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.mounts.map((m) => m.destination)).toEqual([
      '/proc',
      '/dev',
      '/dev/pts',
      '/dev/shm',
      '/dev/mqueue',
      '/sys',
      '/run',
    ]);
    expect(spec.linux.namespaces.map((n) => n.type)).toEqual(['pid', 'ipc', 'uts', 'mount', 'network']);
    expect(spec.linux.cgroupsPath).toBe('/default/web');
    expect(spec.linux.resources.devices[0]).toEqual({ allow: false, access: 'rwm' });
    expect(spec.linux.maskedPaths).toContain('/proc/kcore');
  });

  it('applies env, cwd, user, tty, mounts, host network and limits', async () => {
    const d = new FakeDaemon();
    const res = await runCtr(
      [
        'c',
        'create',
        '-n',
        'prod',
        '--rootfs',
        rootfs,
        '-e',
        'A=1',
        '--env',
        'PATH=/bin',
        '--cwd',
        '/srv',
        '-u',
        'www:staff',
        '-t',
        '--mount',
        'type=bind,src=/tmp,dst=/host,options=rbind:ro',
        '--net-host',
        '--memory-limit',
        '1048576',
        '--cpus',
        '0.5',
        '--label',
        'app=web',
        'api',
        'httpd',
      ],
      { routes: d.routes },
    );
    expect(res).toEqual({ code: 0, stdout: '', stderr: '' });
    const spec = specOf(d, 'prod', 'api');
    expect(spec.process.env.slice(0, 2)).toEqual(['PATH=/bin', 'A=1']);
    expect(spec.process.env[2]).toMatch(/^HOSTNAME=/);
    expect(spec.process.cwd).toBe('/srv');
    expect(spec.process.user).toEqual({ uid: 33, gid: 50 });
    expect(spec.process.terminal).toBe(true);
    expect(spec.mounts).toContainEqual({
      destination: '/host',
      type: 'bind',
      source: '/tmp',
      options: ['rbind', 'ro'],
    });
    expect(spec.mounts).toContainEqual({
      destination: '/etc/resolv.conf',
      type: 'bind',
      source: '/etc/resolv.conf',
      options: ['rbind', 'ro'],
    });
    expect(spec.linux.namespaces.map((n) => n.type)).not.toContain('network');
    expect(spec.linux.resources.memory).toEqual({ limit: 1048576 });
    expect(spec.linux.resources.cpu).toEqual({ quota: 50000, period: 100000 });
    expect(spec.linux.cgroupsPath).toBe('/prod/api');
    expect(d.containers.get('prod')?.get('api')?.labels).toEqual({ app: 'web' });
  });

  it('generates and prints an id when `--` comes before the command', async () => {
    const d = new FakeDaemon();
    const res = await runCtr(['c', 'create', '--rootfs', rootfs, '--', 'sleep', '10'], { routes: d.routes });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^[0-9a-f]{12}\n$/);
    const id = res.stdout.trim();
    expect(specOf(d, 'default', id).process.args).toEqual(['sleep', '10']);
  });

  it('rejects a missing rootfs before calling the daemon', async () => {
    const d = new FakeDaemon();
    const res = await runCtr(['c', 'create', '--rootfs', join(dir, 'nope'), 'x', 'sh'], { routes: d.routes });
    expect(res).toEqual({
      code: 2,
      stdout: '',
      stderr: `ctr: --rootfs ${join(dir, 'nope')}: no such directory\n`,
    });
    expect(d.calls).toEqual([]);
    // Without --rootfs the first argument is an image, and the container id must follow it.
    const none = await runCtr(['c', 'create', 'x'], { routes: d.routes });
    expect(none.code).toBe(2);
    expect(none.stderr).toBe('ctr: give a container id after the image x\n');
    const noCmd = await runCtr(['c', 'create', '--rootfs', rootfs, 'x'], { routes: d.routes });
    expect(noCmd).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'ctr: give the command to run after the container id (a root filesystem has no default command)\n',
    });
    expect(d.calls).toEqual([]);
  });
});

describe('ctr containers ls / info / label / rm', () => {
  function daemon(): FakeDaemon {
    const d = new FakeDaemon();
    d.addContainer('default', {
      id: 'redis',
      image: 'docker.io/library/redis:alpine',
      labels: { app: 'cache' },
    });
    d.addContainer('default', { id: 'a' });
    d.addContainer('k8s.io', { id: 'pause' });
    return d;
  }

  it('ls prints CONTAINER IMAGE RUNTIME and says which namespace', async () => {
    const res = await runCtr(['containers', 'ls'], { routes: daemon().routes });
    expect(res).toEqual({
      code: 0,
      stdout:
        'CONTAINER    IMAGE                             RUNTIME\n' +
        'a            -                                 io.containerd.runc.v2\n' +
        'redis        docker.io/library/redis:alpine    io.containerd.runc.v2\n',
      stderr: 'ctr: showing containers in namespace "default"; -n NAME or -A for others\n',
    });
  });

  it('an empty list names the namespaces that have containers', async () => {
    const d = daemon();
    d.namespaces.set('empty', {});
    const res = await runCtr(['c', 'ls', '-n', 'empty'], { routes: d.routes });
    expect(res).toEqual({
      code: 0,
      stdout: 'CONTAINER    IMAGE    RUNTIME\n',
      stderr:
        'ctr: no containers in namespace "empty"; there are some in "default" (2), "k8s.io" (1): use -n NAME or -A\n',
    });
  });

  it('-A lists every namespace with a NAMESPACE column; -q prints ids', async () => {
    const d = daemon();
    const all = await runCtr(['c', 'list', '-A'], { routes: d.routes });
    expect(all.stdout).toBe(
      'NAMESPACE    CONTAINER    IMAGE                             RUNTIME\n' +
        'default      a            -                                 io.containerd.runc.v2\n' +
        'default      redis        docker.io/library/redis:alpine    io.containerd.runc.v2\n' +
        'k8s.io       pause        -                                 io.containerd.runc.v2\n',
    );
    expect(d.calls).toContain('Containers.listStream k8s.io');
    const quiet = await runCtr(['c', 'ls', '-q'], { routes: d.routes });
    expect(quiet).toEqual({ code: 0, stdout: 'a\nredis\n', stderr: '' });
  });

  it('ls --json has the documented shape; falls back to List without ListStream', async () => {
    const d = daemon();
    d.listStreamImplemented = false;
    const res = await runCtr(['c', 'ls', '--json', 'labels.app==cache'], { routes: d.routes });
    expect(res.code).toBe(0);
    expect(d.calls).toContain('Containers.list default');
    const parsed = JSON.parse(res.stdout);
    expect(parsed[1]).toEqual({
      namespace: 'default',
      id: 'redis',
      image: 'docker.io/library/redis:alpine',
      runtime: { name: 'io.containerd.runc.v2' },
      labels: { app: 'cache' },
      snapshotter: '',
      snapshotKey: '',
      createdAt: '2026-11-23T08:00:00.000Z',
      updatedAt: '2026-11-23T08:00:00.000Z',
    });
  });

  it('info prints the container with its spec decoded; a missing one exits 1', async () => {
    const d = new FakeDaemon();
    await runCtr(['c', 'create', '--rootfs', rootfs, 'web', 'true'], { routes: d.routes });
    const res = await runCtr(['c', 'info', 'web'], { routes: d.routes });
    expect(res.code).toBe(0);
    const info = JSON.parse(res.stdout);
    expect(info.id).toBe('web');
    expect(info.spec.process.args).toEqual(['true']);
    const spec = await runCtr(['c', 'info', '--spec', 'web'], { routes: d.routes });
    expect(JSON.parse(spec.stdout).root.path).toBe(rootfs);
    const missing = await runCtr(['c', 'info', 'ghost'], { routes: d.routes });
    expect(missing).toEqual({
      code: 1,
      stdout: '',
      stderr: 'ctr: container "ghost" in namespace "default": not found\n',
    });
  });

  it('label updates per key and prints the labels', async () => {
    const d = daemon();
    const res = await runCtr(['c', 'label', 'redis', 'app=', 'tier=db'], { routes: d.routes });
    expect(res).toEqual({ code: 0, stdout: 'tier=db\n', stderr: '' });
    const json = await runCtr(['c', 'label', '--json', 'redis', 'z=1'], { routes: d.routes });
    expect(JSON.parse(json.stdout)).toEqual({ tier: 'db', z: '1' });
    expect(JSON.parse((await runCtr(['c', 'info', '--json', 'redis'], { routes: d.routes })).stdout).id).toBe(
      'redis',
    );
  });

  it('rejects unknown flags even where any number of arguments is allowed', async () => {
    const d = daemon();
    const res = await runCtr(['c', 'rm', '--frob', 'a'], { routes: d.routes });
    expect(res).toEqual({
      code: 2,
      stdout: '',
      stderr: "ctr: nonexistent flag: --frob\nsee 'ctr c rm --help'\n",
    });
    expect(d.containers.get('default')?.has('a')).toBe(true);
  });

  it('rm deletes each container and reports the ones it could not', async () => {
    const d = daemon();
    const res = await runCtr(['c', 'rm', 'a', 'ghost', 'redis'], { routes: d.routes });
    expect(res).toEqual({
      code: 1,
      stdout: '',
      stderr: 'ctr: container "ghost" in namespace "default": not found\n',
    });
    expect([...(d.containers.get('default')?.keys() ?? [])]).toEqual([]);
  });
});
