import { readFileSync, rmSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { create } from '@bufbuild/protobuf';
import type { Any, Timestamp } from '@bufbuild/protobuf/wkt';
import {
  AlreadyExists,
  FailedPrecondition,
  InvalidArgument,
  NotFound,
  OCI_LINUX_RESOURCES_URL,
  OCI_PROCESS_URL,
  packAny,
  toTimestamp,
  Unknown,
  unpackAnyAs,
  unpackJson,
  validateIdentifier,
} from '@ctrd/api-proto';
import {
  TaskCreateSchema,
  TaskDeleteSchema,
  TaskExecAddedSchema,
  TaskExecStartedSchema,
  TaskExitSchema,
  TaskIOSchema,
  TaskOOMSchema,
  TaskPausedSchema,
  TaskResumedSchema,
  TaskStartSchema,
} from '@ctrd/api-proto/event-types';
import { CheckpointOptionsSchema, OptionsSchema, ProcessDetailsSchema } from '@ctrd/api-proto/runc-options';
import type {
  CheckpointTaskRequest,
  CreateTaskRequest,
  ExecProcessRequest,
  KillRequest,
  StateResponse,
  UpdateTaskRequest,
} from '@ctrd/api-proto/shim';
import { ProcessInfoSchema, Status } from '@ctrd/api-proto/task-types';
import { MountSchema } from '@ctrd/api-proto/types';
import type { CgroupLocation } from './cgroup-path.js';
import { findCgroup } from './cgroup-path.js';
import { exitFilePath, removeExitFile, writeExitFile } from './exit-file.js';
import { LogFile, type LogRecord } from './log-file.js';
import { type ReadLogOptions, readLog } from './log-reader.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';
import type { OomWatcher } from './oom-watcher.js';
import { ProcessIO } from './process-io.js';
import { validateProcess } from './process-spec.js';
import type { Operation, ProcessStatus } from './process-state.js';
import { refusal } from './process-state.js';
import type { ExitInfo } from './reaper.js';
import { mountRootfs, unmountRootfs } from './rootfs.js';
import type { Runtime } from './runtime.js';
import { isNoSuchContainer } from './runtime.js';
import { Serial } from './serial.js';
import { ShimProcess } from './shim-process.js';
import { StdioError } from './stdio.js';

// The shim's tasks and what can be done to them: the local half of the Task service (task-service.ts
// is the thin Connect half). Tasks are keyed by namespace and id. State-changing calls on a task are
// serialised per task; nothing holds a lock across tasks, so one task's slow runc never blocks
// another's calls.

export const LOG_FILE_NAME = 'container.log';
export const INIT_PID_FILE = 'init.pid';

export type Publish = <D extends DescMessage>(
  namespace: string,
  topic: string,
  schema: D,
  msg: MessageShape<D>,
) => void;

/** cgroups Metrics of a process's cgroup, packed in an Any. */
export type StatsReader = (pid: number, signal?: AbortSignal) => Promise<Any>;

/** The part of the Reaper the tasks use. */
export interface ExitWatcher {
  watch(pid: number): Promise<ExitInfo>;
  forget(pid: number): void;
}

export interface TaskManagerOptions {
  runtime: Runtime;
  reaper: ExitWatcher;
  publish: Publish;
  /** Publish /tasks/oom for OOM kills (the daemon's --oom-notify). */
  oom?: OomWatcher | undefined;
  stats?: StatsReader | undefined;
  logger?: Logger | undefined;
  /** Bound of each task's log file (default 10 MiB, one backup). */
  logMaxBytes?: number | undefined;
}

class Task {
  readonly serial = new Serial();
  readonly execs = new Map<string, ShimProcess>();
  cgroup: CgroupLocation | undefined;
  rootfsMounted = false;

  constructor(
    readonly namespace: string,
    readonly id: string,
    readonly bundle: string,
    readonly init: ShimProcess,
    readonly log: LogFile,
  ) {}

  get key(): string {
    return taskKey(this.namespace, this.id);
  }
}

function taskKey(namespace: string, id: string): string {
  return `${namespace}/${id}`;
}

const STATUS: Record<ProcessStatus, Status> = {
  created: Status.CREATED,
  running: Status.RUNNING,
  pausing: Status.PAUSING,
  paused: Status.PAUSED,
  stopped: Status.STOPPED,
  deleted: Status.STOPPED,
};

export class TaskManager {
  private readonly tasks = new Map<string, Task>();
  // Ids being created: reserved so that concurrent creates of one id give AlreadyExists.
  private readonly creating = new Set<string>();
  private readonly log: Logger;

  constructor(private readonly opts: TaskManagerOptions) {
    this.log = opts.logger ?? silentLogger;
  }

  get size(): number {
    return this.tasks.size + this.creating.size;
  }

  /** The init pid of a task (Connect). */
  taskPid(namespace: string, id: string): number {
    return this.tasks.get(taskKey(namespace, id))?.init.pid ?? 0;
  }

  async create(namespace: string, req: CreateTaskRequest, signal?: AbortSignal): Promise<number> {
    validateIdentifier(req.id, 'task id');
    const key = taskKey(namespace, req.id);
    if (this.tasks.has(key) || this.creating.has(key)) {
      throw new AlreadyExists(`task ${req.id} in namespace ${namespace}: already exists`);
    }
    this.creating.add(key);
    try {
      return await this.doCreate(namespace, key, req, signal);
    } finally {
      this.creating.delete(key);
    }
  }

  private async doCreate(
    namespace: string,
    key: string,
    req: CreateTaskRequest,
    signal?: AbortSignal,
  ): Promise<number> {
    const bundle = req.bundle;
    if (!isAbsolute(bundle)) {
      throw new InvalidArgument(`task ${req.id}: bundle ${JSON.stringify(bundle)} must be an absolute path`);
    }
    readSpec(req.id, bundle);
    if (req.checkpoint !== '') {
      throw new FailedPrecondition(`task ${req.id}: restore from checkpoint is not supported by ctrd-shim`);
    }
    let noPivot = false;
    let noNewKeyring = false;
    if (req.options && req.options.typeUrl !== '') {
      const o = unpackAnyAs(req.options, OptionsSchema);
      noPivot = o.noPivotRoot;
      noNewKeyring = o.noNewKeyring;
    }
    const log = new LogFile(join(bundle, LOG_FILE_NAME), { maxBytes: this.opts.logMaxBytes });
    const io = new ProcessIO(
      { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal },
      log,
    );
    const init = new ShimProcess('', io);
    const task = new Task(namespace, req.id, bundle, init, log);
    let created = false;
    try {
      try {
        await io.open(namespace, req.id, signal);
      } catch (e) {
        if (e instanceof StdioError) throw new InvalidArgument(`task ${req.id}: ${e.message}`, { cause: e });
        throw e;
      }
      removeExitFile(exitFilePath(bundle));
      if (req.rootfs.length > 0) {
        await mountRootfs(
          bundle,
          req.rootfs.map((m) => ({ type: m.type, source: m.source, target: m.target, options: m.options })),
          signal,
        );
        task.rootfsMounted = true;
      }
      const pidFile = join(bundle, INIT_PID_FILE);
      rmSync(pidFile, { force: true });
      const console = req.terminal ? await this.opts.runtime.newConsoleSocket(bundle, signal) : undefined;
      try {
        const masterP = console?.receiveMaster(signal);
        masterP?.catch(() => {});
        init.pid = await this.opts.runtime
          .create(
            req.id,
            bundle,
            { pidFile, stdio: io.runtimeStdio(), consoleSocket: console?.path, noPivot, noNewKeyring },
            signal,
          )
          .catch((e) => {
            throw runtimeError(`task ${req.id}: create`, e);
          });
        created = true;
        if (masterP) io.attachConsole(await masterP);
        else io.started();
      } finally {
        console?.close();
      }
    } catch (e) {
      if (created) await this.opts.runtime.delete(req.id, true).catch(() => {});
      io.close();
      log.close();
      if (task.rootfsMounted) await unmountRootfs(bundle).catch(() => {});
      throw e;
    }
    this.tasks.set(key, task);
    task.cgroup = findCgroup(init.pid);
    if (this.opts.oom && task.cgroup) {
      this.opts.oom.add(key, task.cgroup, () => this.publishOom(task));
    }
    this.watchExit(task, init);
    this.opts.publish(
      namespace,
      '/tasks/create',
      TaskCreateSchema,
      create(TaskCreateSchema, {
        containerId: req.id,
        bundle,
        rootfs: req.rootfs.map((m) => create(MountSchema, m)),
        io: create(TaskIOSchema, {
          stdin: req.stdin,
          stdout: req.stdout,
          stderr: req.stderr,
          terminal: req.terminal,
        }),
        checkpoint: req.checkpoint,
        pid: init.pid,
      }),
    );
    return init.pid;
  }

  async start(namespace: string, id: string, execId: string, signal?: AbortSignal): Promise<number> {
    const task = this.get(namespace, id);
    return task.serial.run(async () => {
      const p = this.process(task, execId);
      this.check(task, p, 'start');
      if (execId === '') {
        // The exit handler waits for this whole block, so /tasks/start always precedes /tasks/exit.
        const whole = (async () => {
          try {
            await this.opts.runtime.start(id, signal);
          } catch (e) {
            throw runtimeError(`task ${id}: start`, e);
          }
          if (p.status === 'created') p.status = 'running';
          this.opts.publish(
            namespace,
            '/tasks/start',
            TaskStartSchema,
            create(TaskStartSchema, { containerId: id, pid: p.pid }),
          );
          return p.pid;
        })();
        p.starting = whole.catch(() => {});
        try {
          return await whole;
        } finally {
          p.starting = undefined;
        }
      }
      if (task.init.status !== 'running') {
        throw new FailedPrecondition(
          `task ${id}: cannot start exec ${execId}: the task is ${task.init.status}`,
        );
      }
      return this.startExec(task, p, signal);
    });
  }

  private async startExec(task: Task, p: ShimProcess, signal?: AbortSignal): Promise<number> {
    const pidFile = join(task.bundle, `exec-${p.execId}.pid`);
    rmSync(pidFile, { force: true });
    try {
      await p.io.open(task.namespace, task.id, signal);
    } catch (e) {
      if (e instanceof StdioError) throw new InvalidArgument(`exec ${p.execId}: ${e.message}`, { cause: e });
      throw e;
    }
    const console = p.io.paths.terminal
      ? await this.opts.runtime.newConsoleSocket(task.bundle, signal)
      : undefined;
    try {
      const masterP = console?.receiveMaster(signal);
      masterP?.catch(() => {});
      const op = this.opts.runtime.exec(
        task.id,
        p.spec,
        { pidFile, stdio: p.io.runtimeStdio(), consoleSocket: console?.path },
        signal,
      );
      p.starting = op.catch(() => {});
      const pid = await op;
      if (masterP) p.io.attachConsole(await masterP);
      else p.io.started();
      p.pid = pid;
      rmSync(pidFile, { force: true });
    } catch (e) {
      p.io.close();
      p.starting = undefined;
      throw runtimeError(`exec ${p.execId} in task ${task.id}`, e);
    } finally {
      console?.close();
    }
    p.spec = undefined;
    if (p.status === 'created') p.status = 'running';
    this.opts.publish(
      task.namespace,
      '/tasks/exec-started',
      TaskExecStartedSchema,
      create(TaskExecStartedSchema, { containerId: task.id, execId: p.execId, pid: p.pid }),
    );
    p.starting = undefined;
    this.watchExit(task, p);
    return p.pid;
  }

  private watchExit(task: Task, p: ShimProcess): void {
    this.opts.reaper
      .watch(p.pid)
      .then((info) => this.onExit(task, p, info))
      .catch((e) => this.log.error({ err: e, task: task.id, exec: p.execId }, 'exit handling failed'));
  }

  /** An exit the reaper saw: drain output, write the exit file (init), then tell waiters and the daemon. */
  private async onExit(task: Task, p: ShimProcess, info: ExitInfo): Promise<void> {
    if (p.starting) await p.starting;
    await p.io.drained();
    p.status = 'stopped';
    if (p.execId === '') {
      // Processes exec'd into a container sharing the host pid namespace outlive its init otherwise.
      for (const e of task.execs.values()) {
        if (e.status === 'running') await this.opts.runtime.kill(task.id, 9, true).catch(() => {});
      }
      this.opts.oom?.check(task.key);
      try {
        await writeExitFile(exitFilePath(task.bundle), info);
      } catch (e) {
        this.log.error({ err: e, task: task.id }, 'write exit file failed');
      }
    }
    p.settle(info);
    this.opts.publish(
      task.namespace,
      '/tasks/exit',
      TaskExitSchema,
      create(TaskExitSchema, {
        containerId: task.id,
        id: p.execId === '' ? task.id : p.execId,
        pid: info.pid,
        exitStatus: info.exitStatus,
        exitedAt: toTimestamp(info.exitedAt),
      }),
    );
  }

  private publishOom(task: Task): void {
    this.opts.publish(
      task.namespace,
      '/tasks/oom',
      TaskOOMSchema,
      create(TaskOOMSchema, { containerId: task.id }),
    );
  }

  async delete(
    namespace: string,
    id: string,
    execId: string,
    signal?: AbortSignal,
  ): Promise<{ pid: number; exitStatus: number; exitedAt: Timestamp | undefined }> {
    const task = this.get(namespace, id);
    return task.serial.run(async () => {
      const p = this.process(task, execId);
      this.check(task, p, 'delete');
      if (execId !== '') {
        task.execs.delete(execId);
        p.io.close();
        p.status = 'deleted';
        return { pid: p.pid, exitStatus: p.exit?.exitStatus ?? 0, exitedAt: toTimestamp(p.exit?.exitedAt) };
      }
      if (p.status === 'created') {
        // Never started: runc delete --force kills runc init, whose exit the reaper then collects.
        await this.opts.runtime.delete(id, true, signal).catch((e) => {
          if (!isNoSuchContainer(e)) throw runtimeError(`task ${id}: delete`, e);
        });
        await Promise.race([p.wait(), new Promise((r) => setTimeout(r, 5000).unref())]);
      } else {
        await this.opts.runtime.delete(id, false, signal).catch(async (e) => {
          if (isNoSuchContainer(e)) return;
          await this.opts.runtime.delete(id, true, signal).catch((e2) => {
            if (!isNoSuchContainer(e2)) throw runtimeError(`task ${id}: delete`, e2);
          });
        });
      }
      for (const e of task.execs.values()) e.io.close();
      task.execs.clear();
      p.io.close();
      task.log.close();
      this.opts.oom?.remove(task.key);
      if (task.rootfsMounted) await unmountRootfs(task.bundle, signal);
      p.status = 'deleted';
      this.tasks.delete(task.key);
      if (!p.exit) this.opts.reaper.forget(p.pid);
      const exitStatus = p.exit?.exitStatus ?? 0;
      const exitedAt = toTimestamp(p.exit?.exitedAt);
      this.opts.publish(
        namespace,
        '/tasks/delete',
        TaskDeleteSchema,
        create(TaskDeleteSchema, { containerId: id, pid: p.pid, exitStatus, exitedAt, id }),
      );
      return { pid: p.pid, exitStatus, exitedAt };
    });
  }

  /**
   * The task's kept output (init and execs), in batches; with `follow`, until its init has exited
   * (output drained), the task is deleted, or `signal` aborts.
   */
  readLogs(
    namespace: string,
    id: string,
    opts: Omit<ReadLogOptions, 'ended' | 'name'>,
  ): AsyncGenerator<LogRecord[]> {
    const task = this.get(namespace, id);
    return readLog(task.log, { ...opts, ended: task.init.wait(), name: `task ${id}` });
  }

  /** The init state of every task in `namespace`, by id (tasks being created are not there yet). */
  list(namespace: string): StateResponse[] {
    return [...this.tasks.values()]
      .filter((t) => t.namespace === namespace)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((t) => this.state(namespace, t.id, ''));
  }

  state(namespace: string, id: string, execId: string): StateResponse {
    const task = this.get(namespace, id);
    const p = this.process(task, execId);
    // An exec reports paused while its container is.
    const status =
      execId !== '' && task.init.status === 'paused' && p.status === 'running' ? 'paused' : p.status;
    return {
      $typeName: 'containerd.task.v2.StateResponse',
      id: execId === '' ? id : execId,
      bundle: task.bundle,
      pid: p.pid,
      status: STATUS[status],
      stdin: p.io.paths.stdin,
      stdout: p.io.paths.stdout,
      stderr: p.io.paths.stderr,
      terminal: p.io.paths.terminal,
      exitStatus: p.exit?.exitStatus ?? 0,
      exitedAt: toTimestamp(p.exit?.exitedAt),
      execId,
    };
  }

  async kill(namespace: string, req: KillRequest, signal?: AbortSignal): Promise<void> {
    const task = this.get(namespace, req.id);
    const p = this.process(task, req.execId);
    if (p.status === 'stopped' || p.status === 'deleted') {
      throw new NotFound(`process ${req.execId || req.id}: process already finished: not found`);
    }
    if (req.execId !== '') {
      if (p.status === 'created') throw new FailedPrecondition(`exec ${req.execId}: not started yet`);
      try {
        process.kill(p.pid, req.signal);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ESRCH')
          throw new NotFound(`exec ${req.execId}: process already finished`);
        throw e;
      }
      return;
    }
    await this.opts.runtime.kill(req.id, req.signal, req.all, signal).catch((e) => {
      if (isNoSuchContainer(e))
        throw new NotFound(`task ${req.id}: container not found in runc`, { cause: e });
      throw runtimeError(`task ${req.id}: kill`, e);
    });
  }

  async exec(namespace: string, req: ExecProcessRequest): Promise<void> {
    const task = this.get(namespace, req.id);
    validateIdentifier(req.execId, 'exec id');
    await task.serial.run(async () => {
      if (task.execs.has(req.execId)) {
        throw new AlreadyExists(`exec ${req.execId} in task ${req.id}: already exists`);
      }
      this.check(task, task.init, 'exec');
      const spec = unpackJson<Record<string, unknown>>(req.spec, OCI_PROCESS_URL);
      validateProcess(spec, `exec ${req.execId}`, true);
      const io = new ProcessIO(
        { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal },
        task.log,
      );
      const p = new ShimProcess(req.execId, io);
      p.spec = { ...spec, terminal: req.terminal };
      task.execs.set(req.execId, p);
      this.opts.publish(
        namespace,
        '/tasks/exec-added',
        TaskExecAddedSchema,
        create(TaskExecAddedSchema, { containerId: req.id, execId: req.execId }),
      );
    });
  }

  async pause(namespace: string, id: string, signal?: AbortSignal): Promise<void> {
    const task = this.get(namespace, id);
    await task.serial.run(async () => {
      this.check(task, task.init, 'pause');
      task.init.status = 'pausing';
      try {
        await this.opts.runtime.pause(id, signal);
      } catch (e) {
        if (task.init.status === 'pausing') task.init.status = 'running';
        throw runtimeError(`task ${id}: pause`, e);
      }
      if (task.init.status === 'pausing') task.init.status = 'paused';
      this.opts.publish(
        namespace,
        '/tasks/paused',
        TaskPausedSchema,
        create(TaskPausedSchema, { containerId: id }),
      );
    });
  }

  async resume(namespace: string, id: string, signal?: AbortSignal): Promise<void> {
    const task = this.get(namespace, id);
    await task.serial.run(async () => {
      this.check(task, task.init, 'resume');
      await this.opts.runtime.resume(id, signal).catch((e) => {
        throw runtimeError(`task ${id}: resume`, e);
      });
      if (task.init.status === 'paused') task.init.status = 'running';
      this.opts.publish(
        namespace,
        '/tasks/resumed',
        TaskResumedSchema,
        create(TaskResumedSchema, { containerId: id }),
      );
    });
  }

  async pids(namespace: string, id: string, signal?: AbortSignal) {
    const task = this.get(namespace, id);
    this.check(task, task.init, 'pids');
    const pids = await this.opts.runtime.ps(id, signal).catch((e) => {
      throw runtimeError(`task ${id}: ps`, e);
    });
    const byPid = new Map<number, string>();
    for (const e of task.execs.values()) if (e.pid > 0) byPid.set(e.pid, e.execId);
    return pids.map((pid) => {
      const execId = byPid.get(pid);
      return create(ProcessInfoSchema, {
        pid,
        info: execId ? packAny(ProcessDetailsSchema, create(ProcessDetailsSchema, { execId })) : undefined,
      });
    });
  }

  async update(namespace: string, req: UpdateTaskRequest, signal?: AbortSignal): Promise<void> {
    const task = this.get(namespace, req.id);
    const resources = unpackJson(req.resources, OCI_LINUX_RESOURCES_URL);
    if (typeof resources !== 'object' || resources === null || Array.isArray(resources)) {
      throw new InvalidArgument(`task ${req.id}: resources must be a LinuxResources object`);
    }
    await task.serial.run(async () => {
      this.check(task, task.init, 'update');
      await this.opts.runtime.update(req.id, resources, signal).catch((e) => {
        throw runtimeError(`task ${req.id}: update`, e);
      });
    });
  }

  async checkpoint(namespace: string, req: CheckpointTaskRequest, signal?: AbortSignal): Promise<void> {
    const task = this.get(namespace, req.id);
    const o =
      req.options && req.options.typeUrl !== ''
        ? unpackAnyAs(req.options, CheckpointOptionsSchema)
        : create(CheckpointOptionsSchema, {});
    const imagePath = o.imagePath || req.path;
    if (!isAbsolute(imagePath)) {
      throw new InvalidArgument(
        `task ${req.id}: checkpoint path ${JSON.stringify(imagePath)} must be absolute`,
      );
    }
    await task.serial.run(async () => {
      this.check(task, task.init, 'checkpoint');
      await this.opts.runtime
        .checkpoint(
          req.id,
          {
            imagePath,
            workPath: o.workPath || undefined,
            leaveRunning: !o.exit,
            tcpEstablished: o.openTcp,
            externalUnixSockets: o.externalUnixSockets,
            shellJob: o.terminal,
            fileLocks: o.fileLocks,
            emptyNamespaces: o.emptyNamespaces,
            cgroupsMode: o.cgroupsMode || undefined,
          },
          signal,
        )
        .catch((e) => {
          throw runtimeError(`task ${req.id}: checkpoint`, e);
        });
    });
  }

  resize(namespace: string, id: string, execId: string, width: number, height: number): void {
    const task = this.get(namespace, id);
    const p = this.process(task, execId);
    // As containerd's runc shim: a process without a terminal has nothing to resize, and says so
    // with OK (clients such as dockerd resize every process they attach to).
    p.io.resize(width, height);
  }

  closeIO(namespace: string, id: string, execId: string, stdin: boolean): void {
    const task = this.get(namespace, id);
    const p = this.process(task, execId);
    if (stdin) p.io.closeStdin();
  }

  async wait(namespace: string, id: string, execId: string, signal?: AbortSignal): Promise<ExitInfo> {
    const task = this.get(namespace, id);
    const p = this.process(task, execId);
    const exited = p.wait();
    if (!signal) return exited;
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      exited.then((info) => {
        signal.removeEventListener('abort', onAbort);
        resolve(info);
      }, reject);
    });
  }

  async stats(namespace: string, id: string, signal?: AbortSignal): Promise<Any> {
    const task = this.get(namespace, id);
    this.check(task, task.init, 'stats');
    if (!this.opts.stats) throw new FailedPrecondition(`task ${id}: stats are not available in this shim`);
    try {
      return await this.opts.stats(task.init.pid, signal);
    } catch (e) {
      throw runtimeError(`task ${id}: stats`, e);
    }
  }

  private get(namespace: string, id: string): Task {
    const task = this.tasks.get(taskKey(namespace, id));
    if (!task) throw new NotFound(`task ${id} not found`);
    return task;
  }

  private process(task: Task, execId: string): ShimProcess {
    if (execId === '') return task.init;
    const p = task.execs.get(execId);
    if (!p) throw new NotFound(`exec ${execId} in task ${task.id}: not found`);
    return p;
  }

  private check(task: Task, p: ShimProcess, op: Operation): void {
    const why = refusal(p.status, op);
    if (why) {
      const what = p.execId === '' ? `task ${task.id}` : `exec ${p.execId} in task ${task.id}`;
      throw new FailedPrecondition(`${what}: ${why}`);
    }
  }

  /** Closes every task's fds (the shim is exiting); containers keep running. */
  closeAll(): void {
    for (const t of this.tasks.values()) {
      for (const e of t.execs.values()) e.io.close();
      t.init.io.close();
      t.log.close();
    }
  }
}

// The bundle's small files (the spec read here, stale pid and exit files removed) are handled
// synchronously on the paths of create and exec: each call takes microseconds on the state dir, where
// an async call costs a thread-pool round trip (a create made a dozen of them). The pids themselves
// come from the runtime, which has read runc's pid file already.
function readSpec(id: string, bundle: string): unknown {
  const path = join(bundle, 'config.json');
  let text: string;
  try {
    const st = statSync(bundle);
    if (!st.isDirectory()) throw new InvalidArgument(`task ${id}: bundle ${bundle} is not a directory`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof InvalidArgument) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new InvalidArgument(
      `task ${id}: ${code === 'ENOENT' ? `${path} does not exist` : `cannot read ${path}: ${code}`}`,
      {
        cause: e,
      },
    );
  }
  let spec: unknown;
  try {
    spec = JSON.parse(text) as unknown;
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new Error('not an object');
  } catch (e) {
    throw new InvalidArgument(`task ${id}: ${path} is not a valid OCI spec: ${(e as Error).message}`, {
      cause: e,
    });
  }
  validateProcess((spec as { process?: unknown }).process, `task ${id}: ${path}`, false);
  return spec;
}

function runtimeError(what: string, e: unknown): Error {
  if (e instanceof Error && 'kind' in e) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new Unknown(`${what}: ${msg}`, { cause: e });
}
