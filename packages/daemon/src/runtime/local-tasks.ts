import { setMaxListeners } from 'node:events';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import {
  adaptObject,
  AlreadyExists,
  FailedPrecondition,
  InvalidArgument,
  isNotFound,
  isNotImplemented,
  isUnavailable,
  type Logger,
  NotFound,
  NotImplemented,
  nowTimestamp,
  parseFilters,
  silentLogger,
  toTimestamp,
  validateIdentifier,
} from '@ctrd/api-proto';
import { TaskDeleteSchema, TaskExitSchema } from '@ctrd/api-proto/event-types';
import type { StateResponse } from '@ctrd/api-proto/shim';
import { type Process, ProcessSchema, Status } from '@ctrd/api-proto/task-types';
import type {
  CheckpointTaskRequest,
  CloseIORequest,
  CreateTaskRequest,
  DeleteResponse,
  ExecProcessRequest,
  KillRequest,
  ResizePtyRequest,
  UpdateTaskRequest,
  WaitResponse,
} from '@ctrd/api-proto/tasks';
import { DeleteResponseSchema, WaitResponseSchema } from '@ctrd/api-proto/tasks';
import type { ReadRequest, ReadResponse } from '@ctrd/api-proto/logs';
import { type Metric, MetricSchema } from '@ctrd/api-proto/types';
import type { ProcessInfo } from '@ctrd/api-proto/task-types';
import type { LocalContainers } from '../services/containers.js';
import type { Exchange } from '../services/exchange.js';
import {
  bundlePath,
  createBundle,
  listBundles,
  removeBundle,
  type BundleRecord,
  writeShimRecord,
} from './bundle.js';
import { Semaphore } from './semaphore.js';
import type { DeadTaskExit, ShimLauncher } from './shim-launcher.js';
import { SHIM_LABEL, type Shim, ShimManager } from './shim-manager.js';

/** State calls in flight to one shim while recovering its tasks. */
const RECOVERY_CALLS_PER_SHIM = 32;

// The Tasks service's local half: tasks live in shims, the daemon keeps only which shim hosts which
// task (and the bundle on disk, for restarts). Every answer about a process comes from its shim;
// the shim also publishes the task events, so the daemon publishes only for tasks it settles after
// their shim died.

export const RUNC_RUNTIMES: ReadonlySet<string> = new Set(['io.containerd.runc.v2', 'io.containerd.runc.v1']);

export interface LocalTasksOptions {
  stateDir: string;
  containers: LocalContainers;
  events: Exchange;
  launcher: ShimLauncher;
  /** Tasks per shared shim. */
  shimCap: number;
  /** How long an emptied shared shim waits for a task before it is stopped (default 0). */
  shimLingerMs?: number | undefined;
  /** Concurrent shim Create/Start/Delete calls. */
  concurrency: number;
  logger?: Logger | undefined;
  /** How often shims are checked for life (ms); 0 disables. */
  watchMs?: number | undefined;
}

const STATUS_NAMES: Record<number, string> = {
  [Status.UNKNOWN]: 'unknown',
  [Status.CREATED]: 'created',
  [Status.RUNNING]: 'running',
  [Status.STOPPED]: 'stopped',
  [Status.PAUSED]: 'paused',
  [Status.PAUSING]: 'pausing',
};

export class LocalTasks {
  readonly manager: ShimManager;
  private readonly log: Logger;
  private readonly sem: Semaphore;
  /** Settlements under way, so a task is settled once. */
  private readonly settling = new Map<string, Promise<void>>();

  constructor(private readonly opts: LocalTasksOptions) {
    this.log = opts.logger ?? silentLogger;
    this.sem = new Semaphore(opts.concurrency);
    this.manager = new ShimManager({
      launcher: opts.launcher,
      cap: opts.shimCap,
      lingerMs: opts.shimLingerMs,
      logger: this.log,
      watchMs: opts.watchMs,
      onDead: (shim) => {
        for (const id of [...shim.tasks]) void this.settle(shim.namespace, id);
      },
    });
  }

  async close(): Promise<void> {
    await this.manager.stopIdle();
    this.manager.close();
  }

  /**
   * The task's shim; the container must exist (containerd reports it first). `execId`, when the
   * call names one, is held to the identifier rule too: it names the process's files in the shim.
   */
  private shimFor(ns: string, id: string, execId = ''): Shim {
    validateIdentifier(id, 'container id');
    if (execId !== '') validateIdentifier(execId, `task ${id}: exec id`);
    if (!this.opts.containers.exists(ns, id))
      throw new NotFound(`container "${id}" in namespace "${ns}": not found`);
    const shim = this.manager.shimOf(ns, id);
    if (!shim) throw new NotFound(`task ${id} not found`);
    return shim;
  }

  /** Runs a shim call; a shim that cannot be reached is checked (and settled if dead). */
  private async call<T>(shim: Shim, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (isUnavailable(e)) void this.manager.check(shim);
      throw e;
    }
  }

  async create(ns: string, req: CreateTaskRequest, signal?: AbortSignal): Promise<{ pid: number }> {
    const id = req.containerId;
    const container = this.opts.containers.get(ns, id);
    const runtime = container.runtime?.name ?? '';
    if (!RUNC_RUNTIMES.has(runtime)) {
      throw new InvalidArgument(
        `container "${id}": runtime "${runtime}" is not supported: use io.containerd.runc.v2`,
      );
    }
    if (req.checkpoint && req.checkpoint.digest !== '') {
      throw new NotImplemented(
        `task ${id}: restoring from a checkpoint needs a content store, which ctrd lacks`,
      );
    }
    if (this.manager.shimOf(ns, id)) throw new AlreadyExists(`task ${id}: already exists`);
    const spec = container.spec?.value ?? new Uint8Array();
    const own = container.labels[SHIM_LABEL] === 'own';
    return this.sem.run(async () => {
      const bundle = await createBundle(this.opts.stateDir, ns, id, spec);
      let shim: Shim | undefined;
      try {
        shim = await this.manager.acquire(ns, id, own, signal);
        await writeShimRecord(bundle, shim.id, shim.address);
        const s = shim;
        const res = await this.call(s, () =>
          s.client.create(
            {
              id,
              bundle,
              rootfs: req.rootfs,
              terminal: req.terminal,
              stdin: req.stdin,
              stdout: req.stdout,
              stderr: req.stderr,
              options: req.options ?? container.runtime?.options,
            },
            { signal },
          ),
        );
        return { pid: res.pid };
      } catch (e) {
        // The shim undoes its own part of a failed Create (runc container, rootfs mounts); a Create
        // that the shim completed after our side gave up (aborted call) is deleted here.
        if (shim) {
          const s = shim;
          await s.client.delete({ id }, { timeoutMs: 10_000 }).catch(() => {});
          await this.manager.release(s, id).catch(() => {});
        }
        await removeBundle(bundle).catch((e2) => this.log.warn({ err: e2, bundle }, 'bundle left behind'));
        throw e;
      }
    }, signal);
  }

  async start(ns: string, id: string, execId: string, signal?: AbortSignal): Promise<number> {
    const shim = this.shimFor(ns, id, execId);
    const res = await this.sem.run(
      () => this.call(shim, () => shim.client.start({ id, execId }, { signal })),
      signal,
    );
    return res.pid;
  }

  private async state(shim: Shim, id: string, execId: string, signal?: AbortSignal): Promise<StateResponse> {
    return this.call(shim, () => shim.client.state({ id, execId }, { signal }));
  }

  async delete(ns: string, id: string, signal?: AbortSignal): Promise<DeleteResponse> {
    const shim = this.shimFor(ns, id);
    const st = await this.state(shim, id, '', signal);
    if (st.status !== Status.STOPPED && st.status !== Status.CREATED) {
      throw new FailedPrecondition(
        `task must be stopped before deletion: ${STATUS_NAMES[st.status] ?? 'unknown'}: kill it first (ctr task kill ${id}), or use --force`,
      );
    }
    const res = await this.sem.run(
      () => this.call(shim, () => shim.client.delete({ id }, { signal })),
      signal,
    );
    await removeBundle(bundlePath(this.opts.stateDir, ns, id)).catch((e) =>
      this.log.warn({ err: e, task: id }, 'bundle left behind'),
    );
    void this.manager.release(shim, id).catch(() => {});
    return create(DeleteResponseSchema, {
      id,
      pid: res.pid,
      exitStatus: res.exitStatus,
      exitedAt: res.exitedAt,
    });
  }

  async deleteProcess(ns: string, id: string, execId: string, signal?: AbortSignal): Promise<DeleteResponse> {
    if (execId === '') throw new InvalidArgument(`task ${id}: exec id must be set: use Delete for the task`);
    const shim = this.shimFor(ns, id, execId);
    const res = await this.call(shim, () => shim.client.delete({ id, execId }, { signal }));
    return create(DeleteResponseSchema, {
      id: execId,
      pid: res.pid,
      exitStatus: res.exitStatus,
      exitedAt: res.exitedAt,
    });
  }

  async get(ns: string, id: string, execId: string, signal?: AbortSignal): Promise<Process> {
    const shim = this.shimFor(ns, id, execId);
    return toProcess(id, await this.state(shim, id, execId, signal));
  }

  async list(ns: string, signal?: AbortSignal): Promise<Process[]> {
    // One call per shim where the shim has ctrd's List, else one state call per task, all on the
    // request's signal: not a listener leak.
    if (signal) setMaxListeners(0, signal);
    const byShim = new Map<Shim, string[]>();
    for (const t of this.manager.tasks(ns)) {
      const ids = byShim.get(t.shim);
      if (ids) ids.push(t.id);
      else byShim.set(t.shim, [t.id]);
    }
    const found = await Promise.all(
      [...byShim].map(async ([shim, ids]): Promise<(Process | undefined)[]> => {
        const listed = await this.listOn(shim, signal).catch((e: unknown) => {
          // A shim that just died lists nothing; its tasks are settled by the liveness watch.
          this.log.debug({ shim: shim.id, err: e }, 'shim task list');
          return [];
        });
        if (listed) {
          const wanted = new Set(ids);
          return listed.filter((st) => wanted.has(st.id)).map((st) => toProcess(st.id, st));
        }
        return Promise.all(
          ids.map((id) =>
            this.state(shim, id, '', signal).then(
              (st) => toProcess(id, st),
              (e) => {
                // A task being created, or on a shim that just died, is not listed.
                this.log.debug({ task: id, err: e }, 'task state');
                return undefined;
              },
            ),
          ),
        );
      }),
    );
    return found
      .flat()
      .filter((p): p is Process => p !== undefined)
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * The output the task's shim keeps (ctrd.services.logs.v1.Logs/Read), relayed from the shim:
   * whoever created the task, ctrd's shim tees its stdout and stderr into the bundle's log.
   */
  async *readLogs(ns: string, req: ReadRequest, signal?: AbortSignal): AsyncGenerator<ReadResponse> {
    const id = req.containerId;
    let shim: Shim;
    try {
      shim = this.shimFor(ns, id);
    } catch (e) {
      if (isNotFound(e) && this.opts.containers.exists(ns, id)) {
        // The client adds ": not found".
        throw new NotFound(
          `task of container "${id}" in namespace "${ns}" (a task's output is kept until the task is deleted)`,
          { cause: e },
        );
      }
      throw e;
    }
    const noLog = () =>
      new NotImplemented(
        `task ${id}: its shim keeps no output (only ctrd-shim does): read the task's stdio instead`,
      );
    const read = shim.readLogs;
    if (!read) throw noLog();
    try {
      yield* read({ ...req, containerId: id }, signal);
    } catch (e) {
      if (isNotImplemented(e)) throw noLog();
      if (isUnavailable(e)) void this.manager.check(shim);
      throw e;
    }
  }

  /** Every task's state on `shim` in one call; undefined when the shim lacks ctrd's List. */
  private async listOn(shim: Shim, signal?: AbortSignal): Promise<StateResponse[] | undefined> {
    const list = shim.listTasks;
    if (!list) return undefined;
    try {
      return await this.call(shim, () => list(signal));
    } catch (e) {
      if (isNotImplemented(e)) return undefined;
      throw e;
    }
  }

  async kill(ns: string, req: KillRequest, signal?: AbortSignal): Promise<void> {
    const shim = this.shimFor(ns, req.containerId, req.execId);
    await this.call(shim, () =>
      shim.client.kill(
        { id: req.containerId, execId: req.execId, signal: req.signal, all: req.all },
        { signal },
      ),
    );
  }

  async exec(ns: string, req: ExecProcessRequest, signal?: AbortSignal): Promise<void> {
    if (req.execId === '') throw new InvalidArgument(`task ${req.containerId}: exec id must be set`);
    const shim = this.shimFor(ns, req.containerId, req.execId);
    await this.call(shim, () =>
      shim.client.exec(
        {
          id: req.containerId,
          execId: req.execId,
          terminal: req.terminal,
          stdin: req.stdin,
          stdout: req.stdout,
          stderr: req.stderr,
          spec: req.spec,
        },
        { signal },
      ),
    );
  }

  async resizePty(ns: string, req: ResizePtyRequest, signal?: AbortSignal): Promise<void> {
    const shim = this.shimFor(ns, req.containerId, req.execId);
    await this.call(shim, () =>
      shim.client.resizePty(
        { id: req.containerId, execId: req.execId, width: req.width, height: req.height },
        { signal },
      ),
    );
  }

  async closeIO(ns: string, req: CloseIORequest, signal?: AbortSignal): Promise<void> {
    const shim = this.shimFor(ns, req.containerId, req.execId);
    await this.call(shim, () =>
      shim.client.closeIO({ id: req.containerId, execId: req.execId, stdin: req.stdin }, { signal }),
    );
  }

  async pause(ns: string, id: string, signal?: AbortSignal): Promise<void> {
    const shim = this.shimFor(ns, id);
    await this.call(shim, () => shim.client.pause({ id }, { signal }));
  }

  async resume(ns: string, id: string, signal?: AbortSignal): Promise<void> {
    const shim = this.shimFor(ns, id);
    await this.call(shim, () => shim.client.resume({ id }, { signal }));
  }

  async listPids(ns: string, id: string, signal?: AbortSignal): Promise<ProcessInfo[]> {
    const shim = this.shimFor(ns, id);
    return (await this.call(shim, () => shim.client.pids({ id }, { signal }))).processes;
  }

  async checkpoint(ns: string, req: CheckpointTaskRequest, signal?: AbortSignal): Promise<never> {
    const id = req.containerId;
    const shim = this.shimFor(ns, id);
    const dir = join(this.opts.stateDir, 'checkpoints', ns, `${id}-${Date.now()}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      await this.call(shim, () =>
        shim.client.checkpoint({ id, path: dir, options: req.options }, { signal }),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    throw new NotImplemented(
      `checkpoint of task ${id}: runc wrote it, but ctrd has no content store to keep it yet`,
    );
  }

  async update(ns: string, req: UpdateTaskRequest, signal?: AbortSignal): Promise<void> {
    const shim = this.shimFor(ns, req.containerId);
    await this.call(shim, () =>
      shim.client.update(
        { id: req.containerId, resources: req.resources, annotations: req.annotations },
        { signal },
      ),
    );
  }

  /** Stats of every task (all namespaces, as containerd) matching the filters (`id`, `namespace`). */
  async metrics(filters: readonly string[], signal?: AbortSignal): Promise<Metric[]> {
    const filter = parseFilters(filters);
    const out: Metric[] = [];
    for (const t of this.manager.tasks()) {
      if (!filter.match(adaptObject({ id: t.id, namespace: t.namespace }))) continue;
      try {
        const res = await this.call(t.shim, () => t.shim.client.stats({ id: t.id }, { signal }));
        out.push(create(MetricSchema, { timestamp: nowTimestamp(), id: t.id, data: res.stats }));
      } catch (e) {
        if (!isNotFound(e)) this.log.debug({ task: t.id, err: e }, 'task stats');
      }
    }
    return out;
  }

  async wait(ns: string, id: string, execId: string, signal?: AbortSignal): Promise<WaitResponse> {
    const shim = this.shimFor(ns, id, execId);
    const res = await this.call(shim, () => shim.client.wait({ id, execId }, { signal }));
    return create(WaitResponseSchema, { exitStatus: res.exitStatus, exitedAt: res.exitedAt });
  }

  /**
   * Settles a task whose shim is gone, as containerd's cleanupAfterDeadShim: `ctrd-shim delete`
   * (runc delete --force, unmount, exit file), then /tasks/exit and /tasks/delete, then the bundle.
   */
  settle(ns: string, id: string): Promise<void> {
    const key = `${ns}/${id}`;
    const running = this.settling.get(key);
    if (running) return running;
    const p = (async () => {
      const path = bundlePath(this.opts.stateDir, ns, id);
      let exit: DeadTaskExit;
      try {
        exit = await this.opts.launcher.cleanup(ns, id, path);
      } catch (e) {
        this.log.warn({ task: id, namespace: ns, err: e }, 'dead shim cleanup failed');
        exit = { pid: 0, exitStatus: 255, exitedAt: new Date() };
      }
      const at = toTimestamp(exit.exitedAt);
      this.opts.events.publishMessage(ns, '/tasks/exit', TaskExitSchema, {
        containerId: id,
        id,
        pid: exit.pid,
        exitStatus: exit.exitStatus,
        exitedAt: at,
      });
      this.opts.events.publishMessage(ns, '/tasks/delete', TaskDeleteSchema, {
        containerId: id,
        id,
        pid: exit.pid,
        exitStatus: exit.exitStatus,
        exitedAt: at,
      });
      await removeBundle(path).catch((e) => this.log.warn({ err: e, bundle: path }, 'bundle left behind'));
      this.log.info({ task: id, namespace: ns, exitStatus: exit.exitStatus }, 'task of a dead shim settled');
    })().finally(() => this.settling.delete(key));
    this.settling.set(key, p);
    return p;
  }

  /**
   * Restart recovery: takes back every live shim named in the bundles and settles the tasks whose
   * shim is gone (or that their shim no longer knows).
   */
  async recover(signal?: AbortSignal): Promise<void> {
    const groups = new Map<string, BundleRecord[]>();
    const orphans: BundleRecord[] = [];
    for (const b of await listBundles(this.opts.stateDir)) {
      if (!b.shimId || !b.address) orphans.push(b);
      else {
        const k = `${b.namespace}\0${b.shimId}\0${b.address}`;
        const group = groups.get(k);
        if (group) group.push(b);
        else groups.set(k, [b]);
      }
    }
    for (const b of orphans) await this.settle(b.namespace, b.id);
    // Shims are taken back side by side, and each one's tasks asked for their state a batch at a
    // time: one by one, a restart with 1000 tasks spent seconds in round trips.
    await Promise.all([...groups.values()].map((records) => this.recoverShim(records, signal)));
    await this.stopStrayShims();
  }

  // A shim serving (it has an address file, see @ctrd/shim's launch contract) that no bundle names
  // was waiting for a task when the daemon went down: nothing will give it one now.
  private async stopStrayShims(): Promise<void> {
    const dir = join(this.opts.stateDir, 'shims');
    const known = new Set(this.manager.list().map((s) => s.address));
    const ids = await readdir(dir).catch(() => [] as string[]);
    await Promise.all(
      ids.map(async (id) => {
        const address = (await readFile(join(dir, id, 'address'), 'utf8').catch(() => '')).trim();
        if (address === '' || known.has(address)) return;
        this.log.info({ shim: id, address }, 'stopping a shim no task names');
        await this.manager.stopStray(address);
      }),
    );
  }

  private async recoverShim(records: BundleRecord[], signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const first = records[0];
    if (!first?.shimId || !first.address) return;
    const ids = records.map((r) => r.id);
    const shim = await this.manager.adopt(first.namespace, first.shimId, first.address, ids);
    if (!shim) {
      for (const id of ids) await this.settle(first.namespace, id);
      return;
    }
    // One List call answers for all of the shim's tasks; a task it does not know is gone.
    const listed = await this.listOn(shim, signal).catch((e: unknown) => {
      this.log.warn({ shim: shim.id, err: e }, 'task list at recovery; asking each task');
      return undefined;
    });
    if (listed) {
      const present = new Set(listed.map((st) => st.id));
      for (const id of ids) {
        if (present.has(id)) continue;
        shim.tasks.delete(id);
        await this.settle(first.namespace, id);
      }
    } else {
      const limit = new Semaphore(RECOVERY_CALLS_PER_SHIM);
      await Promise.all(
        ids.map((id) =>
          limit.run(async () => {
            try {
              await shim.client.state({ id, execId: '' }, { signal, timeoutMs: 5000 });
            } catch (e) {
              // A shim that answers but is slow keeps its task: the liveness watch decides later.
              if (!isNotFound(e)) {
                this.log.warn({ task: id, shim: shim.id, err: e }, 'task state at recovery');
                return;
              }
              shim.tasks.delete(id);
              await this.settle(first.namespace, id);
            }
          }, signal),
        ),
      );
    }
    if (shim.tasks.size === 0) void this.manager.release(shim, '').catch(() => {});
    this.log.info({ shim: shim.id, namespace: shim.namespace, tasks: [...shim.tasks] }, 'shim reconnected');
  }
}

function toProcess(containerId: string, s: StateResponse): Process {
  return create(ProcessSchema, {
    containerId,
    id: s.execId === '' ? s.id || containerId : s.execId,
    pid: s.pid,
    status: s.status,
    stdin: s.stdin,
    stdout: s.stdout,
    stderr: s.stderr,
    terminal: s.terminal,
    exitStatus: s.exitStatus,
    exitedAt: s.exitedAt,
  });
}
