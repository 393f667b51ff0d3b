import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, rmdir, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { createClient, createUnixTransport, OCI_SPEC_URL, packAny, packJson } from '@ctrd/api-proto';
import { ContainersService } from '@ctrd/api-proto/containers';
import { EventsService } from '@ctrd/api-proto/events';
import { OptionsSchema } from '@ctrd/api-proto/runc-options';
import { TasksService } from '@ctrd/api-proto/tasks';
import { VersionService } from '@ctrd/api-proto/version';
import { defaultSpec } from '@ctrd/ctr';
import { cgroupHierarchies } from './system.mjs';

// Containers through containerd's v1 API, the same calls for ctrd and stock containerd: one
// connection, Containers.Create with the OCI spec as a JSON Any, Tasks.Create without rootfs mounts
// or stdio (the spec's root.path is a shared read-only busybox dir), Tasks.Start.

export const NAMESPACE = 'bench';
export const RUNTIME = 'io.containerd.runc.v2';
export const STATUS_RUNNING = 2;
const STATUS_STOPPED = 3;

/** A read-only-mounted busybox root shared by every container (each gets its own mount namespace). */
export async function busyboxRootfs() {
  const dir = await mkdtemp(join(tmpdir(), 'ctrd-bench-rootfs-'));
  await mkdir(join(dir, 'bin'));
  await copyFile('/bin/busybox', join(dir, 'bin', 'busybox'));
  for (const a of ['sh', 'sleep', 'true', 'echo']) await symlink('busybox', join(dir, 'bin', a));
  // runc mounts over these; they must exist because the root is read-only.
  for (const d of ['proc', 'dev', 'sys', 'run', 'tmp', 'etc']) await mkdir(join(dir, d));
  return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
}

/** containerd 1.6's default spec (the one `ctr run` builds), running `args` in its own cgroup. */
export function benchSpec({ rootfs, id, cgroupParent, args, readonly = true }) {
  const spec = defaultSpec(NAMESPACE, id);
  spec.process.args = args;
  spec.root = { path: rootfs, readonly };
  spec.hostname = id;
  spec.linux.cgroupsPath = `/${cgroupParent}/${id}`;
  return spec;
}

export function connectTarget(target) {
  const transport = createUnixTransport({ address: target.socket, namespace: NAMESPACE });
  const opts = { transport };
  return {
    containers: createClient(ContainersService, opts),
    tasks: createClient(TasksService, opts),
    events: createClient(EventsService, opts),
    close: () => transport.close?.(),
  };
}

/** One Version.Version call on a fresh connection: does the daemon answer (restart readiness)? */
export async function versionAnswers(target, timeoutMs = 1000) {
  const transport = createUnixTransport({ address: target.socket, timeoutMs });
  try {
    await createClient(VersionService, { transport }).version({});
    return true;
  } catch {
    return false;
  } finally {
    transport.close();
  }
}

/**
 * Creates and starts one container; resolves its init pid. With `snapshot` ({ snapshotter, key,
 * mounts }), the container names that snapshot and the task is created on its mounts.
 */
export async function startContainer(api, target, spec, id, snapshot) {
  const runtime = { name: RUNTIME };
  if (target.runtimeOptions)
    runtime.options = packAny(OptionsSchema, create(OptionsSchema, target.runtimeOptions));
  const container = { id, runtime, spec: packJson(OCI_SPEC_URL, spec) };
  if (snapshot) Object.assign(container, { snapshotter: snapshot.snapshotter, snapshotKey: snapshot.key });
  await api.containers.create({ container });
  await api.tasks.create({ containerId: id, rootfs: snapshot?.mounts ?? [] });
  const r = await api.tasks.start({ containerId: id });
  return r.pid;
}

export async function statusOf(api, id) {
  const r = await api.tasks.get({ containerId: id });
  return r.process?.status ?? 0;
}

/** Polls until every task reports RUNNING; resolves the number that do. */
export async function waitRunning(api, ids, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let pending = [...ids];
  while (pending.length > 0 && Date.now() < deadline) {
    const next = [];
    await pool(pending, 10, async (id) => {
      if ((await statusOf(api, id).catch(() => 0)) !== STATUS_RUNNING) next.push(id);
    });
    pending = next;
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 200));
  }
  return ids.length - pending.length;
}

/** SIGKILL, wait until stopped, delete task and container; errors of one container never stop the rest. */
export async function removeContainer(api, id) {
  await api.tasks.kill({ containerId: id, signal: 9, all: true }).catch(() => {});
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const s = await statusOf(api, id).catch(() => -1);
    if (s === -1 || s === STATUS_STOPPED) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await api.tasks.delete({ containerId: id }).catch(() => {});
  await api.containers.delete({ id }).catch(() => {});
}

/** Every container the daemon has in our namespace, removed. */
export async function removeAll(api, concurrency = 10) {
  const list = await api.containers.list({}).catch(() => ({ containers: [] }));
  await pool(
    list.containers.map((c) => c.id),
    concurrency,
    (id) => removeContainer(api, id),
  );
}

/**
 * Runs `fn` over `items` with at most `concurrency` in flight; the first error is rethrown at the end.
 * Once `signal` is aborted no new item starts, and the pool settles when the ones in flight have.
 */
export async function pool(items, concurrency, fn, signal) {
  let next = 0;
  let error;
  const worker = async () => {
    while (next < items.length && !signal?.aborted) {
      const i = next++;
      try {
        await fn(items[i], i);
      } catch (e) {
        error ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (error) throw error;
  if (signal?.aborted) throw signal.reason;
}

/**
 * Removes the container cgroups under `parent` in every hierarchy, leaves first. Containers were
 * removed through the API before; a process still in one of these cgroups (its shim died under it)
 * is one the bench started, and is killed by pid so the cgroup can go.
 */
export async function removeCgroups(parent) {
  let killed = 0;
  for (const h of cgroupHierarchies()) {
    const p = join(h, parent);
    if (!existsSync(p)) continue;
    for (const e of readdirSync(p, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const procs = await readFile(join(p, e.name, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const pid of procs.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
          killed++;
        } catch {}
      }
    }
  }
  if (killed > 0) await new Promise((r) => setTimeout(r, 500));
  for (const h of cgroupHierarchies()) {
    const p = join(h, parent);
    if (!existsSync(p)) continue;
    for (const e of readdirSync(p, { withFileTypes: true }))
      if (e.isDirectory()) await rmdir(join(p, e.name)).catch(() => {});
    await rmdir(p).catch(() => {});
  }
}

export function leftoverCgroups(parent) {
  return cgroupHierarchies().filter((h) => existsSync(join(h, parent)));
}
