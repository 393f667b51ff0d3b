import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dirname } from 'node:path';
import { toBinary } from '@bufbuild/protobuf';
import type { Server } from '@ctrd/api-proto';
import { createServer, service } from '@ctrd/api-proto';
import { ShimLogsService, ShimTasksService, TaskService } from '@ctrd/api-proto/shim';
import { EventPublisher } from './event-publisher.js';
import type { DaemonForwarder } from './forwarder.js';
import { createDaemonForwarder } from './forwarder.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';
import { OomWatcher } from './oom-watcher.js';
import type { ShimOptions } from './options.js';
import type { PeekExited, WaitPid } from './reaper.js';
import { Reaper } from './reaper.js';
import type { Runtime } from './runtime.js';
import { shimDir, shimSocketPath } from './socket-address.js';
import type { Publish, StatsReader } from './task-manager.js';
import { TaskManager } from './task-manager.js';
import { createShimLogsService, createShimTasksService, createTaskService } from './task-service.js';

// One serving shim process: the reaper, the tasks, the event queue and the Task API server on the
// shim's socket.

export interface ShimDeps {
  runtime: Runtime;
  waitPid: WaitPid;
  /** Which child exited, without reaping it (see Reaper); optional. */
  peekExited?: PeekExited | undefined;
  /** PR_SET_CHILD_SUBREAPER for this process. */
  setSubreaper: () => void;
  stats?: StatsReader | undefined;
  logger?: Logger | undefined;
  version: string;
}

export class Shim {
  readonly socketPath: string;
  readonly reaper: Reaper;
  readonly publisher: EventPublisher;
  readonly manager: TaskManager;
  private readonly forwarder: DaemonForwarder;
  private readonly oom: OomWatcher | undefined;
  private server: Server | undefined;
  private readonly log: Logger;
  private exitResolve: (() => void) | undefined;
  /** Resolves when Shutdown found no task left and the server has closed. */
  readonly done: Promise<void>;

  constructor(
    readonly opts: ShimOptions,
    private readonly deps: ShimDeps,
  ) {
    this.log = deps.logger ?? silentLogger;
    this.socketPath = shimSocketPath(opts.stateDir, opts.namespace, opts.id, opts.address);
    this.reaper = new Reaper({ waitPid: deps.waitPid, peekExited: deps.peekExited, logger: this.log });
    this.forwarder = createDaemonForwarder(opts.address);
    this.publisher = new EventPublisher({
      forward: this.forwarder.forward,
      isPermanent: this.forwarder.isPermanent,
      logger: this.log,
    });
    this.oom = opts.oomNotify ? new OomWatcher() : undefined;
    const publish: Publish = (namespace, topic, schema, msg) => {
      this.log.debug({ namespace, topic }, 'event');
      this.publisher.publish({
        namespace,
        topic,
        typeUrl: schema.typeName,
        value: toBinary(schema, msg),
        timestamp: new Date(),
      });
    };
    this.manager = new TaskManager({
      runtime: deps.runtime,
      reaper: this.reaper,
      publish,
      oom: this.oom,
      stats: deps.stats,
      logger: this.log,
    });
    this.done = new Promise((r) => {
      this.exitResolve = r;
    });
  }

  address(): string {
    return `unix://${this.socketPath}`;
  }

  async start(signal?: AbortSignal): Promise<void> {
    this.deps.setSubreaper();
    this.reaper.start();
    await mkdir(dirname(this.socketPath), { recursive: true, mode: 0o700 });
    // mkdir leaves an existing directory's mode alone; the socket dir must not be traversable.
    await chmod(dirname(this.socketPath), 0o700);
    this.server = await createServer({
      socketPath: this.socketPath,
      mode: 0o600,
      logger: this.log,
      signal,
      services: [
        service(
          TaskService,
          createTaskService({
            manager: this.manager,
            defaultNamespace: this.opts.namespace,
            version: this.deps.version,
            onShutdown: () => {
              // Answer the call first, then go.
              setImmediate(() => void this.stop());
            },
          }),
        ),
        service(
          ShimTasksService,
          createShimTasksService({ manager: this.manager, defaultNamespace: this.opts.namespace }),
        ),
        service(
          ShimLogsService,
          createShimLogsService({ manager: this.manager, defaultNamespace: this.opts.namespace }),
        ),
      ],
    });
    // For the daemon: which process to kill if this shim ever hangs, and where it listens.
    const dir = shimDir(this.opts.stateDir, this.opts.id);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, 'shim.pid'), `${process.pid}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'address'), `${this.address()}\n`, { mode: 0o600 });
  }

  /** Stops serving; tasks' containers are left running (a shim exits only with no task left). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await server.close({ graceMs: 2000 }).catch(() => {});
    // Give queued events (the last /tasks/delete) a moment to reach the daemon.
    await this.publisher.drained(AbortSignal.timeout(5000)).catch(() => {});
    this.publisher.close();
    this.forwarder.close();
    this.oom?.close();
    this.manager.closeAll();
    this.reaper.stop();
    const dir = shimDir(this.opts.stateDir, this.opts.id);
    await rm(join(dir, 'shim.pid'), { force: true });
    await rm(join(dir, 'address'), { force: true });
    this.exitResolve?.();
  }
}
