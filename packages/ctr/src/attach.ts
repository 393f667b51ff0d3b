import { constants } from 'node:os';
import type { Writable } from 'node:stream';
import { TasksService, type WaitResponse } from '@ctrd/api-proto/tasks';
import type { Clients } from './clients.js';
import { FifoSet } from './fifo-io.js';
import type { CtrIo } from './io.js';
import { FORWARDED_SIGNALS } from './signals.js';

export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

export interface SessionOptions {
  containerId: string;
  /** '' for the task's init process. */
  execId: string;
  terminal: boolean;
  /** Start and return: no fifos (output goes to the task's log), nothing waited for. */
  detach: boolean;
  nullIo?: boolean;
  fifoDir?: string;
  /** Whether to install process signal handlers (off in tests). */
  handleSignals?: boolean;
}

/**
 * Runs one process of a task the way containerd's ctr does: fifos made and opened by ctr, the Create
 * or Exec call that hands their paths to the shim, Wait issued before Start so no exit is missed,
 * stdio copied both ways, signals forwarded (or a raw terminal with resizes), and the exit status
 * returned once all output has been read.
 */
export class ProcessSession {
  readonly #clients: Clients;
  readonly #io: CtrIo;
  readonly #options: SessionOptions;
  #fifos: FifoSet | undefined;
  #cleanup: (() => void)[] = [];
  #markStarted: () => void = () => {};
  #markFailed: (err: unknown) => void = () => {};
  readonly #started = new Promise<void>((resolve, reject) => {
    this.#markStarted = resolve;
    this.#markFailed = reject;
  });
  pid = 0;

  constructor(clients: Clients, io: CtrIo, options: SessionOptions) {
    this.#clients = clients;
    this.#io = io;
    this.#options = options;
    // Only the stdin copy waits on this; a failed Start is reported by run().
    this.#started.catch(() => undefined);
  }

  /** Makes the fifos (unless detached or null-io) and gives their paths to `create`. */
  async create(create: (paths: StdioPaths) => Promise<void>): Promise<void> {
    const { terminal, detach, nullIo, fifoDir, containerId, execId } = this.#options;
    if (!detach && !nullIo) {
      this.#fifos = await FifoSet.create(execId || containerId, {
        fifoDir,
        stdin: true,
        stdout: true,
        // A terminal merges stderr into the pty, as with containerd.
        stderr: !terminal,
      });
    }
    const p = this.#fifos?.paths;
    try {
      await create({ stdin: p?.stdin ?? '', stdout: p?.stdout ?? '', stderr: p?.stderr ?? '', terminal });
    } catch (err) {
      await this.#fifos?.remove();
      this.#fifos = undefined;
      throw err;
    }
  }

  /** Starts the process; unless detached, waits for it and resolves to its exit status. */
  async run(signal?: AbortSignal): Promise<number | undefined> {
    const tasks = this.#clients.get(TasksService);
    const { containerId, execId, detach } = this.#options;
    if (detach) {
      this.pid = (await tasks.start({ containerId, execId })).pid;
      return undefined;
    }
    const waited: Promise<WaitResponse> = tasks.wait({ containerId, execId }, { signal });
    waited.catch(() => undefined);
    try {
      this.#copy();
      try {
        this.pid = (await tasks.start({ containerId, execId })).pid;
      } catch (err) {
        this.#markFailed(err);
        throw err;
      }
      this.#markStarted();
      // Shims open an init's fifos in Create but an exec's only in Start: from here on both are open.
      this.#fifos?.attached();
      this.#control();
      const res = await waited;
      await this.#drain();
      return res.exitStatus;
    } finally {
      await this.close();
    }
  }

  /** Restores the terminal, stops forwarding, closes our fifo ends and removes their directory. */
  async close(): Promise<void> {
    for (const undo of this.#cleanup.splice(0).reverse()) undo();
    await this.#fifos?.remove();
    this.#fifos = undefined;
  }

  #copy(): void {
    const fifos = this.#fifos;
    if (!fifos) return;
    const { stdin, stdout, stderr } = this.#io;
    fifos.stdout?.pipe(stdout as Writable, { end: false });
    fifos.stderr?.pipe(stderr as Writable, { end: false });
    const input = fifos.stdin;
    if (input) {
      const tasks = this.#clients.get(TasksService);
      const { containerId, execId } = this.#options;
      const onEnd = () => {
        // A shim opens an exec's stdin only in Start; closing our end before that would drop what is
        // still buffered in the fifo, and CloseIO must not overtake the open either.
        this.#started
          .then(
            () =>
              new Promise<void>((resolve) => {
                input.end(() => resolve());
              }),
          )
          .then(() => tasks.closeIO({ containerId, execId, stdin: true }))
          .catch(() => undefined);
      };
      stdin.once('end', onEnd);
      stdin.pipe(input, { end: false });
      this.#cleanup.push(() => {
        stdin.off('end', onEnd);
        stdin.unpipe(input);
        stdin.pause();
        (stdin as { unref?: () => void }).unref?.();
      });
    }
  }

  #control(): void {
    const tasks = this.#clients.get(TasksService);
    const { containerId, execId, terminal, handleSignals } = this.#options;
    const stdin = this.#io.stdin as NodeJS.ReadStream;
    const stdout = this.#io.stdout as NodeJS.WriteStream;
    if (terminal) {
      if (stdin.isTTY && typeof stdin.setRawMode === 'function') {
        stdin.setRawMode(true);
        this.#cleanup.push(() => stdin.setRawMode(false));
      }
      const resize = () => {
        if (!stdout.columns || !stdout.rows) return;
        tasks
          .resizePty({ containerId, execId, width: stdout.columns, height: stdout.rows })
          .catch(() => undefined);
      };
      resize();
      if (handleSignals) {
        process.on('SIGWINCH', resize);
        this.#cleanup.push(() => process.off('SIGWINCH', resize));
      }
      return;
    }
    if (!handleSignals) return;
    for (const name of FORWARDED_SIGNALS) {
      const forward = () => {
        const signal = constants.signals[name];
        tasks.kill({ containerId, execId, signal }).catch(() => undefined);
      };
      process.on(name, forward);
      this.#cleanup.push(() => process.off(name, forward));
    }
  }

  async #drain(): Promise<void> {
    if (!this.#fifos) return;
    // The shim closes its side once the process's output is copied; a shim that never does must not
    // hang ctr, so the wait is bounded.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#fifos.drained(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 5000);
      }),
    ]);
    clearTimeout(timer);
  }
}
