import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectRouter } from '@connectrpc/connect';
import { OCI_SPEC_URL, unpackJson } from '@ctrd/api-proto';
import { ImagesService } from '@ctrd/api-proto/images';
import { LeasesService } from '@ctrd/api-proto/leases';
import { NamespacesService } from '@ctrd/api-proto/namespaces';
import { chainIds } from '@ctrd/api-proto/oci';
import { Kind } from '@ctrd/api-proto/snapshots';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OciSpec } from '../src/oci-spec.js';
import { FakeDaemon } from './fake-daemon.js';
import { FakeStore } from './fake-store.js';
import { FakeTasks } from './fake-tasks.js';
import { runCtr } from './helpers.js';
import { image, layer, ociArchive, type TestImage } from './oci-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ctr-run-image-'));
const fifoDir = join(dir, 'fifo');
mkdirSync(fifoDir);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let d: FakeDaemon;
let t: FakeTasks;
let s: FakeStore;
let routes: (router: ConnectRouter) => void;
let img: TestImage;

/** Registers only the services not in `skip`: the fakes overlap on a few. */
function except(router: ConnectRouter, skip: unknown[]): ConnectRouter {
  return new Proxy(router, {
    get(target, prop, receiver) {
      if (prop === 'service') {
        return (svc: unknown, impl: unknown, opts: unknown) =>
          skip.includes(svc)
            ? target
            : (target.service as (...a: unknown[]) => ConnectRouter)(svc, impl, opts);
      }
      return Reflect.get(target, prop, receiver);
    },
  });
}

const specOf = (id: string, ns = 'default') => {
  const c = d.containers.get(ns)?.get(id);
  return unpackJson<OciSpec>(c!.spec!, OCI_SPEC_URL);
};

beforeEach(async () => {
  d = new FakeDaemon();
  t = new FakeTasks();
  s = new FakeStore();
  t.argsOf = (ns, id) => {
    const c = d.containers.get(ns)?.get(id);
    return c?.spec ? unpackJson<OciSpec>(c.spec, OCI_SPEC_URL).process.args : [];
  };
  routes = (router) => {
    d.routes(except(router, [ImagesService, LeasesService]));
    t.routes(router);
    s.routes(except(router, [NamespacesService]));
  };
  const base = await layer({
    'bin/sh': 'shell',
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n',
    'etc/group': 'root:x:0:\napp:x:1002:\nvideo:x:44:app\n',
  });
  img = image([base], {
    Entrypoint: ['/bin/sh', '-c'],
    Cmd: ['echo $GREETING from $(pwd)'],
    Env: ['PATH=/bin', 'GREETING=hi'],
    WorkingDir: '/app',
    User: 'app',
    StopSignal: 'SIGINT',
  });
  const file = join(dir, 'img.tar');
  writeFileSync(file, await ociArchive(img, { 'io.containerd.image.name': 'docker.io/library/tool:1' }));
  const res = await runCtr(['i', 'import', '--no-unpack', file], { routes });
  expect(res.code).toBe(0);
});
afterEach(() => s.cleanup());

describe('ctr run IMAGE', () => {
  it('unpacks, prepares the snapshot, builds the spec from the image config and cleans up with --rm', async () => {
    const res = await runCtr(['run', '--rm', '--fifo-dir', fifoDir, 'tool:1', 'job'], { routes });
    expect(res.stdout).toBe('ran /bin/sh -c echo $GREETING from $(pwd)\n');
    expect(res.code).toBe(0);
    expect(res.stderr).toContain('unpacking linux/');
    const chain = chainIds(img.layers.map((l) => l.diffId))[0]!;
    expect(s.snapshot('default', chain)?.kind).toBe(Kind.COMMITTED);
    // --rm removed the container and its snapshot; the lease is gone.
    expect(d.containers.get('default')?.has('job')).toBe(false);
    expect(s.snapshot('default', 'job')).toBeUndefined();
    expect(s.leases.size).toBe(0);
    expect(readdirSync(fifoDir)).toEqual([]);
  });

  it('creates the container record with image, snapshotter, snapshot key, stop signal and spec', async () => {
    const res = await runCtr(
      [
        'c',
        'create',
        '--env',
        'GREETING=hello',
        '--label',
        'x=y',
        'docker.io/library/tool:1',
        'box',
        'id',
        '-u',
      ],
      { routes },
    );
    expect(res).toMatchObject({ code: 0, stdout: '' });
    const c = d.containers.get('default')?.get('box');
    expect(c).toMatchObject({
      image: 'docker.io/library/tool:1',
      snapshotter: 'overlayfs',
      snapshotKey: 'box',
      labels: { 'io.containerd.image.config.stop-signal': 'SIGINT', x: 'y' },
    });
    const spec = specOf('box');
    expect(spec.process.args).toEqual(['/bin/sh', '-c', 'id', '-u']);
    expect(spec.process.env).toEqual(['PATH=/bin', 'GREETING=hello']);
    expect(spec.process.cwd).toBe('/app');
    // The user came from the image's /etc/passwd and /etc/group, read through a read-only mount.
    expect(spec.process.user).toEqual({ uid: 1001, gid: 1002, additionalGids: [44, 1002] });
    expect(spec.root.path).toBe('rootfs');
    const snap = s.snapshot('default', 'box');
    expect(snap?.kind).toBe(Kind.ACTIVE);
    expect(snap?.parent).toBe(chainIds(img.layers.map((l) => l.diffId))[0]);
    expect(s.leased).toContain('Snapshots.prepare');
    // Two containers from one image do not share env (CVE-2021-21334).
    await runCtr(['c', 'create', '--env', 'OTHER=1', 'docker.io/library/tool:1', 'box2'], { routes });
    expect(specOf('box2').process.env).toEqual(['PATH=/bin', 'GREETING=hi', 'OTHER=1']);
    expect(specOf('box2').process.args).toEqual(['/bin/sh', '-c', 'echo $GREETING from $(pwd)']);
    // c rm removes the snapshot unless --keep-snapshot.
    await runCtr(['c', 'rm', '--keep-snapshot', 'box2'], { routes });
    expect(s.snapshot('default', 'box2')).toBeDefined();
    await runCtr(['c', 'rm', 'box'], { routes });
    expect(s.snapshot('default', 'box')).toBeUndefined();
  });

  it('a missing image, an existing snapshot key and a bad user leave nothing behind', async () => {
    const missing = await runCtr(['run', '--rm', '--fifo-dir', fifoDir, 'nope:1', 'j1'], { routes });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('image "nope:1": not found: import or pull it first');
    const bad = await runCtr(['c', 'create', '-u', 'ghost', 'docker.io/library/tool:1', 'j2'], { routes });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('user "ghost": no such user');
    expect(s.snapshot('default', 'j2')).toBeUndefined();
    expect(d.containers.get('default')?.has('j2') ?? false).toBe(false);
    await runCtr(['c', 'create', 'docker.io/library/tool:1', 'j3'], { routes });
    const dup = await runCtr(['c', 'create', '--label', 'a=b', 'docker.io/library/tool:1', 'j3'], { routes });
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('snapshot "j3" in overlayfs already exists');
    expect(s.leases.size).toBe(0);
  });

  it('refuses a malformed image reference before any call', async () => {
    const calls = [...d.calls];
    const storeCalls = [...s.calls];
    for (const ref of ['Bad//Ref', 'bad//ref', 'x::y']) {
      const res = await runCtr(['run', '--rm', '--fifo-dir', fifoDir, ref, 'c2'], { routes });
      expect(res.code).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr).toMatch(
        new RegExp(`^ctr: image reference "${ref.replace(/[/]/g, '\\/')}": invalid reference format`),
      );
      const created = await runCtr(['c', 'create', ref, 'c3'], { routes });
      expect(created.stderr).toBe(res.stderr);
    }
    expect(d.calls).toEqual(calls);
    expect(s.calls).toEqual(storeCalls);
  });

  it('usage errors: image without an id', async () => {
    const res = await runCtr(['run', 'docker.io/library/tool:1'], { routes });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('give a container id after the image docker.io/library/tool:1');
  });
});
