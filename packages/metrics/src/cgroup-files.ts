import { readdir, readFile } from 'node:fs/promises';

const MAX_UINT64 = (1n << 64n) - 1n;

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  // ENODEV/ESRCH: the cgroup went away while being read; EOPNOTSUPP: PSI files on kernels without it.
  return (
    code === 'ENOENT' ||
    code === 'ENOTDIR' ||
    code === 'ENODEV' ||
    code === 'ESRCH' ||
    code === 'EOPNOTSUPP' ||
    code === 'ENOTSUP' ||
    code === 'EINVAL'
  );
}

/** A file's text, or undefined when it (or its controller) is missing. */
export async function readText(path: string, signal?: AbortSignal): Promise<string | undefined> {
  try {
    return await readFile(path, { encoding: 'utf8', signal });
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

export async function listDir(path: string): Promise<string[] | undefined> {
  try {
    return await readdir(path);
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

/**
 * A cgroup counter as uint64. "max" means unlimited (`max` is returned for it); negative values (v1
 * writes -1 for unset limits) read as 0, and junk reads as 0 rather than failing a whole stats call.
 */
export function parseUint64(text: string, max = MAX_UINT64): bigint {
  const t = text.trim();
  if (t === 'max') return max;
  if (!/^-?\d+$/.test(t)) return 0n;
  const v = BigInt(t);
  if (v < 0n) return 0n;
  return v > MAX_UINT64 ? MAX_UINT64 : v;
}

export async function readUint64(
  path: string,
  signal?: AbortSignal,
  max = MAX_UINT64,
): Promise<bigint | undefined> {
  const text = await readText(path, signal);
  return text === undefined ? undefined : parseUint64(text, max);
}

/** "key value" lines (memory.stat, cpu.stat, memory.events...). */
export function parseKeyValues(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2) continue;
    out.set(parts[0]!, parseUint64(parts[1]!));
  }
  return out;
}

export async function readKeyValues(
  path: string,
  signal?: AbortSignal,
): Promise<Map<string, bigint> | undefined> {
  const text = await readText(path, signal);
  return text === undefined ? undefined : parseKeyValues(text);
}

export { MAX_UINT64 };
