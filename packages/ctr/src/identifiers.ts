import { validateIdentifier } from '@ctrd/api-proto/client';
import { UsageError } from './errors.js';

/**
 * containerd's identifier rule, checked before an id becomes part of a local path (fifo names, log
 * files) or a request: `../x` must never reach the file system, and a bad id is the caller's mistake.
 */
export function checkId(id: string, what: string): string {
  try {
    validateIdentifier(id, what);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return id;
}
