import { leaseFromContext, namespaceFromContext, service, type ServiceRegistration } from '@ctrd/api-proto';
import { DiffService } from '@ctrd/api-proto/diff';
import type { LocalDiff } from '../diff/local-diff.js';

// containerd.services.diff.v1.Diff over the walking differ: Apply unpacks a layer blob into
// snapshot mounts (what `ctr image pull/import` unpack asks the daemon for), Diff writes the
// changes between two snapshots as a layer blob.

export function diffService(local: LocalDiff): ServiceRegistration {
  return service(DiffService, {
    apply: async (req, ctx) => ({
      applied: await local.apply(namespaceFromContext(ctx), req.diff, req.mounts, req.payloads, ctx.signal),
    }),
    diff: async (req, ctx) => ({
      diff: await local.diff(
        namespaceFromContext(ctx),
        req.left,
        req.right,
        { mediaType: req.mediaType, ref: req.ref, labels: req.labels, lease: leaseFromContext(ctx) },
        ctx.signal,
      ),
    }),
  });
}
