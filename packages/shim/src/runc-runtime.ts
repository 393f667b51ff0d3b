import type { Logger } from './logger.js';
import type { ConsoleSocket, Runtime } from './runtime.js';
import type { WaitPid } from './reaper.js';

// The shim's Runtime on top of @ctrd/runc-client (pending: see README "Status").

export interface RuncRuntimeOptions {
  binary: string;
  root: string;
  logger?: Logger | undefined;
}

export function createRuncRuntime(_opts: RuncRuntimeOptions): Runtime {
  const missing = async (): Promise<never> => {
    throw new Error('runc runtime: @ctrd/runc-client is not available yet');
  };
  return {
    create: missing,
    start: missing,
    exec: missing,
    kill: missing,
    delete: missing,
    state: missing,
    ps: missing,
    pause: missing,
    resume: missing,
    update: missing,
    checkpoint: missing,
    newConsoleSocket: missing as () => Promise<ConsoleSocket>,
  };
}

export function runcSys(): { waitPid: WaitPid; setSubreaper: () => void } {
  return {
    waitPid: () => 'not-child',
    setSubreaper: () => {},
  };
}
