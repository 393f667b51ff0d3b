// Schema versions, applied in order inside one transaction each; PRAGMA user_version records the
// last one applied. Never edit a released migration: add the next one. Every row carries its
// namespace so a namespace can be listed, checked for emptiness and deleted as one key range.

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    description: 'namespaces, containers, leases, lease resources',
    sql: `
      CREATE TABLE namespaces (
        name TEXT PRIMARY KEY NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE containers (
        namespace TEXT NOT NULL REFERENCES namespaces(name),
        id TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        image TEXT NOT NULL DEFAULT '',
        runtime_name TEXT NOT NULL,
        runtime_options_type TEXT,
        runtime_options BLOB,
        spec_type TEXT NOT NULL,
        spec BLOB NOT NULL,
        snapshotter TEXT NOT NULL DEFAULT '',
        snapshot_key TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, id)
      ) STRICT;

      CREATE TABLE container_extensions (
        namespace TEXT NOT NULL,
        container_id TEXT NOT NULL,
        name TEXT NOT NULL,
        type_url TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (namespace, container_id, name),
        FOREIGN KEY (namespace, container_id) REFERENCES containers(namespace, id) ON DELETE CASCADE
      ) STRICT;

      CREATE TABLE leases (
        namespace TEXT NOT NULL REFERENCES namespaces(name),
        id TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, id)
      ) STRICT;

      CREATE TABLE lease_resources (
        namespace TEXT NOT NULL,
        lease_id TEXT NOT NULL,
        type TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (namespace, lease_id, type, id),
        FOREIGN KEY (namespace, lease_id) REFERENCES leases(namespace, id) ON DELETE CASCADE
      ) STRICT;
    `,
  },
  {
    version: 2,
    description: 'content, images, snapshots',
    sql: `
      -- Blobs live once on disk (root/content/blobs/<alg>/<hex>); a row makes one visible in one
      -- namespace, with that namespace's labels (gc.ref.*, uncompressed, ...).
      CREATE TABLE content (
        namespace TEXT NOT NULL REFERENCES namespaces(name),
        digest TEXT NOT NULL,
        size INTEGER NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, digest)
      ) STRICT;
      CREATE INDEX content_by_digest ON content (digest);

      CREATE TABLE images (
        namespace TEXT NOT NULL REFERENCES namespaces(name),
        name TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        target_media_type TEXT NOT NULL,
        target_digest TEXT NOT NULL,
        target_size INTEGER NOT NULL,
        target_annotations TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, name)
      ) STRICT;

      -- Snapshot keys are per namespace and snapshotter; backend_id names the snapshotter's
      -- directory (root/snapshots/<snapshotter>/<backend_id>), so keys never become paths.
      -- kind: containerd's Kind enum (1 view, 2 active, 3 committed).
      CREATE TABLE snapshots (
        namespace TEXT NOT NULL REFERENCES namespaces(name),
        snapshotter TEXT NOT NULL,
        key TEXT NOT NULL,
        backend_id INTEGER NOT NULL,
        parent TEXT NOT NULL DEFAULT '',
        kind INTEGER NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        -- Disk usage of a committed snapshot, measured once (NULL until then; active ones are walked).
        usage_size INTEGER,
        usage_inodes INTEGER,
        PRIMARY KEY (namespace, snapshotter, key)
      ) STRICT;
      CREATE UNIQUE INDEX snapshots_by_backend ON snapshots (snapshotter, backend_id);
      CREATE INDEX snapshots_by_parent ON snapshots (namespace, snapshotter, parent);
    `,
  },
  {
    version: 3,
    description: 'gc epoch: a count of the writes that may add a reference',
    // The collector marks from a snapshot, in time slices; before it sweeps, an unchanged count
    // tells it that no row that could reference something was written meanwhile (deletions only
    // make more garbage, so they are not counted).
    sql: `
      CREATE TABLE gc_epoch (id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL) STRICT;
      INSERT INTO gc_epoch (id, n) VALUES (0, 0);
${['content', 'snapshots', 'images', 'containers', 'leases', 'lease_resources']
  .flatMap((t) =>
    ['INSERT', 'UPDATE'].map(
      (op) =>
        `      CREATE TRIGGER gc_epoch_${t}_${op.toLowerCase()} AFTER ${op} ON ${t} BEGIN UPDATE gc_epoch SET n = n + 1; END;`,
    ),
  )
  .join('\n')}
    `,
  },
];

/**
 * Tables whose rows keep a namespace from being deleted (containerd refuses to delete a namespace
 * that still holds containers, images, content or snapshots). Leases go with the namespace.
 * Tables added by later migrations that hold objects belong here too.
 */
export const NAMESPACE_BLOCKING_TABLES: readonly { table: string; what: string }[] = [
  { table: 'containers', what: 'containers' },
  { table: 'images', what: 'images' },
  { table: 'content', what: 'content' },
  { table: 'snapshots', what: 'snapshots' },
];
