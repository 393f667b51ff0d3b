import { closeSync, constants, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { create, fromBinary } from '@bufbuild/protobuf';
import { Code, type ConnectRouter, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { packAny, toTimestamp } from '@ctrd/api-proto';
import { MetricsSchema as V2MetricsSchema } from '@ctrd/api-proto/cgroups/v2';
import { CheckpointOptionsSchema, ProcessDetailsSchema } from '@ctrd/api-proto/runc-options';
import { Status } from '@ctrd/api-proto/task-types';
import { TasksService } from '@ctrd/api-proto/tasks';

/** What the fake "process" sees: the shim's ends of the client's fifos. */
export interface FakeProcessIo {
  args: string[];
  stdout?: Writable;
  stderr?: Writable;
  /** Everything the client wrote to stdin, once it closed it. */
  stdin: Promise<string>;
  killed: Promise<number>;
}

export type FakeProgram = (io: FakeProcessIo) => Promise<number>;

interface FakeProc {
  containerId: string;
  execId: string;
  pid: number;
  status: Status;
  exitStatus: number;
  args: string[];
  paths: { stdin: string; stdout: string; stderr: string; terminal: boolean };
  stdout?: Writable;
  stderr?: Writable;
  stdinFd?: number;
  stdinKeep?: number;
  stdinText: Promise<string>;
  exited: Promise<void>;
  markExited: () => void;
  kill: (signal: number) => void;
  killed: Promise<number>;
}

let nextPid = 4000;

/**
 * Tasks as the shim would run them, without runc: the client's fifos are opened the way the shim
 * opens them (output O_RDWR, stdin O_RDONLY plus a keep-alive writer), and a test-supplied program
 * plays the process.
 */
export class FakeTasks {
  procs = new Map<string, FakeProc>();
  calls: string[] = [];
  /** The stdio of each Tasks.Create, as sent. */
  created: { stdin: string; stdout: string; stderr: string; terminal: boolean }[] = [];
  checkpoints: { containerId: string; options: unknown }[] = [];
  checkpointError: string | undefined;
  /** Makes Start fail as runc does for a missing executable. */
  startError: string | undefined;
  program: FakeProgram = async (io) => {
    io.stdout?.write(`ran ${io.args.join(' ')}\n`);
    return 0;
  };
  /** Args of a container's init process, as `run`/`create` put them in the spec. */
  argsOf: (ns: string, containerId: string) => string[] = () => [];

  private key(ns: string, id: string, execId = ''): string {
    return `${ns}/${id}/${execId}`;
  }

  private ns(ctx: HandlerContext, method: string): string {
    const ns = ctx.requestHeader.get('containerd-namespace') ?? '';
    this.calls.push(`Tasks.${method} ${ns}`);
    return ns;
  }

  private find(ns: string, id: string, execId = ''): FakeProc {
    const p = this.procs.get(this.key(ns, id, execId));
    if (!p)
      throw new ConnectError(execId ? `process ${execId} not found` : `task ${id} not found`, Code.NotFound);
    return p;
  }

  private open(
    ns: string,
    containerId: string,
    execId: string,
    paths: FakeProc['paths'],
    args: string[],
  ): FakeProc {
    let markExited = () => {};
    const exited = new Promise<void>((resolve) => {
      markExited = resolve;
    });
    let kill = (_: number) => {};
    const killed = new Promise<number>((resolve) => {
      kill = resolve;
    });
    const proc: FakeProc = {
      containerId,
      execId,
      pid: 0,
      status: Status.CREATED,
      exitStatus: 0,
      args,
      paths,
      stdinText: Promise.resolve(''),
      exited,
      markExited,
      kill,
      killed,
    };
    // Like containerd's shim (and ctrd's): an init's fifos are opened in Create, an exec's in Start.
    if (execId === '') this.openIo(proc);
    this.procs.set(this.key(ns, containerId, execId), proc);
    return proc;
  }

  private openIo(proc: FakeProc): void {
    const paths = proc.paths;
    const output = (path: string) =>
      path
        ? new Socket({ fd: openSync(path, constants.O_RDWR | constants.O_NONBLOCK), readable: false })
        : undefined;
    proc.stdout = output(paths.stdout);
    proc.stderr = output(paths.stderr);
    if (paths.stdin) {
      proc.stdinFd = openSync(paths.stdin, constants.O_RDONLY | constants.O_NONBLOCK);
      proc.stdinKeep = openSync(paths.stdin, constants.O_WRONLY | constants.O_NONBLOCK);
      const reader: Readable = new Socket({ fd: proc.stdinFd, readable: true, writable: false });
      proc.stdinText = new Promise((resolve) => {
        const chunks: Buffer[] = [];
        reader.on('data', (c: Buffer) => chunks.push(c));
        reader.on('end', () => resolve(Buffer.concat(chunks).toString()));
        reader.on('error', () => resolve(Buffer.concat(chunks).toString()));
      });
    }
  }

  private start(proc: FakeProc): void {
    if (proc.execId !== '') this.openIo(proc);
    proc.pid = nextPid++;
    proc.status = Status.RUNNING;
    void this.program({
      args: proc.args,
      stdout: proc.stdout,
      stderr: proc.stderr,
      stdin: proc.stdinText,
      killed: proc.killed,
    }).then(async (code) => {
      await Promise.all(
        [proc.stdout, proc.stderr].map((s) => s && new Promise<void>((resolve) => s.end(() => resolve()))),
      );
      proc.exitStatus = code;
      proc.status = Status.STOPPED;
      proc.markExited();
    });
  }

  routes = (router: ConnectRouter): void => {
    router.service(TasksService, {
      create: (req, ctx) => {
        const ns = this.ns(ctx, 'create');
        if (this.procs.has(this.key(ns, req.containerId))) {
          throw new ConnectError(`task ${req.containerId}: already exists`, Code.AlreadyExists);
        }
        const { stdin, stdout, stderr, terminal } = req;
        this.created.push({ stdin, stdout, stderr, terminal });
        this.open(
          ns,
          req.containerId,
          '',
          { stdin, stdout, stderr, terminal },
          this.argsOf(ns, req.containerId),
        );
        return { containerId: req.containerId, pid: 0 };
      },
      exec: (req, ctx) => {
        const ns = this.ns(ctx, 'exec');
        this.find(ns, req.containerId);
        const spec = JSON.parse(new TextDecoder().decode(req.spec?.value)) as { args: string[] };
        const { stdin, stdout, stderr, terminal } = req;
        this.open(ns, req.containerId, req.execId, { stdin, stdout, stderr, terminal }, spec.args);
        return {};
      },
      start: async (req, ctx) => {
        const ns = this.ns(ctx, `start${req.execId ? ` ${req.execId}` : ''}`);
        const proc = this.find(ns, req.containerId, req.execId);
        // runc takes a while: a client that let go of its fifos before Start would see EOF here.
        await new Promise((resolve) => setTimeout(resolve, 30));
        if (this.startError) throw new ConnectError(this.startError, Code.Unknown);
        this.start(proc);
        return { pid: proc.pid };
      },
      wait: async (req, ctx) => {
        const ns = this.ns(ctx, `wait${req.execId ? ` ${req.execId}` : ''}`);
        const proc = this.find(ns, req.containerId, req.execId);
        await proc.exited;
        return { exitStatus: proc.exitStatus, exitedAt: toTimestamp(new Date('2026-11-23T08:00:05Z')) };
      },
      get: (req, ctx) => {
        const ns = this.ns(ctx, 'get');
        const p = this.find(ns, req.containerId, req.execId);
        return {
          process: {
            containerId: p.containerId,
            id: p.execId || p.containerId,
            pid: p.pid,
            status: p.status,
            exitStatus: p.exitStatus,
          },
        };
      },
      list: (_req, ctx) => {
        const ns = this.ns(ctx, 'list');
        return {
          tasks: [...this.procs]
            .filter(([k, p]) => k.startsWith(`${ns}/`) && p.execId === '')
            .map(([, p]) => ({
              containerId: p.containerId,
              id: p.containerId,
              pid: p.pid,
              status: p.status,
            })),
        };
      },
      delete: (req, ctx) => {
        const ns = this.ns(ctx, 'delete');
        const p = this.find(ns, req.containerId);
        if (p.status === Status.RUNNING || p.status === Status.PAUSED) {
          throw new ConnectError('task must be stopped before deletion: running', Code.FailedPrecondition);
        }
        this.close(p);
        this.procs.delete(this.key(ns, req.containerId));
        return { id: req.containerId, pid: p.pid, exitStatus: p.exitStatus };
      },
      deleteProcess: (req, ctx) => {
        const ns = this.ns(ctx, `deleteProcess ${req.execId}`);
        const p = this.find(ns, req.containerId, req.execId);
        this.close(p);
        this.procs.delete(this.key(ns, req.containerId, req.execId));
        return { id: req.execId, pid: p.pid, exitStatus: p.exitStatus };
      },
      kill: (req, ctx) => {
        const ns = this.ns(
          ctx,
          `kill ${req.signal}${req.all ? ' all' : ''}${req.execId ? ` ${req.execId}` : ''}`,
        );
        this.find(ns, req.containerId, req.execId).kill(req.signal);
        return {};
      },
      closeIO: (req, ctx) => {
        const ns = this.ns(ctx, `closeIO${req.execId ? ` ${req.execId}` : ''}`);
        const p = this.find(ns, req.containerId, req.execId);
        if (p.stdinKeep !== undefined) closeSync(p.stdinKeep);
        p.stdinKeep = undefined;
        return {};
      },
      resizePty: (req, ctx) => {
        this.ns(ctx, `resizePty ${req.width}x${req.height}`);
        return {};
      },
      pause: (req, ctx) => {
        const ns = this.ns(ctx, 'pause');
        this.find(ns, req.containerId).status = Status.PAUSED;
        return {};
      },
      resume: (req, ctx) => {
        const ns = this.ns(ctx, 'resume');
        this.find(ns, req.containerId).status = Status.RUNNING;
        return {};
      },
      listPids: (req, ctx) => {
        const ns = this.ns(ctx, 'listPids');
        const init = this.find(ns, req.containerId);
        const execs = [...this.procs.values()].filter(
          (p) => p.containerId === req.containerId && p.execId !== '',
        );
        return {
          processes: [
            { pid: init.pid },
            ...execs.map((p) => ({
              pid: p.pid,
              info: packAny(ProcessDetailsSchema, create(ProcessDetailsSchema, { execId: p.execId })),
            })),
          ],
        };
      },
      checkpoint: (req, ctx) => {
        const ns = this.ns(ctx, 'checkpoint');
        this.find(ns, req.containerId);
        if (this.checkpointError) throw new ConnectError(this.checkpointError, Code.Unknown);
        this.checkpoints.push({
          containerId: req.containerId,
          options: req.options ? fromBinary(CheckpointOptionsSchema, req.options.value) : undefined,
        });
        return {
          descriptors: [
            {
              mediaType: 'application/vnd.containerd.container.criu.checkpoint.criu.tar',
              digest: `sha256:${'a'.repeat(64)}`,
              size: 1024n,
            },
          ],
        };
      },
      metrics: (req, ctx) => {
        const ns = this.ns(ctx, `metrics ${req.filters.join(' ')}`);
        const id = (req.filters[0] ?? '').replace(/^id==/, '');
        this.find(ns, id);
        const data = create(V2MetricsSchema, {
          pids: { current: 3n, limit: 100n },
          cpu: { usageUsec: 1500n, userUsec: 1000n, systemUsec: 500n },
          memory: { usage: 4096n, usageLimit: 1048576n },
        });
        return {
          metrics: [
            {
              id,
              timestamp: toTimestamp(new Date('2026-11-23T08:00:00Z')),
              data: packAny(V2MetricsSchema, data),
            },
          ],
        };
      },
    });
  };

  private close(p: FakeProc): void {
    for (const fd of [p.stdinKeep]) if (fd !== undefined) closeSync(fd);
    p.stdinKeep = undefined;
  }
}
