import { closeSync, fdatasync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { FailedPrecondition, type Logger, silentLogger } from '@ctrd/api-proto';
import Database from 'better-sqlite3';
import { type Migration, migrations as defaultMigrations } from './migrations.js';

// The metadata database: one SQLite file in WAL mode under the root dir. better-sqlite3 is
// synchronous, so a transaction runs to completion before any other request is looked at: that is
// what makes "one winner among concurrent creates" hold without extra locking.
//
// Durability is a group commit. SQLite does not sync inside COMMIT (synchronous=NORMAL: in WAL mode
// the database stays consistent whatever the crash, but the last commits could be lost on a power
// cut); a call that changed the store answers only after `durable()`, one fdatasync of the WAL on
// libuv's thread pool that covers every commit made before it, shared by the calls waiting then (see
// durableInterceptor). With synchronous=FULL, SQLite fsynced in each COMMIT on the event loop: ~2 ms
// each on a busy disk, during which the daemon served nothing, twice per container start.

export interface MetaStoreOptions {
  logger?: Logger | undefined;
  /** For tests: a different migration list. */
  migrations?: readonly Migration[] | undefined;
}

/** Idle read-only connections kept for snapshot() (more may be open while lists run). */
const IDLE_READERS = 2;

export class MetaStore {
  readonly db: Database.Database;
  readonly path: string;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly totalChanges: Database.Statement;
  private syncedChanges = 0;
  private syncing: Promise<void> | undefined;
  private walFd: number | undefined;
  /** fdatasyncs of the WAL made by durable() (each may cover many commits). */
  walSyncs = 0;
  private readonly readers: Database.Database[] = [];
  private closed = false;

  constructor(path: string, opts: MetaStoreOptions = {}) {
    const log = opts.logger ?? silentLogger;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.path = path;
    this.db = new Database(path);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      // Migrations commit durably by themselves; afterwards, durable() does (see the top).
      this.db.pragma('synchronous = FULL');
      migrate(this.db, opts.migrations ?? defaultMigrations, log);
      this.db.pragma('synchronous = NORMAL');
      this.totalChanges = this.db.prepare('SELECT total_changes()').pluck();
      this.syncedChanges = this.changeCount;
    } catch (e) {
      this.db.close();
      throw e;
    }
  }

  /**
   * A prepared statement, kept for the life of the store: preparing parses the SQL each time, which
   * on the calls of every container start (get, exists, insert) costs more than running it. Callers
   * must not change the statement's modes (pluck, raw, safeIntegers...): it is shared; ask for
   * `safeIntegers` here instead.
   */
  stmt(sql: string, opts: { safeIntegers?: boolean } = {}): Database.Statement {
    const safe = opts.safeIntegers === true;
    const key = safe ? `1${sql}` : `0${sql}`;
    let st = this.statements.get(key);
    if (st === undefined) {
      st = this.db.prepare(sql);
      if (safe) st.safeIntegers(true);
      this.statements.set(key, st);
    }
    return st;
  }

  /** Rows inserted, updated or deleted through this connection so far (SQLite's own counter). */
  get changeCount(): number {
    return this.totalChanges.get() as number;
  }

  /**
   * Resolves once every change made so far is on disk: at once when nothing changed since the last
   * sync; else after an fdatasync of the WAL, joined by every caller that comes while it runs (the
   * next one starts when it ends, for the changes made meanwhile). Rejects if the sync fails.
   */
  async durable(): Promise<void> {
    const target = this.changeCount;
    while (this.syncedChanges < target) {
      this.syncing ??= this.syncWal().finally(() => {
        this.syncing = undefined;
      });
      await this.syncing;
    }
  }

  private async syncWal(): Promise<void> {
    const upTo = this.changeCount;
    // The WAL lives as long as the connection: opened once, at the first sync.
    this.walFd ??= openSync(`${this.path}-wal`, 'r');
    const fd = this.walFd;
    await new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
    this.walSyncs++;
    this.syncedChanges = Math.max(this.syncedChanges, upTo);
  }

  get version(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /** Runs `fn` in one write transaction (BEGIN IMMEDIATE), rolled back if it throws. */
  write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Runs `fn` in one read transaction, so it sees one consistent state. */
  read<T>(fn: () => T): T {
    return this.db.transaction(fn).deferred();
  }

  /**
   * Runs `fn` in one read transaction on a read-only connection of its own. Unlike read(), `fn` may
   * yield to the event loop (a long list worked through in time slices) and still see one
   * consistent state: other calls go on writing through the main connection meanwhile, and WAL
   * keeps this reader's snapshot. A few idle connections are kept for the next call.
   */
  async snapshot<T>(fn: (db: Database.Database) => Promise<T>): Promise<T> {
    if (this.closed) throw new FailedPrecondition(`metadata database ${this.path}: closed`);
    const db = this.readers.pop() ?? new Database(this.path, { readonly: true, fileMustExist: true });
    try {
      db.exec('BEGIN');
      // A deferred transaction takes its snapshot at its first read: now, not at fn's first query.
      db.prepare('SELECT count(*) FROM sqlite_schema').get();
      return await fn(db);
    } finally {
      if (db.inTransaction) db.exec('ROLLBACK');
      if (this.closed || this.readers.length >= IDLE_READERS) db.close();
      else this.readers.push(db);
    }
  }

  /** Closes the database; closing checkpoints the WAL into the database file, synced. */
  close(): void {
    this.closed = true;
    for (const r of this.readers.splice(0)) r.close();
    if (this.db.open) this.db.close();
    const fd = this.walFd;
    this.walFd = undefined;
    if (fd === undefined) return;
    if (this.syncing) void this.syncing.catch(() => {}).finally(() => closeSync(fd));
    else closeSync(fd);
  }
}

export function migrate(db: Database.Database, list: readonly Migration[], log: Logger = silentLogger): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = list.reduce((m, x) => Math.max(m, x.version), 0);
  if (current > latest) {
    throw new FailedPrecondition(
      `metadata database ${db.name}: schema version ${current} is newer than this ctrd knows (${latest}): run a newer ctrd`,
    );
  }
  for (const m of [...list].sort((a, b) => a.version - b.version)) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
    log.info({ version: m.version, description: m.description }, 'metadata schema migrated');
  }
}
