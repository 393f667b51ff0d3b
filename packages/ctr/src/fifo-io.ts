import { execFile } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import { checkId } from './identifiers.js';

const run = promisify(execFile);

export const DEFAULT_FIFO_DIR = '/run/ctrd/fifo';

export interface FifoPaths {
  dir: string;
  stdin: string;
  stdout: string;
  stderr: string;
}

export interface FifoOptions {
  /** Parent of the per-process temp dir (containerd's --fifo-dir). */
  fifoDir?: string;
  /** Which streams to make: a terminal has no stderr, --null-io none at all. */
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

/**
 * The client side of a process's stdio, as containerd's cio makes it: fifos in a fresh temp dir whose
 * paths go into Tasks.Create/Exec, opened here before the call so the shim's opens never block.
 *
 * Output fifos: a non-blocking reader, plus a writer we hold until the shim has opened its end
 * (`attached()`, after Start: containerd's shim opens an exec's fifos only then); after that the reader sees EOF exactly when the shim closes its side, so every byte
 * the process wrote is read before ctr exits. stdin is opened O_RDWR (never blocks, never EOF while
 * held) and closed when our input ends.
 */
export class FifoSet {
  readonly paths: FifoPaths;
  stdout: Readable | undefined;
  stderr: Readable | undefined;
  stdin: Writable | undefined;
  readonly #holders: number[] = [];

  private constructor(paths: FifoPaths) {
    this.paths = paths;
  }

  static async create(id: string, options: FifoOptions, signal?: AbortSignal): Promise<FifoSet> {
    checkId(id, 'process');
    const dir = await makeTempDir(options.fifoDir ?? DEFAULT_FIFO_DIR);
    const paths: FifoPaths = {
      dir,
      stdin: options.stdin ? join(dir, `${id}-stdin`) : '',
      stdout: options.stdout ? join(dir, `${id}-stdout`) : '',
      stderr: options.stderr ? join(dir, `${id}-stderr`) : '',
    };
    const fifos = [paths.stdin, paths.stdout, paths.stderr].filter((p) => p !== '');
    const set = new FifoSet(paths);
    try {
      // Node has no mkfifo(3); coreutils' mkfifo makes all of them in one exec.
      if (fifos.length > 0) await run('mkfifo', ['-m', '0600', ...fifos], { signal });
      set.#open();
    } catch (err) {
      await set.remove();
      throw new Error(`stdio fifos in ${dir}: ${(err as Error).message}`, { cause: err });
    }
    return set;
  }

  #open(): void {
    const { stdin, stdout, stderr } = this.paths;
    if (stdout) this.stdout = this.#reader(stdout);
    if (stderr) this.stderr = this.#reader(stderr);
    if (stdin)
      this.stdin = new Socket({
        fd: openSync(stdin, constants.O_RDWR | constants.O_NONBLOCK),
        readable: false,
        writable: true,
      });
  }

  #reader(path: string): Readable {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    // Without a writer, a fifo read returns EOF at once; ours bridges the time until the shim opens.
    this.#holders.push(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    return new Socket({ fd, readable: true, writable: false });
  }

  /** The shim has opened its ends (Tasks.Start returned): output may now reach EOF. */
  attached(): void {
    for (const fd of this.#holders.splice(0)) closeSync(fd);
  }

  /** Resolves when both output streams have ended. */
  async drained(): Promise<void> {
    await Promise.all(
      [this.stdout, this.stderr].map(
        (s) =>
          s &&
          new Promise<void>((resolve) => {
            if (s.readableEnded || s.destroyed) return resolve();
            s.once('end', () => resolve());
            s.once('close', () => resolve());
          }),
      ),
    );
  }

  /** Closes everything of ours and removes the temp dir. */
  async remove(): Promise<void> {
    this.attached();
    for (const s of [this.stdout, this.stderr, this.stdin]) s?.destroy();
    await rm(this.paths.dir, { recursive: true, force: true });
  }
}

async function makeTempDir(parent: string): Promise<string> {
  try {
    await mkdir(parent, { recursive: true, mode: 0o700 });
    return await mkdtemp(join(parent, 'ctr-'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Not root: fall back to the user's temp dir rather than failing the run.
    if (parent === DEFAULT_FIFO_DIR && (code === 'EACCES' || code === 'EROFS' || code === 'EPERM')) {
      return mkdtemp(join(tmpdir(), 'ctr-fifo-'));
    }
    throw err;
  }
}
