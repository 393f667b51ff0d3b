import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lockRoot } from '../src/root-lock.js';
import { durableInterceptor } from '../src/store/durable-interceptor.js';
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

  it('snapshot() sees one state across turns of the event loop while the main connection writes', async () => {
    const s = new MetaStore(join(dir, 'meta.db'));
    const names = (db: typeof s.db) =>
      (db.prepare('SELECT name FROM namespaces ORDER BY name').all() as { name: string }[]).map(
        (r) => r.name,
      );
    const add = (name: string) =>
      s.write(() =>
        s.db
          .prepare("INSERT INTO namespaces (name, labels, created_at, updated_at) VALUES (?, '{}', 0, 0)")
          .run(name),
      );
    try {
      add('a');
      const seen = await s.snapshot(async (db) => {
        const before = names(db);
        // Another call writes between two reads of this snapshot, and while its rows are iterated.
        add('b');
        await new Promise((r) => setImmediate(r));
        const during: string[] = [];
        for (const r of db.prepare('SELECT name FROM namespaces').iterate() as Iterable<{ name: string }>) {
          during.push(r.name);
          await new Promise((r) => setImmediate(r));
          add(`c${during.length}`);
        }
        return { before, during, after: names(db) };
      });
      expect(seen).toEqual({ before: ['a'], during: ['a'], after: ['a'] });
      expect(names(s.db)).toEqual(['a', 'b', 'c1']);
      // The next snapshot, on a pooled connection, sees the new state.
      expect(await s.snapshot(async (db) => names(db))).toEqual(['a', 'b', 'c1']);
      // A failure inside ends the read transaction too.
      await expect(
        s.snapshot(async () => {
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await s.snapshot(async (db) => db.inTransaction)).toBe(true);
    } finally {
      s.close();
    }
    await expect(s.snapshot(async () => 1)).rejects.toThrow(/closed/);
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

describe('group commit', () => {
  it('durable() syncs the WAL once for the changes made before it, shared by concurrent callers', async () => {
    const path = join(dir, 'meta.db');
    const s = new MetaStore(path);
    try {
      expect(s.db.pragma('synchronous', { simple: true })).toBe(1);
      // Nothing changed: nothing to sync.
      await s.durable();
      expect(s.walSyncs).toBe(0);
      const insert = s.db.prepare('INSERT INTO namespaces VALUES (?, ?, 1, 1)');
      for (let i = 0; i < 5; i++) s.write(() => insert.run(`n${i}`, '{}'));
      await Promise.all(Array.from({ length: 8 }, () => s.durable()));
      expect(s.walSyncs).toBe(1);
      // A change made while a sync runs gets a sync of its own after it.
      s.write(() => insert.run('n5', '{}'));
      const first = s.durable();
      s.write(() => insert.run('n6', '{}'));
      const second = s.durable();
      await Promise.all([first, second]);
      expect(s.walSyncs).toBe(3);
      await s.durable();
      expect(s.walSyncs).toBe(3);
    } finally {
      s.close();
    }
    // What was committed is there after reopening (the close checkpoints the WAL).
    const again = new MetaStore(path);
    try {
      expect(again.db.prepare('SELECT count(*) FROM namespaces').pluck().get()).toBe(7);
    } finally {
      again.close();
    }
  });

  it('a call that changed the store answers after durable(); a read-only call does not wait', async () => {
    let changes = 0;
    let synced = 0;
    let release = () => {};
    const store = {
      get changeCount() {
        return changes;
      },
      durable: () =>
        new Promise<void>((r) => {
          release = () => {
            synced++;
            r();
          };
        }),
    };
    const unary = { stream: false, method: { methodKind: 'unary' } } as never;
    const answer = { stream: false, message: 'ok' } as never;
    const writing = durableInterceptor(store)(async () => {
      changes++;
      return answer;
    });
    let answered = false;
    const call = writing(unary).then((r) => {
      answered = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(false);
    release();
    expect(await call).toBe(answer);
    expect(synced).toBe(1);
    const reading = durableInterceptor(store)(async () => answer);
    expect(await reading(unary)).toBe(answer);
    expect(synced).toBe(1);
  });

  it('a bidi stream waits before the message that follows a change; a server stream never waits', async () => {
    let changes = 0;
    let waits = 0;
    const store = {
      get changeCount() {
        return changes;
      },
      durable: async () => {
        waits++;
      },
    };
    async function* out(): AsyncIterable<string> {
      yield 'written';
      changes++;
      yield 'committed';
    }
    const seen = async (kind: string) => {
      waits = 0;
      const next = durableInterceptor(store)(async () => ({ stream: true, message: out() }) as never);
      const res = (await next({ stream: true, method: { methodKind: kind } } as never)) as unknown as {
        message: AsyncIterable<string>;
      };
      const got: string[] = [];
      for await (const m of res.message) got.push(m);
      return { got, waits };
    };
    expect(await seen('bidi_streaming')).toEqual({ got: ['written', 'committed'], waits: 1 });
    expect(await seen('server_streaming')).toEqual({ got: ['written', 'committed'], waits: 0 });
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
