import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
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
