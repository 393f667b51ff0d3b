import type { ExitInfo } from './reaper.js';
import type { ProcessIO } from './process-io.js';
import type { ProcessStatus } from './process-state.js';

// One process the shim supervises: a task's init (execId "") or one of its execs. Kept small: a shim
// holds many of these.

export class ShimProcess {
  status: ProcessStatus = 'created';
  pid = 0;
  exit: ExitInfo | undefined;
  /** The exec's OCI Process (execs only), until it is started. */
  spec: unknown;
  /** A start in progress: the exit is published only after it (so /tasks/start comes first). */
  starting: Promise<unknown> | undefined;
  private waiters: Promise<ExitInfo> | undefined;
  private resolveWait: ((info: ExitInfo) => void) | undefined;

  constructor(
    readonly execId: string,
    readonly io: ProcessIO,
  ) {}

  /** Resolves with the exit once it is final (exit file written). Shared by every waiter. */
  wait(): Promise<ExitInfo> {
    if (this.exit) return Promise.resolve(this.exit);
    this.waiters ??= new Promise((r) => {
      this.resolveWait = r;
    });
    return this.waiters;
  }

  settle(info: ExitInfo): void {
    this.exit = info;
    this.resolveWait?.(info);
    this.resolveWait = undefined;
  }
}
