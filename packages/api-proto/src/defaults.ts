import { DEFAULT_NAMESPACE } from './namespace-headers.js';

// Where clients look when not told: ctrd's own variables first, then containerd's, so scripts
// written for ctr keep working.

export const DEFAULT_ADDRESS = '/run/ctrd/ctrd.sock';

type Env = Readonly<Record<string, string | undefined>>;

/** CTRD_ADDRESS, else CONTAINERD_ADDRESS, else /run/ctrd/ctrd.sock. */
export function addressFromEnv(env: Env = process.env): string {
  return env.CTRD_ADDRESS || env.CONTAINERD_ADDRESS || DEFAULT_ADDRESS;
}

/** CTRD_NAMESPACE, else CONTAINERD_NAMESPACE, else `default`. */
export function namespaceFromEnv(env: Env = process.env): string {
  return env.CTRD_NAMESPACE || env.CONTAINERD_NAMESPACE || DEFAULT_NAMESPACE;
}
