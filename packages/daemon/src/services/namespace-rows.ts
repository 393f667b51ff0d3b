import type { MetaStore } from '../store/meta-store.js';
import { nowNanos } from '../store/codec.js';

// A namespace exists as soon as anything is written in it (containerd creates the bucket on the
// first write). Call inside a write transaction.
export function ensureNamespace(store: MetaStore, name: string): boolean {
  const now = nowNanos();
  const r = store.db
    .prepare(
      'INSERT INTO namespaces (name, labels, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
    )
    .run(name, '{}', now, now);
  return r.changes > 0;
}
