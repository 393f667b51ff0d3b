import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FailedPrecondition } from '@ctrd/api-proto';
import Database from 'better-sqlite3';

// One daemon per root. A pid file alone would go stale after a SIGKILL; an SQLite exclusive lock
// is an fcntl lock the kernel drops when the holder dies, so a crashed daemon never blocks the
// next start, and a live one is detected at once.

export interface RootLock {
  readonly path: string;
  release(): void;
}

export function lockRoot(root: string): RootLock {
  const path = join(root, 'ctrd.lock');
  const pidPath = join(root, 'ctrd.pid');
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // The write transaction takes the exclusive lock and keeps it until the connection closes.
    db.exec('CREATE TABLE IF NOT EXISTS owner (pid INTEGER)');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('DELETE FROM owner');
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
      let holder = '';
      try {
        holder = ` (pid ${readFileSync(pidPath, 'utf8').trim()})`;
      } catch {}
      throw new FailedPrecondition(
        `root ${root}: another ctrd is running on it${holder}: stop it or use another --root`,
        { cause: e },
      );
    }
    throw e;
  }
  // Informational only: the lock is what counts.
  writeFileSync(pidPath, `${process.pid}\n`, { mode: 0o600 });
  return {
    path,
    release() {
      if (db.open) db.close();
    },
  };
}
