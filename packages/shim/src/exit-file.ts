import { rmSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

// The exit file is how an exit survives the daemon being down: the shim writes it before it
// publishes /tasks/exit, and the daemon's restart recovery (or `ctrd-shim delete`) reads it when the
// shim is gone. It is replaced atomically (tmp + fsync + rename + dir fsync) so a reader never sees a
// torn record, whatever the moment of a crash.

export const EXIT_FILE_NAME = 'exit.json';

export interface ExitRecord {
  /** Host pid of the process that exited. */
  pid: number;
  /** Exit code, or 128+signal when a signal ended it (as containerd reports). */
  exitStatus: number;
  /** When the shim reaped it. */
  exitedAt: Date;
}

interface ExitFileJson {
  pid: number;
  exit_status: number;
  exited_at: string;
}

export function exitFilePath(bundle: string): string {
  return join(bundle, EXIT_FILE_NAME);
}

/** Writes `record` to `path` atomically and durably. */
export async function writeExitFile(path: string, record: ExitRecord, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const body: ExitFileJson = {
    pid: record.pid,
    exit_status: record.exitStatus,
    exited_at: record.exitedAt.toISOString(),
  };
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(body)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  // The rename is only durable once the directory entry is.
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Reads an exit file; undefined when there is none. Throws on a malformed one. */
export async function readExitFile(path: string, signal?: AbortSignal): Promise<ExitRecord | undefined> {
  let text: string;
  try {
    text = await readFile(path, { encoding: 'utf8', ...(signal ? { signal } : {}) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`exit file ${path}: not valid JSON`, { cause: e });
  }
  const j = raw as Partial<ExitFileJson>;
  const exitedAt = new Date(String(j.exited_at));
  if (
    !Number.isSafeInteger(j.pid) ||
    !Number.isSafeInteger(j.exit_status) ||
    (j.exit_status as number) < 0 ||
    (j.exit_status as number) > 0xffffffff ||
    Number.isNaN(exitedAt.getTime())
  ) {
    throw new Error(`exit file ${path}: expected {pid, exit_status, exited_at}`);
  }
  return { pid: j.pid as number, exitStatus: j.exit_status as number, exitedAt };
}

/** Removes a stale exit file before a task (re)starts in the same bundle. */
export function removeExitFile(path: string): void {
  rmSync(path, { force: true });
}

export async function ensureDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
}
