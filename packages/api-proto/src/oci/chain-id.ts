import { createHash } from 'node:crypto';
import { parseDigest } from './digest.js';

// The OCI chain id names the filesystem a stack of layers produces: the first layer's chain id is
// its diff id, each next one is sha256("<parent chain id> <diff id>"). Snapshotters key committed
// layers by it, so an image sharing a base with another unpacks only what differs.

/** Chain ids of every prefix of `diffIds`: result[i] names the filesystem of layers 0..i. */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  let chain: string | undefined;
  for (const [i, diffId] of diffIds.entries()) {
    parseDigest(diffId, `diff id ${i}`);
    chain =
      chain === undefined
        ? diffId
        : `sha256:${createHash('sha256').update(`${chain} ${diffId}`).digest('hex')}`;
    out.push(chain);
  }
  return out;
}

/** The chain id of the whole stack; undefined for no layers. */
export function chainId(diffIds: readonly string[]): string | undefined {
  const all = chainIds(diffIds);
  return all[all.length - 1];
}
