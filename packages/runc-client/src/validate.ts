import { constants, readFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join, posix } from 'node:path';
import { RuncValidationError } from './errors.js';

// Checks runc would make with a worse message (or after side effects), made before it runs.

// runc's own rule: letters, digits, and _ + - . ; "." and ".." would name the state dir's parents.
const ID = /^[\w+\-.]+$/;

export function validateId(verb: string, id: string): void {
  if (typeof id !== 'string' || id === '') {
    throw new RuncValidationError(`runc ${verb}: container id is empty; pass the id of the container`);
  }
  if (!ID.test(id) || id === '.' || id === '..') {
    throw new RuncValidationError(
      `runc ${verb}: container id ${JSON.stringify(id)} is invalid; use only letters, digits, "_", "+", "-" and "." (not "." or "..")`,
    );
  }
  if (id.length > 1024) {
    throw new RuncValidationError(`runc ${verb}: container id is ${id.length} characters; use at most 1024`);
  }
}

export function validateAbsolute(verb: string, what: string, path: string): void {
  if (typeof path !== 'string' || path === '') {
    throw new RuncValidationError(`runc ${verb}: ${what} path is empty; pass an absolute path`);
  }
  if (!isAbsolute(path)) {
    throw new RuncValidationError(
      `runc ${verb}: ${what} path ${JSON.stringify(path)} is relative; pass an absolute path (e.g. path.resolve(${JSON.stringify(path)}))`,
    );
  }
}

async function executable(p: string): Promise<boolean> {
  try {
    await access(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Resolves the runc binary to an executable path, or says how to fix it. */
export async function resolveBinary(binary: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (binary.includes('/')) {
    if (await executable(binary)) return binary;
    throw new RuncValidationError(
      `runc binary ${binary}: not found or not executable; install runc or pass its path as { binary }`,
    );
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, binary);
    if (await executable(p)) return p;
  }
  throw new RuncValidationError(
    `runc binary ${binary}: not found in PATH (${env.PATH ?? ''}); install runc or pass its absolute path as { binary }`,
  );
}

// cwd under /proc/<pid|self|thread-self>/fd is how CVE-2024-21626 reached the host through a leaked fd.
const PROC_FD = /^\/proc\/(self|thread-self|\d+)\/(task\/\d+\/)?fd(\/|$)/;
const MAX_ID = 2 ** 31 - 1;

/** The parts of an OCI process runc would run with a worse failure, or that are known escapes. */
export function validateProcess(verb: string, proc: unknown): void {
  if (typeof proc !== 'object' || proc === null || Array.isArray(proc)) {
    throw new RuncValidationError(`runc ${verb}: process must be an OCI process object`);
  }
  const p = proc as { cwd?: unknown; user?: { uid?: unknown; gid?: unknown; additionalGids?: unknown } };
  if (p.cwd !== undefined) validateCwd(verb, p.cwd);
  const ids: [string, unknown][] = [
    ['uid', p.user?.uid],
    ['gid', p.user?.gid],
    ...(Array.isArray(p.user?.additionalGids)
      ? (p.user.additionalGids as unknown[]).map((g): [string, unknown] => ['additional gid', g])
      : []),
  ];
  for (const [what, v] of ids) {
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_ID) {
      throw new RuncValidationError(
        `runc ${verb}: process ${what} ${JSON.stringify(v)} is invalid; use an integer from 0 to ${MAX_ID}`,
      );
    }
  }
}

export function validateCwd(verb: string, cwd: unknown): void {
  if (typeof cwd !== 'string' || !isAbsolute(cwd)) {
    throw new RuncValidationError(
      `runc ${verb}: process cwd ${JSON.stringify(cwd)} must be an absolute path`,
    );
  }
  if (PROC_FD.test(posix.normalize(cwd))) {
    throw new RuncValidationError(
      `runc ${verb}: process cwd ${JSON.stringify(cwd)} is under /proc/*/fd, which can reach the host; use a path inside the container`,
    );
  }
}

/**
 * An absolute bundle directory holding a config.json that parses, with a sane process. The spec is
 * read synchronously: a bundle is a local directory (runc needs one) and the file a few KB, so the
 * read takes microseconds, less than the thread pool's round trip an async read costs.
 */
export async function validateBundle(verb: string, bundle: string): Promise<void> {
  validateAbsolute(verb, 'bundle', bundle);
  const path = join(bundle, 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RuncValidationError(
      code === 'ENOENT'
        ? `runc ${verb}: bundle ${bundle} has no config.json; write the OCI spec there (e.g. runc spec --bundle ${bundle})`
        : `runc ${verb}: bundle ${bundle}: cannot read config.json (${code ?? String(e)})`,
    );
  }
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (e) {
    throw new RuncValidationError(
      `runc ${verb}: ${path} is not valid JSON (${(e as Error).message}); fix or regenerate it`,
    );
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new RuncValidationError(`runc ${verb}: ${path} is not an OCI spec object`);
  }
  const proc = (spec as { process?: unknown }).process;
  if (proc !== undefined) validateProcess(verb, proc);
}
