import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockRoot } from '../src/root-lock.js';
import { MetaStore } from '../src/store/meta-store.js';
import { migrations } from '../src/store/migrations.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrd-store-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('metadata store', () => {
  it('migrates a new database to the latest version in WAL mode', () => {
    const s = new MetaStore(join(dir, 'meta.db'));
    try {
      expect(s.version).toBe(migrations.at(-1)!.version);
      expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
      const tables = (
        s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
      ).map((t) => t.name);
      expect(tables).toEqual(
        expect.arrayContaining(['namespaces', 'containers', 'leases', 'lease_resources']),
      );
    } finally {
      s.close();
    }
  });

  it('keeps data across reopen and applies only new migrations', () => {
    const path = join(dir, 'meta.db');
    let s = new MetaStore(path);
    s.write(() => s.db.prepare("INSERT INTO namespaces VALUES ('a', '{}', 1, 1)").run());
    s.close();
    const next = [
      ...migrations,
      { version: 99, description: 'test', sql: 'CREATE TABLE later_table (namespace TEXT)' },
    ];
    s = new MetaStore(path, { migrations: next });
    try {
      expect(s.version).toBe(99);
      expect(s.db.prepare('SELECT name FROM namespaces').all()).toEqual([{ name: 'a' }]);
    } finally {
      s.close();
    }
  });

  it('keeps prepared statements, one per SQL text and integer mode', () => {
    const s = new MetaStore(join(dir, 'meta.db'));
    s.db.exec('CREATE TABLE t (n INTEGER)');
    s.stmt('INSERT INTO t VALUES (?)').run(7);
    const plain = s.stmt('SELECT n FROM t');
    expect(s.stmt('SELECT n FROM t')).toBe(plain);
    const big = s.stmt('SELECT n FROM t', { safeIntegers: true });
    expect(big).not.toBe(plain);
    expect(plain.get()).toEqual({ n: 7 });
    expect(big.get()).toEqual({ n: 7n });
    expect(s.stmt('SELECT n FROM t').get()).toEqual({ n: 7 });
    s.close();
  });

  it('refuses a database from a newer ctrd', () => {
    const path = join(dir, 'meta.db');
    const s = new MetaStore(path);
    s.db.pragma('user_version = 1000');
    s.close();
    expect(() => new MetaStore(path)).toThrow(/schema version 1000 is newer/);
  });

  it('a failing migration leaves the previous version intact', () => {
    const path = join(dir, 'meta.db');
    new MetaStore(path).close();
    const bad = [
      ...migrations,
      { version: 100, description: 'bad', sql: 'CREATE TABLE x (a); SELECT nonsense(' },
    ];
    expect(() => new MetaStore(path, { migrations: bad })).toThrow();
    const s = new MetaStore(path);
    try {
      expect(s.version).toBe(migrations.at(-1)!.version);
      expect(s.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'x'").get()).toBeUndefined();
    } finally {
      s.close();
    }
  });

  it('rolls back a write that throws', () => {
    const s = new MetaStore(join(dir, 'meta.db'));
    try {
      expect(() =>
        s.write(() => {
          s.db.prepare("INSERT INTO namespaces VALUES ('a', '{}', 1, 1)").run();
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(s.db.prepare('SELECT count(*) AS n FROM namespaces').get()).toEqual({ n: 0 });
    } finally {
      s.close();
    }
  });
});

describe('root lock', () => {
  it('a second holder fails at once with a clear message, and release frees it', async () => {
    const first = lockRoot(dir);
    expect(() => lockRoot(dir)).toThrow(/another ctrd is running on it \(pid \d+\)/);
    first.release();
    const again = lockRoot(dir);
    again.release();
    expect((await stat(join(dir, 'ctrd.lock'))).isFile()).toBe(true);
  });
});
