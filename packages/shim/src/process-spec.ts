import { isAbsolute } from 'node:path';
import { InvalidArgument } from '@ctrd/api-proto';

// Checks on an OCI process (a task's config.json `process`, or an exec's spec) before runc sees it:
// the values runc has been tricked with (CVE-2024-21626: cwd through a leaked /proc/self/fd) and ids
// that would wrap around (CVE-2024-40635).

const MAX_ID = 0xffffffff - 1;

function checkId(v: unknown, what: string): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_ID) {
    throw new InvalidArgument(
      `${what}: ${JSON.stringify(v)} is not a valid id (an integer from 0 to ${MAX_ID})`,
    );
  }
}

/** Throws InvalidArgument naming `what` when the process has a bad cwd, args or user. */
export function validateProcess(process: unknown, what: string, requireArgs: boolean): void {
  if (process === undefined || process === null) {
    if (requireArgs) throw new InvalidArgument(`${what}: no process`);
    return;
  }
  if (typeof process !== 'object' || Array.isArray(process))
    throw new InvalidArgument(`${what}: process must be an object`);
  const p = process as {
    args?: unknown;
    cwd?: unknown;
    user?: { uid?: unknown; gid?: unknown; additionalGids?: unknown };
  };
  if (
    requireArgs &&
    (!Array.isArray(p.args) || p.args.length === 0 || !p.args.every((a) => typeof a === 'string'))
  ) {
    throw new InvalidArgument(`${what}: process args must be a non-empty list of strings`);
  }
  if (p.cwd !== undefined) {
    if (
      typeof p.cwd !== 'string' ||
      !isAbsolute(p.cwd) ||
      /^\/proc\/(self|thread-self|\d+)\/fd(\/|$)/.test(p.cwd)
    ) {
      throw new InvalidArgument(
        `${what}: cwd ${JSON.stringify(p.cwd)} must be an absolute path outside /proc/*/fd`,
      );
    }
  }
  if (p.user !== undefined) {
    checkId(p.user.uid, `${what}: user.uid`);
    checkId(p.user.gid, `${what}: user.gid`);
    if (p.user.additionalGids !== undefined) {
      if (!Array.isArray(p.user.additionalGids))
        throw new InvalidArgument(`${what}: user.additionalGids must be a list`);
      for (const g of p.user.additionalGids) checkId(g, `${what}: user.additionalGids`);
    }
  }
}
