import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, lchown, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { InvalidArgument, type Logger } from '@ctrd/api-proto';
import { Kind } from '@ctrd/api-proto/snapshots';
import { type Mount, MountSchema } from '@ctrd/api-proto/types';
import { type BackendSnapshot, DirBackend, mountsBelow } from './backend.js';
import { mountDataLength, PAGE_SIZE } from './mount-command.js';

// The overlayfs snapshotter, in containerd's shape: <id>/fs is a snapshot's upper (its own files),
// <id>/work the overlay workdir of an active one. Mounts are what containerd 1.6 hands out:
//   no parent            bind <id>/fs, [rw|ro, rbind]
//   view of one parent   bind <parent>/fs, [ro, rbind]
//   otherwise            overlay [index=off,] [workdir=..., upperdir=...,] lowerdir=<nearest>:...:<base>
// index=off goes in whenever the kernel has the overlay index feature (containerd's supportsIndex).

const run = promisify(execFile);

const MOUNT_TIMEOUT_MS = 30_000;

function commandError(what: string, e: unknown): Error {
  const msg = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
  return new Error(`${what}: ${msg}`, { cause: e });
}

/**
 * Mounts a two-layer overlay in a temp dir under `root` and unmounts it: the way to learn whether
 * this kernel and the filesystem under root can serve overlay snapshots. Throws why not.
 */
export async function checkOverlaySupport(root: string, signal?: AbortSignal): Promise<void> {
  const dir = await mkdtemp(join(root, 'tmp-check-'));
  const merged = join(dir, 'merged');
  try {
    for (const d of ['lower1', 'lower2', 'upper', 'work', 'merged']) await mkdir(join(dir, d));
    await writeFile(join(dir, 'lower1', 'probe'), '');
    const options = `lowerdir=${join(dir, 'lower2')}:${join(dir, 'lower1')},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`;
    try {
      await run('mount', ['-t', 'overlay', '-o', options, '--', 'overlay', merged], {
        signal,
        timeout: MOUNT_TIMEOUT_MS,
      });
    } catch (e) {
      throw commandError(`overlayfs on ${root}: not supported`, e);
    }
    try {
      if (!existsSync(join(merged, 'probe'))) {
        throw new Error(`overlayfs on ${root}: not supported: a test mount did not show its lower layer`);
      }
    } finally {
      await run('umount', [merged], { timeout: MOUNT_TIMEOUT_MS }).catch(() =>
        run('umount', ['-l', merged], { timeout: MOUNT_TIMEOUT_MS }),
      );
    }
  } finally {
    if ((await mountsBelow(dir)).length === 0) await rm(dir, { recursive: true, force: true });
  }
}

export class OverlayBackend extends DirBackend {
  private readonly indexOff = existsSync('/sys/module/overlay/parameters/index');

  private constructor(root: string, log?: Logger) {
    super('overlayfs', root, log);
  }

  /** Opens the backend at `root`; fails when overlay mounts do not work there. */
  static async create(
    root: string,
    opts: { logger?: Logger; signal?: AbortSignal } = {},
  ): Promise<OverlayBackend> {
    const b = new OverlayBackend(root, opts.logger);
    await b.open(opts.signal);
    await checkOverlaySupport(b.root, opts.signal);
    return b;
  }

  workDir(id: number): string {
    return join(this.dir(id), 'work');
  }

  async build(kind: Kind, parents: readonly number[], signal?: AbortSignal): Promise<string> {
    const temp = await this.tempDir();
    try {
      signal?.throwIfAborted();
      const fs = join(temp, 'fs');
      await mkdir(fs);
      await chmod(fs, 0o755);
      if (kind === Kind.ACTIVE) {
        await mkdir(join(temp, 'work'));
        await chmod(join(temp, 'work'), 0o711);
      }
      // The upper's root takes its owner from the layer below, so the merged root keeps it.
      if (parents.length > 0) {
        const st = await stat(this.fsDir(parents[0]!));
        await lchown(fs, st.uid, st.gid);
      }
    } catch (e) {
      await this.abandon(temp).catch(() => {});
      throw e;
    }
    return temp;
  }

  override check(kind: Kind, parents: readonly number[]): void {
    // The new snapshot's id is not known yet: measure with a long one.
    const [m] = this.mounts({ id: 9_999_999, kind, parents });
    if (m && m.type === 'overlay' && mountDataLength(m.options) >= PAGE_SIZE) {
      throw new InvalidArgument(
        `overlayfs: a chain of ${parents.length} layers does not fit in one mount under ${this.root}: use a shorter root path`,
      );
    }
  }

  mounts(s: BackendSnapshot): Mount[] {
    const bind = (source: string, ro: boolean) =>
      create(MountSchema, { type: 'bind', source, options: [ro ? 'ro' : 'rw', 'rbind'] });
    if (s.parents.length === 0) return [bind(this.fsDir(s.id), s.kind === Kind.VIEW)];
    if (s.kind !== Kind.ACTIVE && s.parents.length === 1) return [bind(this.fsDir(s.parents[0]!), true)];
    const options: string[] = [];
    if (this.indexOff) options.push('index=off');
    if (s.kind === Kind.ACTIVE) options.push(`workdir=${this.workDir(s.id)}`, `upperdir=${this.fsDir(s.id)}`);
    options.push(`lowerdir=${s.parents.map((p) => this.fsDir(p)).join(':')}`);
    return [create(MountSchema, { type: 'overlay', source: 'overlay', options })];
  }
}
