import { readdirSync, readFileSync, statSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isValidDigest } from '@ctrd/api-proto/oci';
import type { ContentPaths } from './paths.js';

// An ingest on disk: <ingest>/<key>/data (the bytes so far) and meta.json (who started it and
// what it expects). The offset is the size of `data`, and its mtime is the last update, so a
// write needs no metadata rewrite and a restarted daemon resumes where the file ends.

export interface IngestMeta {
  ns: string;
  ref: string;
  /** Expected total size; 0 when unknown. */
  total: number;
  /** Expected digest; '' when unknown. */
  expected: string;
  /** Nanoseconds since the epoch, as decimal text (JSON has no 64-bit integers). */
  startedAt: string;
  updatedAt: string;
}

export interface IngestState {
  key: string;
  dir: string;
  meta: IngestMeta;
  offset: number;
  /** Nanoseconds: the data file's mtime (its last write), or the meta's updatedAt without data. */
  updatedAt: bigint;
}

export const META_FILE = 'meta.json';
export const DATA_FILE = 'data';

function isMeta(v: unknown): v is IngestMeta {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as Record<string, unknown>;
  return (
    typeof m.ns === 'string' &&
    typeof m.ref === 'string' &&
    typeof m.total === 'number' &&
    Number.isSafeInteger(m.total) &&
    m.total >= 0 &&
    typeof m.expected === 'string' &&
    (m.expected === '' || isValidDigest(m.expected)) &&
    typeof m.startedAt === 'string' &&
    /^\d{1,20}$/.test(m.startedAt) &&
    typeof m.updatedAt === 'string' &&
    /^\d{1,20}$/.test(m.updatedAt)
  );
}

/** Reads one ingest's state; undefined when the directory holds no valid meta (torn or foreign). */
export function readIngest(dir: string, key: string): IngestState | undefined {
  let meta: unknown;
  try {
    meta = JSON.parse(readFileSync(join(dir, META_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  if (!isMeta(meta)) return undefined;
  let offset = 0;
  let updatedAt = BigInt(meta.updatedAt);
  try {
    const st = statSync(join(dir, DATA_FILE), { bigint: true });
    offset = Number(st.size);
    updatedAt = st.mtimeNs;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return { key, dir, meta, offset, updatedAt };
}

/** Every ingest directory with its state (invalid ones have `state` undefined). */
export function listIngests(
  paths: ContentPaths,
): { key: string; dir: string; state: IngestState | undefined }[] {
  let names: string[];
  try {
    names = readdirSync(paths.ingest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names
    .filter((n) => /^[0-9a-f]{64}$/.test(n))
    .map((key) => {
      const dir = join(paths.ingest, key);
      return { key, dir, state: readIngest(dir, key) };
    });
}

/** Writes meta.json atomically (temp file + rename). */
export async function writeMeta(dir: string, meta: IngestMeta): Promise<void> {
  const tmp = join(dir, `${META_FILE}.tmp`);
  await writeFile(tmp, JSON.stringify(meta), { mode: 0o600 });
  await rename(tmp, join(dir, META_FILE));
}
