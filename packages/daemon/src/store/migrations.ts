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
];

/**
 * Tables whose rows keep a namespace from being deleted (containerd refuses to delete a namespace
 * that still holds containers, images, content or snapshots). Leases go with the namespace.
 * Later migrations that add images/content/snapshots add their tables here.
 */
export const NAMESPACE_BLOCKING_TABLES: readonly { table: string; what: string }[] = [
  { table: 'containers', what: 'containers' },
];
