import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DescService } from '@bufbuild/protobuf';
import type { Client } from '@connectrpc/connect';
import {
  createInMemoryClient,
  isAlreadyExists,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  OCI_SPEC_URL,
  packJson,
  unpackAny,
} from '@ctrd/api-proto';
import { ContainersService } from '@ctrd/api-proto/containers';
import { EventHistoryService } from '@ctrd/api-proto/eventhistory';
import { TasksService } from '@ctrd/api-proto/tasks';
import { Status } from '@ctrd/api-proto/task-types';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtinPlugins } from '../src/builtin-plugins.js';
import { defaultConfig } from '../src/config.js';
import { initPlugins, type PluginSet } from '../src/plugin.js';
import type { LocalTasks } from '../src/runtime/local-tasks.js';
import { ownShimId, SHIM_LABEL, sharedShimId } from '../src/runtime/shim-manager.js';
import { tasksServicePlugin } from '../src/services/tasks.js';
import { FakeLauncher } from './runtime-fake-shim.js';

// The Tasks service on the real plugin set and store, with in-memory shims (FakeLauncher).

let root: string;
let launcher: FakeLauncher;
let plugins: PluginSet;

async function load(): Promise<PluginSet> {
  const regs = builtinPlugins({ root }).map((r) =>
    r.id === 'tasks-service' ? tasksServicePlugin({ launcher, watchMs: 0 }) : r,
  );
  return initPlugins(regs, {
    config: { ...defaultConfig, root, stateDir: join(root, 'state'), shimTasksCap: 2 },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    rootDir: root,
    stateDir: join(root, 'state'),
  });
}

function client<T extends DescService>(s: T, namespace = 'default'): Client<T> {
  return createInMemoryClient(s, { services: plugins.services, namespace });
}

const specBytes = '{"ociVersion":"1.0.2", "process":{"args":["sh"]},  "root":{"path":"/r"}}';

async function container(id: string, labels: Record<string, string> = {}, runtime = 'io.containerd.runc.v2') {
  const spec = packJson(OCI_SPEC_URL, {});
  spec.value = new TextEncoder().encode(specBytes);
  await client(ContainersService).create({ container: { id, labels, runtime: { name: runtime }, spec } });
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ctrd-tasks-'));
  launcher = new FakeLauncher();
  plugins = await load();
});
afterEach(async () => {
  await plugins.close();
  await rm(root, { recursive: true, force: true });
});

describe('Tasks service', () => {
  it('Create writes the bundle (spec bytes as stored, shim address and id) and answers Get/List', async () => {
    await container('c1');
    const t = client(TasksService);
    const { pid } = await t.create({ containerId: 'c1', stdout: '/tmp/out' });
    expect(pid).toBeGreaterThan(0);
    const bundle = join(root, 'state', 'bundles', 'default', 'c1');
    expect((await stat(bundle)).mode & 0o777).toBe(0o700);
    expect(await readFile(join(bundle, 'config.json'), 'utf8')).toBe(specBytes);
    expect(await readFile(join(bundle, 'shim-id'), 'utf8')).toBe(sharedShimId('default', 1));
    expect(await readFile(join(bundle, 'address'), 'utf8')).toMatch(/^unix:\/\/\/fake\//);
    const got = (await t.get({ containerId: 'c1' })).process;
    expect(got).toMatchObject({ id: 'c1', containerId: 'c1', pid, status: Status.CREATED });
    await t.start({ containerId: 'c1' });
    expect((await t.list({})).tasks.map((p) => [p.id, p.status])).toEqual([['c1', Status.RUNNING]]);
    expect((await client(TasksService, 'other').list({})).tasks).toEqual([]);
    expect(isAlreadyExists(await t.create({ containerId: 'c1' }).catch((e) => e))).toBe(true);
  });

  it('errors as containerd: unknown container, unknown task, bad runtime, delete while running', async () => {
    const t = client(TasksService);
    const e1 = await t.get({ containerId: 'ghost' }).catch((e) => e);
    expect(isNotFound(e1) && e1.message).toMatch(/container "ghost" in namespace "default"/);
    await container('c1');
    const e2 = await t.get({ containerId: 'c1' }).catch((e) => e);
    expect(isNotFound(e2) && e2.message).toMatch(/task c1 not found/);
    await container('c2', {}, 'io.containerd.kata.v2');
    const e3 = await t.create({ containerId: 'c2' }).catch((e) => e);
    expect(isInvalidArgument(e3) && e3.message).toMatch(/runtime "io.containerd.kata.v2" is not supported/);
    await t.create({ containerId: 'c1' });
    await t.start({ containerId: 'c1' });
    const e4 = await t.delete({ containerId: 'c1' }).catch((e) => e);
    expect(isFailedPrecondition(e4) && e4.message).toMatch(/task must be stopped before deletion: running/);
    await t.kill({ containerId: 'c1', signal: 9 });
    const del = await t.delete({ containerId: 'c1' });
    expect(del).toMatchObject({ id: 'c1', exitStatus: 137 });
    await expect(stat(join(root, 'state', 'bundles', 'default', 'c1'))).rejects.toThrow();
    expect(isNotFound(await t.get({ containerId: 'c1' }).catch((e) => e))).toBe(true);
  });

  it('Metrics: one Metric per task with the shim stats, filtered by id and namespace', async () => {
    await container('m1');
    await container('m2');
    await client(TasksService).create({ containerId: 'm1' });
    await client(TasksService).create({ containerId: 'm2' });
    const spec = packJson(OCI_SPEC_URL, {});
    await client(ContainersService, 'other').create({
      container: { id: 'm1', runtime: { name: 'io.containerd.runc.v2' }, spec },
    });
    await client(TasksService, 'other').create({ containerId: 'm1' });
    const t = client(TasksService);
    const all = (await t.metrics({})).metrics;
    expect(all.map((m) => m.id).sort()).toEqual(['m1', 'm1', 'm2']);
    expect(all[0]?.data?.typeUrl).toBe('io.containerd.cgroups.v1.Metrics');
    expect(all[0]?.timestamp).toBeDefined();
    expect((await t.metrics({ filters: ['id==m2'] })).metrics.map((m) => m.id)).toEqual(['m2']);
    expect((await t.metrics({ filters: ['namespace==other'] })).metrics.map((m) => m.id)).toEqual(['m1']);
    expect(isInvalidArgument(await t.metrics({ filters: ['id=="'] }).catch((e) => e))).toBe(true);
  });

  it('a failed shim Create removes the bundle and gives the shim slot back', async () => {
    await container('c1');
    await container('c2');
    const t = client(TasksService);
    await t.create({ containerId: 'c1' });
    launcher.shimAt('default', sharedShimId('default', 1))!.failCreate = 'c2';
    await expect(t.create({ containerId: 'c2' })).rejects.toThrow(/runc create failed/);
    await expect(stat(join(root, 'state', 'bundles', 'default', 'c2'))).rejects.toThrow();
    const tasks = plugins.get<LocalTasks>('io.containerd.service.v1', 'tasks-service');
    expect(tasks.manager.shimOf('default', 'c2')).toBeUndefined();
  });

  it('List asks each shim once when it has ctrd.shim.v1.Tasks/List, and each task otherwise', async () => {
    const t = client(TasksService);
    for (const id of ['a', 'b', 'c']) {
      await container(id);
      await t.create({ containerId: id });
    }
    await t.start({ containerId: 'b' });
    const want = [
      ['a', Status.CREATED],
      ['b', Status.RUNNING],
      ['c', Status.CREATED],
    ];
    // The cap is 2 here: two shims, one List call each.
    const before = launcher.listCalls;
    expect((await t.list({})).tasks.map((p) => [p.id, p.status])).toEqual(want);
    expect(launcher.listCalls - before).toBe(2);
    // An older shim answers NotImplemented: the same answer through one State call per task.
    launcher.supportsList = false;
    expect((await t.list({})).tasks.map((p) => [p.id, p.status])).toEqual(want);
  });

  it('shares shims up to the cap and honours the own-shim label', async () => {
    const t = client(TasksService);
    for (const id of ['a', 'b', 'c']) {
      await container(id);
      await t.create({ containerId: id });
    }
    await container('solo', { [SHIM_LABEL]: 'own' });
    await t.create({ containerId: 'solo' });
    expect(launcher.starts).toEqual([
      sharedShimId('default', 1),
      sharedShimId('default', 2),
      ownShimId('default', 'solo'),
    ]);
    // Deleting the own shim's only task shuts that shim down.
    await t.delete({ containerId: 'solo' });
    await expect.poll(() => launcher.shimAt('default', ownShimId('default', 'solo'))).toBeUndefined();
  });

  it('settles the tasks of a dead shim (exit, delete events) and recovers live shims after a restart', async () => {
    const t = client(TasksService);
    for (const id of ['a', 'b']) {
      await container(id);
      await t.create({ containerId: id });
      await t.start({ containerId: id });
    }
    await container('solo', { [SHIM_LABEL]: 'own' });
    await t.create({ containerId: 'solo' });
    // "Restart": the plugins go away, the shims stay; the own shim dies meanwhile.
    await plugins.close();
    launcher.shimAt('default', ownShimId('default', 'solo'))!.dead = true;
    plugins = await load();
    const t2 = client(TasksService);
    expect((await t2.list({})).tasks.map((p) => [p.id, p.status])).toEqual([
      ['a', Status.RUNNING],
      ['b', Status.RUNNING],
    ]);
    expect(launcher.cleanups).toEqual(['default/solo']);
    await expect(stat(join(root, 'state', 'bundles', 'default', 'solo'))).rejects.toThrow();
    const seen = [];
    for await (const env of client(EventHistoryService).replay({ filters: ['namespace==default'] })) {
      seen.push([env.topic, (unpackAny(env.event) as { containerId?: string; exitStatus?: number }) ?? {}]);
    }
    expect(seen.map(([topic, ev]) => [topic, (ev as { containerId: string }).containerId])).toEqual([
      ['/tasks/exit', 'solo'],
      ['/tasks/delete', 'solo'],
    ]);
    expect(seen[0]?.[1]).toMatchObject({ exitStatus: 255 });
    // A shim that dies while the daemon runs: found by the liveness check, its tasks settled.
    const tasks = plugins.get<LocalTasks>('io.containerd.service.v1', 'tasks-service');
    launcher.shimAt('default', sharedShimId('default', 1))!.dead = true;
    await tasks.manager.check(tasks.manager.shimOf('default', 'a')!);
    await expect
      .poll(() => [...launcher.cleanups].sort())
      .toEqual(['default/a', 'default/b', 'default/solo']);
    expect((await t2.list({})).tasks).toEqual([]);
  });
});
