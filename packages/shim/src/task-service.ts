import { create } from '@bufbuild/protobuf';
import { EmptySchema } from '@bufbuild/protobuf/wkt';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import { fromTimestamp, isInvalidArgument, namespaceFromHeaders, toTimestamp } from '@ctrd/api-proto';
import type { LogStream as FileStream } from './log-file.js';
import { LogStream, type ReadResponse } from '@ctrd/api-proto/logs';
import type { ShimLogsService, ShimTasksService, TaskService } from '@ctrd/api-proto/shim';
import {
  ConnectResponseSchema,
  CreateTaskResponseSchema,
  DeleteResponseSchema,
  ListTasksResponseSchema,
  PidsResponseSchema,
  StartResponseSchema,
  StatsResponseSchema,
  WaitResponseSchema,
} from '@ctrd/api-proto/shim';
import type { TaskManager } from './task-manager.js';

// The Connect half of the shim's Task service: it reads the namespace, hands the work to the
// TaskManager and shapes the answers. Errors are ctrd's classes, mapped to gRPC codes by the server.

export interface TaskServiceOptions {
  manager: TaskManager;
  /** Used when a call carries no containerd-namespace header. */
  defaultNamespace: string;
  version: string;
  /** Called by Shutdown when no task is left; the shim then exits. */
  onShutdown: () => void;
}

function namespaceOf(ctx: HandlerContext, fallback: string): string {
  try {
    return namespaceFromHeaders(ctx.requestHeader);
  } catch (e) {
    if (isInvalidArgument(e)) throw e;
    return fallback;
  }
}

/** ctrd's shim addition: every hosted task's state in one call (ctrd.shim.v1.Tasks). */
export function createShimTasksService(
  opts: Pick<TaskServiceOptions, 'manager' | 'defaultNamespace'>,
): ServiceImpl<typeof ShimTasksService> {
  return {
    async list(_req, ctx) {
      return create(ListTasksResponseSchema, {
        tasks: opts.manager.list(namespaceOf(ctx, opts.defaultNamespace)),
      });
    },
  };
}

const STREAMS: Record<FileStream, LogStream> = {
  stdout: LogStream.STDOUT,
  stderr: LogStream.STDERR,
};

function timeOf(iso: string) {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : toTimestamp(new Date(ms));
}

/** ctrd's shim addition: the output kept of each hosted task (ctrd.shim.v1.Logs). */
export function createShimLogsService(
  opts: Pick<TaskServiceOptions, 'manager' | 'defaultNamespace'>,
): ServiceImpl<typeof ShimLogsService> {
  return {
    async *read(req, ctx) {
      const streams = new Set<FileStream>();
      for (const s of req.streams) {
        if (s === LogStream.STDOUT) streams.add('stdout');
        else if (s === LogStream.STDERR) streams.add('stderr');
      }
      const records = opts.manager.readLogs(namespaceOf(ctx, opts.defaultNamespace), req.containerId, {
        since: req.since ? fromTimestamp(req.since) : undefined,
        tail: req.tail,
        follow: req.follow,
        streams,
        signal: ctx.signal,
      });
      for await (const batch of records) {
        const out: ReadResponse = {
          $typeName: 'ctrd.services.logs.v1.ReadResponse',
          entries: batch.map((r) => ({
            $typeName: 'ctrd.services.logs.v1.LogEntry',
            time: timeOf(r.time),
            stream: STREAMS[r.stream],
            line: r.log,
          })),
        };
        yield out;
      }
    },
  };
}

export function createTaskService(opts: TaskServiceOptions): ServiceImpl<typeof TaskService> {
  const m = opts.manager;
  const ns = (ctx: HandlerContext): string => namespaceOf(ctx, opts.defaultNamespace);
  const empty = () => create(EmptySchema);
  return {
    async state(req, ctx) {
      return m.state(ns(ctx), req.id, req.execId);
    },
    async create(req, ctx) {
      const pid = await m.create(ns(ctx), req, ctx.signal);
      return create(CreateTaskResponseSchema, { pid });
    },
    async start(req, ctx) {
      const pid = await m.start(ns(ctx), req.id, req.execId, ctx.signal);
      return create(StartResponseSchema, { pid });
    },
    async delete(req, ctx) {
      const r = await m.delete(ns(ctx), req.id, req.execId, ctx.signal);
      return create(DeleteResponseSchema, r);
    },
    async pids(req, ctx) {
      return create(PidsResponseSchema, { processes: await m.pids(ns(ctx), req.id, ctx.signal) });
    },
    async pause(req, ctx) {
      await m.pause(ns(ctx), req.id, ctx.signal);
      return empty();
    },
    async resume(req, ctx) {
      await m.resume(ns(ctx), req.id, ctx.signal);
      return empty();
    },
    async checkpoint(req, ctx) {
      await m.checkpoint(ns(ctx), req, ctx.signal);
      return empty();
    },
    async kill(req, ctx) {
      await m.kill(ns(ctx), req, ctx.signal);
      return empty();
    },
    async exec(req, ctx) {
      await m.exec(ns(ctx), req);
      return empty();
    },
    async resizePty(req, ctx) {
      m.resize(ns(ctx), req.id, req.execId, req.width, req.height);
      return empty();
    },
    async closeIO(req, ctx) {
      m.closeIO(ns(ctx), req.id, req.execId, req.stdin);
      return empty();
    },
    async update(req, ctx) {
      await m.update(ns(ctx), req, ctx.signal);
      return empty();
    },
    async wait(req, ctx) {
      const info = await m.wait(ns(ctx), req.id, req.execId, ctx.signal);
      return create(WaitResponseSchema, {
        exitStatus: info.exitStatus,
        exitedAt: toTimestamp(info.exitedAt),
      });
    },
    async stats(req, ctx) {
      return create(StatsResponseSchema, { stats: await m.stats(ns(ctx), req.id, ctx.signal) });
    },
    async connect(req, ctx) {
      return create(ConnectResponseSchema, {
        shimPid: process.pid,
        taskPid: req.id === '' ? 0 : m.taskPid(ns(ctx), req.id),
        version: opts.version,
      });
    },
    async shutdown(_req) {
      if (m.size === 0) opts.onShutdown();
      return empty();
    },
  };
}
