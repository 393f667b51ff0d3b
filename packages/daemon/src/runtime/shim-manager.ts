import { createHash } from 'node:crypto';
import { isUnavailable, type Logger, silentLogger } from '@ctrd/api-proto';
import type { ReadLogs, ShimClient, ShimConnection, ShimLauncher } from './shim-launcher.js';
import type { StateResponse } from '@ctrd/api-proto/shim';

// Which shim hosts which task. A Node shim costs tens of MB, so tasks share: by default one shim per
// namespace until it hosts `cap` tasks, then the next; a container may ask for a shim of its own.
// A shim whose last task goes away is shut down. A shim that stops answering is reported once
// through onDead, and the caller settles its tasks.

/** Container label asking for a dedicated shim (`own`). */
export const SHIM_LABEL = 'io.ctrd/shim';

export interface Shim {
  readonly id: string;
  readonly namespace: string;
  readonly own: boolean;
  address: string;
  /** Task ids hosted, including ones being created (they hold their slot). */
  readonly tasks: Set<string>;
  client: ShimClient;
  /** Every hosted task's state in one call, when the shim has ctrd's addition. */
  listTasks?: ((signal?: AbortSignal) => Promise<StateResponse[]>) | undefined;
  /** One task's kept output, when the shim has ctrd's addition. */
  readLogs?: ReadLogs | undefined;
  dead: boolean;
}

interface ShimEntry extends Shim {
  ready: Promise<void>;
  connection: ShimConnection | undefined;
  /** Set while an emptied shared shim waits for a new task before it is stopped. */
  linger?: NodeJS.Timeout | undefined;
}

export interface ShimManagerOptions {
  launcher: ShimLauncher;
  /** Tasks one shared shim hosts at most. */
  cap: number;
  logger?: Logger | undefined;
  /** Called once for a shim found dead, after it is dropped from the manager. */
  onDead?: ((shim: Shim) => void) | undefined;
  /** How often live shims are asked Connect; 0 disables the watch. */
  watchMs?: number | undefined;
  /**
   * How long an emptied shared shim is kept for a new task before it is stopped (default 0: at
   * once). Starting a shim is a Node start-up (~0.3 s and more under load) that the next task would
   * wait for; `ctr run --rm` in a loop or a batch that follows another would pay it each time.
   */
  lingerMs?: number | undefined;
}

const hash = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 16);

/** Shim ids are identifiers; hashed so no namespace/container spelling can make two collide. */
export function sharedShimId(namespace: string, n: number): string {
  return `shared-${n}-${hash(`${namespace}\0${n}`)}`;
}
export function ownShimId(namespace: string, containerId: string): string {
  return `own-${hash(`${namespace}\0${containerId}`)}`;
}

const unconnected = new Proxy({} as ShimClient, {
  get() {
    throw new Error('shim client used before the shim was ready');
  },
});

export class ShimManager {
  private readonly shims = new Map<string, ShimEntry>();
  /** Shims being shut down, by key: a new shim with the same id waits for the old to go. */
  private readonly retiring = new Map<string, Promise<void>>();
  private readonly log: Logger;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ShimManagerOptions) {
    this.log = opts.logger ?? silentLogger;
    const every = opts.watchMs ?? 2000;
    if (every > 0) {
      this.timer = setInterval(() => void this.checkAll(), every);
      this.timer.unref();
    }
  }

  private key(namespace: string, id: string): string {
    return `${namespace}/${id}`;
  }

  /** The shim hosting a task (created or being created), if any. */
  shimOf(namespace: string, taskId: string): Shim | undefined {
    for (const s of this.shims.values()) if (s.namespace === namespace && s.tasks.has(taskId)) return s;
    return undefined;
  }

  /** Every (namespace, task id, shim); `namespace` limits it to one namespace. */
  tasks(namespace?: string): { namespace: string; id: string; shim: Shim }[] {
    const out: { namespace: string; id: string; shim: Shim }[] = [];
    for (const s of this.shims.values()) {
      if (namespace !== undefined && s.namespace !== namespace) continue;
      for (const id of s.tasks) out.push({ namespace: s.namespace, id, shim: s });
    }
    return out;
  }

  list(): Shim[] {
    return [...this.shims.values()];
  }

  /**
   * Reserves a slot for task `taskId` on a shim (starting one if needed) and resolves that shim once
   * it answers. On failure the slot is given back.
   */
  async acquire(namespace: string, taskId: string, own: boolean, signal?: AbortSignal): Promise<Shim> {
    const entry = own ? this.ownEntry(namespace, taskId) : this.sharedEntry(namespace);
    entry.tasks.add(taskId);
    if (entry.linger) {
      clearTimeout(entry.linger);
      entry.linger = undefined;
    }
    try {
      await entry.ready;
      signal?.throwIfAborted();
      return entry;
    } catch (e) {
      entry.tasks.delete(taskId);
      if (entry.tasks.size === 0 && this.shims.get(this.key(namespace, entry.id)) === entry) this.drop(entry);
      throw e;
    }
  }

  private sharedEntry(namespace: string): ShimEntry {
    for (let n = 1; ; n++) {
      const id = sharedShimId(namespace, n);
      const k = this.key(namespace, id);
      const e = this.shims.get(k);
      if (e && !e.dead && e.tasks.size < this.opts.cap) return e;
      if (!e && !this.retiring.has(k)) return this.launch(namespace, id, false);
    }
  }

  private ownEntry(namespace: string, containerId: string): ShimEntry {
    const id = ownShimId(namespace, containerId);
    return this.shims.get(this.key(namespace, id)) ?? this.launch(namespace, id, true);
  }

  private launch(namespace: string, id: string, own: boolean): ShimEntry {
    const k = this.key(namespace, id);
    const entry: ShimEntry = {
      id,
      namespace,
      own,
      address: '',
      tasks: new Set(),
      client: unconnected,
      dead: false,
      connection: undefined,
      ready: Promise.resolve(),
    };
    const before = this.retiring.get(k) ?? Promise.resolve();
    entry.ready = before.then(async () => {
      const address = await this.opts.launcher.start(namespace, id);
      this.attach(entry, address);
      this.log.info({ shim: id, namespace, address }, 'shim started');
    });
    entry.ready.catch(() => {});
    this.shims.set(k, entry);
    return entry;
  }

  private attach(entry: ShimEntry, address: string): void {
    entry.address = address;
    entry.connection = this.opts.launcher.connect(address, entry.namespace);
    entry.client = entry.connection.client;
    entry.listTasks = entry.connection.listTasks;
    entry.readLogs = entry.connection.readLogs;
  }

  /**
   * Takes back a shim found at restart, if it answers Connect. Resolves undefined (nothing kept)
   * when it does not.
   */
  async adopt(
    namespace: string,
    id: string,
    address: string,
    taskIds: readonly string[],
  ): Promise<Shim | undefined> {
    const k = this.key(namespace, id);
    const existing = this.shims.get(k);
    if (existing) {
      for (const t of taskIds) existing.tasks.add(t);
      return existing;
    }
    const entry: ShimEntry = {
      id,
      namespace,
      own: id.startsWith('own-'),
      address,
      tasks: new Set(taskIds),
      client: unconnected,
      dead: false,
      connection: undefined,
      ready: Promise.resolve(),
    };
    this.attach(entry, address);
    try {
      await entry.client.connect({ id: '' }, { timeoutMs: 5000 });
    } catch (e) {
      // As in check(): only an unserved socket is a dead shim; a slow one is taken back.
      if (isUnavailable(e)) {
        this.log.warn({ shim: id, namespace, err: e }, 'shim does not answer');
        entry.connection?.close();
        return undefined;
      }
      this.log.warn({ shim: id, namespace, err: e }, 'shim answers slowly; taken back');
    }
    this.shims.set(k, entry);
    return entry;
  }

  /**
   * Gives back a task's slot. The shim's last task going away shuts the shim down (it exits once
   * it hosts nothing).
   */
  async release(shim: Shim, taskId: string, signal?: AbortSignal): Promise<void> {
    shim.tasks.delete(taskId);
    const entry = this.shims.get(this.key(shim.namespace, shim.id));
    if (entry !== shim || shim.tasks.size > 0 || entry.dead) return;
    const linger = this.opts.lingerMs ?? 0;
    // A shared shim emptied by a task's delete waits a while for the next task; one found empty
    // at restart (taskId '') or a container's own shim stops now.
    if (linger > 0 && !entry.own && taskId !== '') {
      if (entry.linger) clearTimeout(entry.linger);
      entry.linger = setTimeout(() => {
        entry.linger = undefined;
        if (
          entry.tasks.size === 0 &&
          !entry.dead &&
          this.shims.get(this.key(entry.namespace, entry.id)) === entry
        )
          void this.stop(entry).catch(() => {});
      }, linger);
      entry.linger.unref();
      return;
    }
    await this.stop(entry, signal);
  }

  /** Stops every shim that is waiting for a task (daemon shutdown: nothing would give it one). */
  async stopIdle(): Promise<void> {
    const idle = [...this.shims.values()].filter((e) => e.linger !== undefined && e.tasks.size === 0);
    await Promise.all(
      idle.map((e) => {
        clearTimeout(e.linger);
        e.linger = undefined;
        return this.stop(e).catch(() => {});
      }),
    );
  }

  /**
   * Stops a shim no bundle names, found serving at `address` (one that was waiting for a task when
   * the daemon died). It exits only if it hosts nothing.
   */
  async stopStray(address: string): Promise<void> {
    const connection = this.opts.launcher.connect(address, '');
    try {
      await connection.client.shutdown({ id: '' }, { timeoutMs: 2000 });
    } catch (e) {
      this.log.debug({ address, err: e }, 'stray shim shutdown');
    } finally {
      connection.close();
    }
  }

  private async stop(entry: ShimEntry, signal?: AbortSignal): Promise<void> {
    this.drop(entry);
    const k = this.key(entry.namespace, entry.id);
    const done = (async () => {
      try {
        await entry.ready;
        await entry.client.shutdown({ id: entry.id }, { signal, timeoutMs: 5000 });
      } catch (e) {
        this.log.debug({ shim: entry.id, err: e }, 'shim shutdown');
      }
      // The socket answers until the shim has exited; a new shim of the same id must not find it.
      await this.waitGone(entry, 5000);
      entry.connection?.close();
      this.log.info({ shim: entry.id, namespace: entry.namespace }, 'shim stopped');
    })();
    this.retiring.set(k, done);
    try {
      await done;
    } finally {
      if (this.retiring.get(k) === done) this.retiring.delete(k);
    }
  }

  private async waitGone(entry: ShimEntry, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      try {
        await entry.client.connect({ id: '' }, { timeoutMs: 500 });
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private drop(entry: ShimEntry): void {
    const k = this.key(entry.namespace, entry.id);
    if (this.shims.get(k) === entry) this.shims.delete(k);
  }

  /** Asks a shim whether it is alive; a dead one is dropped and reported. */
  async check(shim: Shim): Promise<boolean> {
    const entry = this.shims.get(this.key(shim.namespace, shim.id));
    if (!entry || entry !== shim || entry.dead) return !shim.dead;
    try {
      await entry.ready;
    } catch {
      return false;
    }
    try {
      await entry.client.connect({ id: '' }, { timeoutMs: 5000 });
      return true;
    } catch (e) {
      // Only a socket nobody serves means death. A slow answer is no proof, and settling kills
      // the containers of a shim that may be merely busy.
      if (!isUnavailable(e)) return true;
      if (entry.dead || this.shims.get(this.key(shim.namespace, shim.id)) !== entry) return false;
      entry.dead = true;
      this.drop(entry);
      entry.connection?.close();
      this.log.warn({ shim: shim.id, namespace: shim.namespace, tasks: [...shim.tasks] }, 'shim died');
      this.opts.onDead?.(entry);
      return false;
    }
  }

  private checking = false;
  private async checkAll(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      await Promise.all([...this.shims.values()].filter((s) => s.address !== '').map((s) => this.check(s)));
    } finally {
      this.checking = false;
    }
  }

  /** Stops watching and closes every connection; shims keep running (they outlive the daemon). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.shims.values()) if (s.linger) clearTimeout(s.linger);
    for (const s of this.shims.values()) s.connection?.close();
    this.shims.clear();
  }
}
