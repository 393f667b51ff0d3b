import { execFile } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { create } from '@bufbuild/protobuf';
import type { Logger } from '@ctrd/api-proto';
import { Kind } from '@ctrd/api-proto/snapshots';
import { type Mount, MountSchema } from '@ctrd/api-proto/types';
import { type BackendSnapshot, DirBackend } from './backend.js';

// The native snapshotter (containerd's snapshots/native): an active snapshot with a parent starts as
// a full copy of the parent's files; every mount is a bind. A view of a parent binds the parent's
// files read-only without copying them.
//
// The copy is GNU cp's archive mode: Node has no mknod(2) or xattr calls, and `cp -a` keeps modes,
// owners, timestamps, symlinks, hard links (within the copy), device nodes, fifos and sockets, and
// xattrs where the filesystem takes them (failing ones are skipped silently, as containerd's copy
// ignores xattr errors). --reflink=auto shares blocks where the filesystem can.

const run = promisify(execFile);

export async function copyTree(from: string, to: string, signal?: AbortSignal): Promise<void> {
  try {
    await run('cp', ['-a', '--reflink=auto', '--no-target-directory', '--', from, to], {
      signal,
      maxBuffer: 1024 * 1024,
    });
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    throw new Error(`copy ${from} to ${to}: ${msg}`, { cause: e });
  }
}

export class NativeBackend extends DirBackend {
  private constructor(root: string, log?: Logger) {
    super('native', root, log);
  }

  static async create(
    root: string,
    opts: { logger?: Logger; signal?: AbortSignal } = {},
  ): Promise<NativeBackend> {
    const b = new NativeBackend(root, opts.logger);
    await b.open(opts.signal);
    return b;
  }

  async build(kind: Kind, parents: readonly number[], signal?: AbortSignal): Promise<string> {
    const temp = await this.tempDir();
    try {
      const fs = join(temp, 'fs');
      if (kind === Kind.ACTIVE && parents.length > 0) {
        await copyTree(this.fsDir(parents[0]!), fs, signal);
      } else {
        await mkdir(fs);
        await chmod(fs, 0o755);
      }
    } catch (e) {
      await this.abandon(temp).catch(() => {});
      throw e;
    }
    return temp;
  }

  mounts(s: BackendSnapshot): Mount[] {
    const ro = s.kind === Kind.VIEW;
    const source =
      s.kind === Kind.ACTIVE || s.parents.length === 0 ? this.fsDir(s.id) : this.fsDir(s.parents[0]!);
    return [create(MountSchema, { type: 'bind', source, options: [ro ? 'ro' : 'rw', 'rbind'] })];
  }
}
