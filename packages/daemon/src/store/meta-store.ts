import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { FailedPrecondition, type Logger, silentLogger } from '@ctrd/api-proto';
import Database from 'better-sqlite3';
import { type Migration, migrations as defaultMigrations } from './migrations.js';

// The metadata database: one SQLite file in WAL mode under the root dir. better-sqlite3 is
// synchronous, so a transaction runs to completion before any other request is looked at: that is
// what makes "one winner among concurrent creates" hold without extra locking.

export interface MetaStoreOptions {
  logger?: Logger | undefined;
  /** For tests: a different migration list. */
  migrations?: readonly Migration[] | undefined;
}

export class MetaStore {
  readonly db: Database.Database;
  readonly path: string;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(path: string, opts: MetaStoreOptions = {}) {
    const log = opts.logger ?? silentLogger;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.path = path;
    this.db = new Database(path);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      migrate(this.db, opts.migrations ?? defaultMigrations, log);
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

  close(): void {
    if (this.db.open) this.db.close();
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
