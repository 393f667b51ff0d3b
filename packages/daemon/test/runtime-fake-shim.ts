import { create } from '@bufbuild/protobuf';
import { createInMemoryClient, NotFound, NotImplemented, Unavailable, service } from '@ctrd/api-proto';
import { StateResponseSchema, TaskService } from '@ctrd/api-proto/shim';
import { Status } from '@ctrd/api-proto/task-types';
import {
  LogEntrySchema,
  LogStream,
  type ReadRequest,
  type ReadResponse,
  ReadResponseSchema,
} from '@ctrd/api-proto/logs';
import type { DeadTaskExit, ShimConnection, ShimLauncher } from '../src/runtime/shim-launcher.js';

// A launcher whose shims are in-memory Task services: what the manager and LocalTasks see of a
// shim (create, state, delete, connect, shutdown), with a switch to make one "die".

interface FakeTask {
  bundle: string;
  status: Status;
  pid: number;
}

export class FakeShim {
  readonly tasks = new Map<string, FakeTask>();
  dead = false;
  shutdownCalls = 0;
  failCreate: string | undefined;
  constructor(
    readonly namespace: string,
    readonly id: string,
  ) {}
}

export class FakeLauncher implements ShimLauncher {
  readonly shims = new Map<string, FakeShim>();
  readonly starts: string[] = [];
  readonly cleanups: string[] = [];
  /** ctrd.shim.v1.Tasks/List calls; with supportsList off the shims answer NotImplemented (an older shim). */
  listCalls = 0;
  supportsList = true;
  /** ctrd.shim.v1.Logs: off, the shims answer NotImplemented; `undefined`, they lack the call. */
  supportsLogs: boolean | undefined = true;
  /** What each shim's Logs/Read received, as `namespace/id`. */
  readonly logReads: { namespace: string; request: ReadRequest }[] = [];
  private nextPid = 1000;

  async start(namespace: string, shimId: string): Promise<string> {
    this.starts.push(shimId);
    const address = `unix:///fake/${namespace}/${shimId}`;
    const existing = this.shims.get(address);
    if (!existing || existing.dead) this.shims.set(address, new FakeShim(namespace, shimId));
    return address;
  }

  connect(address: string, namespace: string): ShimConnection {
    const pid = () => this.nextPid++;
    const shim = (): FakeShim => {
      const s = this.shims.get(address);
      if (!s || s.dead) throw new Unavailable(`shim ${address}: connection refused`);
      return s;
    };
    const task = (id: string): FakeTask => {
      const t = shim().tasks.get(id);
      if (!t) throw new NotFound(`task ${id} not found`);
      return t;
    };
    const impl = service(TaskService, {
      create: async (req) => {
        const s = shim();
        if (s.failCreate === req.id) throw new Unavailable(`task ${req.id}: runc create failed`);
        const t = { bundle: req.bundle, status: Status.CREATED, pid: pid() };
        s.tasks.set(req.id, t);
        return { pid: t.pid };
      },
      start: async (req) => {
        const t = task(req.id);
        t.status = Status.RUNNING;
        return { pid: t.pid };
      },
      state: async (req) => {
        const t = task(req.id);
        return create(StateResponseSchema, { id: req.id, bundle: t.bundle, pid: t.pid, status: t.status });
      },
      kill: async (req) => {
        task(req.id).status = Status.STOPPED;
        return {};
      },
      delete: async (req) => {
        const t = task(req.id);
        shim().tasks.delete(req.id);
        return { pid: t.pid, exitStatus: 137 };
      },
      stats: async (req) => {
        const t = task(req.id);
        return {
          stats: { typeUrl: 'io.containerd.cgroups.v1.Metrics', value: new Uint8Array([8, t.pid % 100]) },
        };
      },
      connect: async () => {
        shim();
        return { shimPid: 1, taskPid: 0, version: 'fake' };
      },
      shutdown: async () => {
        const s = shim();
        s.shutdownCalls++;
        if (s.tasks.size === 0) this.shims.delete(address);
        return {};
      },
    });
    const listTasks = async () => {
      this.listCalls++;
      if (!this.supportsList) throw new NotImplemented('ctrd.shim.v1.Tasks/List: not implemented');
      return [...shim().tasks]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([id, t]) =>
          create(StateResponseSchema, { id, bundle: t.bundle, pid: t.pid, status: t.status }),
        );
    };
    const supportsLogs = this.supportsLogs;
    const logReads = this.logReads;
    // Echoes the request as lines, so a test sees what reached the shim.
    async function* readLogs(request: ReadRequest): AsyncGenerator<ReadResponse> {
      if (supportsLogs === false) throw new NotImplemented('ctrd.shim.v1.Logs/Read: not implemented');
      task(request.containerId);
      logReads.push({ namespace, request });
      const line = (text: string) =>
        create(LogEntrySchema, {
          line: `${text}\n`,
          stream: LogStream.STDOUT,
          time: { seconds: 1n, nanos: 0 },
        });
      yield create(ReadResponseSchema, { entries: [line(`${namespace}/${request.containerId}`)] });
      if (request.follow) yield create(ReadResponseSchema, { entries: [line('followed')] });
    }
    return {
      client: createInMemoryClient(TaskService, { services: [impl], namespace }),
      listTasks,
      readLogs: supportsLogs === undefined ? undefined : readLogs,
      close() {},
    };
  }

  async cleanup(namespace: string, id: string): Promise<DeadTaskExit> {
    this.cleanups.push(`${namespace}/${id}`);
    return { pid: 42, exitStatus: 255, exitedAt: new Date() };
  }

  shimAt(namespace: string, shimId: string): FakeShim | undefined {
    return this.shims.get(`unix:///fake/${namespace}/${shimId}`);
  }
}
