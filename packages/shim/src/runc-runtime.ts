import {
  ConsoleSocket,
  fdIO,
  peekExitedChild,
  posixSpawner,
  Runc,
  setChildSubreaper,
  waitPid,
} from '@ctrd/runc-client';
import type { Logger } from './logger.js';
import type { PeekExited, WaitPid } from './reaper.js';
import type { Runtime } from './runtime.js';

// The shim's Runtime on @ctrd/runc-client: one Runc per shim (binary, root), stdio as the fds the
// shim's ProcessIO made, the console socket in the bundle so its path stays short.

export interface RuncRuntimeOptions {
  binary: string;
  root: string;
  logger?: Logger | undefined;
  /**
   * The exit status of a child pid, from the shim's reaper. With it, runc is started with
   * posix_spawn (no fork of the whole shim per call); without it, with Node's child_process.
   */
  waitExit?: ((pid: number) => Promise<number>) | undefined;
}

export function createRuncRuntime(opts: RuncRuntimeOptions): Runtime {
  const runc = new Runc({
    binary: opts.binary,
    root: opts.root,
    logger: opts.logger,
    ...(opts.waitExit ? { spawner: posixSpawner({ waitExit: opts.waitExit }) } : {}),
  });
  return {
    async create(id, bundle, o, signal) {
      const { pid } = await runc.create(id, bundle, {
        io: fdIO(o.stdio),
        pidFile: o.pidFile,
        consoleSocket: o.consoleSocket,
        noPivot: o.noPivot,
        noNewKeyring: o.noNewKeyring,
        signal,
      });
      return pid;
    },
    async start(id, signal) {
      await runc.start(id, { signal });
    },
    async exec(id, process, o, signal) {
      const { pid } = await runc.exec(id, {
        process: process as object,
        detach: true,
        io: fdIO(o.stdio),
        pidFile: o.pidFile,
        consoleSocket: o.consoleSocket,
        signal,
      });
      return pid;
    },
    async kill(id, sig, all, signal) {
      await runc.kill(id, sig, { all, signal });
    },
    async delete(id, force, signal) {
      await runc.delete(id, { force, signal });
    },
    async state(id, signal) {
      try {
        const s = await runc.state(id, { signal });
        return { status: s.status, pid: s.pid };
      } catch {
        return undefined;
      }
    },
    async ps(id, signal) {
      return runc.ps(id, { signal });
    },
    async pause(id, signal) {
      await runc.pause(id, { signal });
    },
    async resume(id, signal) {
      await runc.resume(id, { signal });
    },
    async update(id, resources, signal) {
      await runc.update(id, resources as Record<string, unknown>, { signal });
    },
    async checkpoint(id, o, signal) {
      await runc.checkpoint(id, {
        imagePath: o.imagePath,
        workPath: o.workPath,
        leaveRunning: o.leaveRunning,
        tcpEstablished: o.tcpEstablished,
        externalUnixSockets: o.externalUnixSockets,
        shellJob: o.shellJob,
        fileLocks: o.fileLocks,
        emptyNamespaces: o.emptyNamespaces,
        manageCgroupsMode: o.cgroupsMode,
        signal,
      });
    },
    async newConsoleSocket(dir) {
      // A fresh temp dir: a socket path under the bundle could exceed sun_path.
      void dir;
      return ConsoleSocket.create();
    },
  };
}

/** The subreaper and waitpid helpers of @ctrd/runc-client in the reaper's terms. */
export function runcSys(): { waitPid: WaitPid; peekExited: PeekExited; setSubreaper: () => void } {
  return {
    setSubreaper: setChildSubreaper,
    peekExited: peekExitedChild,
    waitPid(pid) {
      try {
        const r = waitPid(pid, { noHang: true });
        return r === undefined ? 'running' : { exitStatus: r.exitStatus };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).errno === 10) return 'not-child';
        throw e;
      }
    },
  };
}
