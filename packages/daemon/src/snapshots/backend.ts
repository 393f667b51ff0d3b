import { randomBytes } from 'node:crypto';
import { renameSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@ctrd/api-proto';
import { silentLogger } from '@ctrd/api-proto';
import type { Kind } from '@ctrd/api-proto/snapshots';
import type { Mount } from '@ctrd/api-proto/types';

// A snapshotter backend owns one directory, root/snapshots/<name>, holding one directory per
// snapshot named by its numeric backend id (never by the client's key) and temp dirs (tmp-*) in
// which new snapshots are built. A snapshot appears under its id by one rename done inside the
// metadata transaction that inserts its row, and leaves by one rename to a tmp- name inside the
// transaction that deletes the row; so a crash leaves only tmp- dirs, which init removes.

export interface BackendSnapshot {
  id: number;
  kind: Kind;
  /** Backend ids of the committed parent chain, nearest first. */
  parents: readonly number[];
}

export interface SnapshotBackend {
  readonly name: string;
  readonly root: string;
  /** Builds the directories of a new snapshot in a fresh temp dir under root; returns that dir. */
  build(kind: Kind, parents: readonly number[], signal?: AbortSignal): Promise<string>;
  /** Throws InvalidArgument when a snapshot of this shape could not be mounted. */
  check(kind: Kind, parents: readonly number[]): void;
  /** Moves a built temp dir to its place. Synchronous: it runs inside the metadata transaction. */
  install(temp: string, id: number): void;
  /** Removes a built temp dir that will not be installed. */
  abandon(temp: string, signal?: AbortSignal): Promise<void>;
  /**
   * Moves an installed snapshot out of the way, to a tmp- name; synchronous, for the metadata
   * transaction. Returns where it went, or undefined when it was not there.
   */
  detach(id: number): string | undefined;
  /** Puts a detached snapshot back (the transaction that detached it failed). */
  reattach(detached: string, id: number): void;
  /** Removes a detached snapshot's files. */
  discard(detached: string, signal?: AbortSignal): Promise<void>;
  /** The directory holding the snapshot's own files (what Usage walks). */
  fsDir(id: number): string;
  mounts(s: BackendSnapshot): Mount[];
  /** A backend id for a new snapshot: above every row's (`maxRowId`) and every dir ever seen. */
  allocate(maxRowId: number): number;
  /** Backend ids of the snapshot dirs on disk. */
  ids(signal?: AbortSignal): Promise<number[]>;
  /** Removes tmp- dirs no build is using; returns their paths. */
  removeTemps(signal?: AbortSignal): Promise<string[]>;
}

const TEMP_PREFIX = 'tmp-';
const ID_NAME = /^[1-9][0-9]{0,15}$/;

/** Mount points at or below `dir`, from /proc/self/mountinfo. */
export async function mountsBelow(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const raw = line.split(' ')[4];
    if (raw === undefined) continue;
    const mp = raw.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    if (mp === dir || mp.startsWith(`${dir}/`)) out.push(mp);
  }
  return out;
}

export abstract class DirBackend implements SnapshotBackend {
  /** Temp dirs of builds in progress: removeTemps leaves them alone. */
  private readonly building = new Set<string>();
  private next = 1;

  protected constructor(
    readonly name: string,
    readonly root: string,
    protected readonly log: Logger = silentLogger,
  ) {}

  abstract build(kind: Kind, parents: readonly number[], signal?: AbortSignal): Promise<string>;
  abstract mounts(s: BackendSnapshot): Mount[];

  check(_kind: Kind, _parents: readonly number[]): void {}

  /** Creates root, removes what a crash left (tmp- dirs), learns the ids on disk. */
  protected async open(signal?: AbortSignal): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    const removed = await this.removeTemps(signal);
    if (removed.length > 0) this.log.info({ snapshotter: this.name, removed }, 'removed leftover temp dirs');
    for (const id of await this.ids(signal)) this.next = Math.max(this.next, id + 1);
  }

  dir(id: number): string {
    return join(this.root, String(id));
  }

  fsDir(id: number): string {
    return join(this.dir(id), 'fs');
  }

  /** A new empty temp dir under root, registered as in use until installed or abandoned. */
  protected async tempDir(): Promise<string> {
    const temp = await mkdtemp(join(this.root, TEMP_PREFIX));
    this.building.add(temp);
    return temp;
  }

  install(temp: string, id: number): void {
    renameSync(temp, this.dir(id));
    this.building.delete(temp);
  }

  async abandon(temp: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.removeTree(temp, signal);
    } finally {
      this.building.delete(temp);
    }
  }

  detach(id: number): string | undefined {
    const to = join(this.root, `${TEMP_PREFIX}rm-${id}-${randomBytes(4).toString('hex')}`);
    try {
      renameSync(this.dir(id), to);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    return to;
  }

  reattach(detached: string, id: number): void {
    renameSync(detached, this.dir(id));
  }

  async discard(detached: string, signal?: AbortSignal): Promise<void> {
    await this.removeTree(detached, signal);
  }

  allocate(maxRowId: number): number {
    const id = Math.max(this.next, maxRowId + 1);
    this.next = id + 1;
    return id;
  }

  async ids(signal?: AbortSignal): Promise<number[]> {
    signal?.throwIfAborted();
    const names = await readdir(this.root);
    return names.filter((n) => ID_NAME.test(n)).map(Number);
  }

  async removeTemps(signal?: AbortSignal): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.root)) {
      const path = join(this.root, name);
      if (!name.startsWith(TEMP_PREFIX) || this.building.has(path)) continue;
      try {
        await this.removeTree(path, signal);
        removed.push(path);
      } catch (e) {
        this.log.warn({ snapshotter: this.name, path, err: e }, 'could not remove temp dir');
      }
    }
    return removed;
  }

  /**
   * rm -rf that refuses to descend into anything mounted below `path`: removing through a mount
   * would delete files that are not ours (a lower dir, a bind source).
   */
  protected async removeTree(path: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const mounted = await mountsBelow(path);
    if (mounted.length > 0) {
      throw new Error(`remove ${path}: still mounted at ${mounted.join(', ')}: unmount first`);
    }
    await rm(path, { recursive: true, force: true, maxRetries: 3 });
  }
}
