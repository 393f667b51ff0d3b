import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, realpath, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { Canceled, FailedPrecondition, InvalidArgument } from '@ctrd/api-proto';
import { type Mount, MountSchema } from '@ctrd/api-proto/types';
import { mountCommand } from '../snapshots/mount-command.js';

// Mounting snapshot mounts on the host, as containerd's mount package does: every Mount of a
// list on the same target in order (bind, rbind, overlay, anything mount(8) knows), undone in
// reverse on failure; unmounting until nothing is left on the target, lazily when it is busy;
// and temp mounts under <root>/tmpmounts that are always unmounted and removed.

const run = promisify(execFile);
const COMMAND_TIMEOUT_MS = 60_000;
/** A target is never stacked this deep by us; the loop bound keeps a broken umount from spinning. */
const MAX_UNMOUNTS = 64;

function commandMessage(e: unknown): string {
  const stderr = (e as { stderr?: string }).stderr?.trim();
  return stderr || (e as Error).message;
}

function validate(m: Mount): void {
  if (m.type === '' && !m.options.some((o) => o === 'bind' || o === 'rbind')) {
    throw new InvalidArgument(`mount of "${m.source}": type is required`);
  }
  if (/[\0\n]/.test(m.type) || /[\0]/.test(m.source) || m.options.some((o) => o.includes('\0'))) {
    throw new InvalidArgument(`mount of "${m.source}": NUL or newline in type, source or options`);
  }
}

/** Mounts one Mount on target. */
export async function mountOne(m: Mount, target: string, signal?: AbortSignal): Promise<void> {
  validate(m);
  const { args, cwd } = mountCommand(m, target);
  try {
    await run('mount', args, { cwd, signal, timeout: COMMAND_TIMEOUT_MS });
  } catch (e) {
    if (signal?.aborted) throw new Canceled(`mount ${m.type} on ${target}: aborted`, { cause: e });
    throw new FailedPrecondition(`mount ${m.type || 'bind'} ${m.source} on ${target}: ${commandMessage(e)}`, {
      cause: e,
    });
  }
}

/**
 * Mounts every Mount on target, in order. If one fails, the ones already mounted are unmounted
 * before the error is thrown.
 */
export async function mountAll(
  mounts: readonly Mount[],
  target: string,
  signal?: AbortSignal,
): Promise<void> {
  for (const m of mounts) validate(m);
  let done = 0;
  try {
    for (const m of mounts) {
      signal?.throwIfAborted();
      await mountOne(m, target, signal);
      done++;
    }
  } catch (e) {
    if (done > 0) await unmountAll(target).catch(() => {});
    if (signal?.aborted && !(e instanceof Canceled))
      throw new Canceled(`mount on ${target}: aborted`, { cause: e });
    throw e;
  }
}

/** Decodes a path field of /proc/self/mountinfo (spaces and friends are octal escapes). */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** The mount table of this process's mount namespace. */
export async function readMountInfo(): Promise<MountInfo[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 0 || fields.length < dash + 3) continue;
    out.push({
      mountPoint: unescapeMountPath(fields[4]!),
      fsType: fields[dash + 1]!,
      source: unescapeMountPath(fields[dash + 2]!),
    });
  }
  return out;
}

/** How many mounts sit exactly on path, and the mount points below it (in mount order). */
export async function mountsAt(path: string): Promise<{ on: number; below: string[] }> {
  const real = await realpath(path).catch(() => path);
  let on = 0;
  const below: string[] = [];
  for (const m of await readMountInfo()) {
    if (m.mountPoint === real) on++;
    else if (m.mountPoint.startsWith(`${real}/`)) below.push(m.mountPoint);
  }
  return { on, below };
}

/** Messages umount gives for a path that is (no longer, or not reachably) a mount point. */
const NOT_MOUNTED = /not mounted|no mount point specified|not found|no such file/i;

/**
 * Unmounts everything mounted on target and below it, newest mount first (so a mount stacked
 * over another goes before the submounts it hides), repeating until none is left, as
 * containerd's UnmountAll does. A busy mount is detached lazily (umount -l) so the caller can
 * go on; the kernel finishes it when the last user leaves.
 */
export async function unmountAll(target: string, signal?: AbortSignal): Promise<void> {
  const real = await realpath(target).catch(() => undefined);
  if (real === undefined) return;
  for (let i = 0; i < MAX_UNMOUNTS; i++) {
    const candidates = (await readMountInfo())
      .map((m) => m.mountPoint)
      .filter((p) => p === real || p.startsWith(`${real}/`))
      .reverse();
    if (candidates.length === 0) return;
    let progressed = false;
    const errors: string[] = [];
    for (const next of candidates) {
      try {
        await run('umount', [next], { signal, timeout: COMMAND_TIMEOUT_MS });
        progressed = true;
        break;
      } catch (e) {
        if (signal?.aborted) throw new Canceled(`unmount ${next}: aborted`, { cause: e });
        const message = commandMessage(e);
        if (NOT_MOUNTED.test(message)) {
          errors.push(`${next}: ${message}`);
          continue;
        }
        try {
          await run('umount', ['-l', next], { timeout: COMMAND_TIMEOUT_MS });
          progressed = true;
          break;
        } catch (lazy) {
          throw new FailedPrecondition(`unmount ${next}: ${commandMessage(lazy)} (before that: ${message})`, {
            cause: lazy,
          });
        }
      }
    }
    if (!progressed) throw new FailedPrecondition(`unmount ${real}: ${errors.join('; ')}`);
  }
  throw new FailedPrecondition(`unmount ${real}: still mounted after ${MAX_UNMOUNTS} unmounts`);
}

/**
 * The same mounts made read-only: bind mounts get `ro`, an overlay loses its upperdir and
 * workdir (the upperdir becomes the top lowerdir), as containerd's readonly temp mounts do.
 */
export function readonlyMounts(mounts: readonly Mount[]): Mount[] {
  return mounts.map((m) => {
    if (m.type === 'overlay') {
      let upper = '';
      const options: string[] = [];
      for (const o of m.options) {
        if (o.startsWith('upperdir=')) upper = o.slice('upperdir='.length);
        else if (!o.startsWith('workdir=')) options.push(o);
      }
      const withUpper = options.map((o) =>
        upper !== '' && o.startsWith('lowerdir=') ? `lowerdir=${upper}:${o.slice('lowerdir='.length)}` : o,
      );
      return create(MountSchema, { ...m, options: withUpper });
    }
    const options = m.options.filter((o) => o !== 'rw' && o !== 'ro');
    options.push('ro');
    return create(MountSchema, { ...m, options });
  });
}

export interface TempMountOptions {
  /** The daemon root: temp mount points go in <root>/tmpmounts. */
  root: string;
  signal?: AbortSignal;
}

/**
 * Mounts `mounts` on a fresh directory under <root>/tmpmounts, runs fn with its path, then
 * unmounts and removes the directory, whether fn returned, threw or was aborted. With no
 * mounts fn gets the empty directory (the empty lower side of a base layer's diff).
 */
export async function withTempMounts<T>(
  mounts: readonly Mount[],
  fn: (dir: string) => Promise<T>,
  options: TempMountOptions,
): Promise<T> {
  const parent = join(options.root, 'tmpmounts');
  await mkdir(parent, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(parent, 'm-'));
  let result: T;
  try {
    await mountAll(mounts, dir, options.signal);
    result = await fn(dir);
  } catch (e) {
    await cleanup(dir).catch(() => {});
    throw e;
  }
  await cleanup(dir);
  return result;
}

async function cleanup(dir: string): Promise<void> {
  await unmountAll(dir);
  // rmdir, never a recursive remove: if something is still mounted, its files are not touched.
  await rmdir(dir);
}
