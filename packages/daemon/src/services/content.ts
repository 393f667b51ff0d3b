import { create } from '@bufbuild/protobuf';
import {
  InvalidArgument,
  leaseFromContext,
  namespaceFromContext,
  service,
  type ServiceRegistration,
  TimeSlice,
  timestampFromNanos,
} from '@ctrd/api-proto';
import {
  ContentService,
  type Info,
  type WriteContentRequest,
  type WriteContentResponse,
  WriteContentResponseSchema,
  WriteAction,
} from '@ctrd/api-proto/content';
import { validateDigest } from '@ctrd/api-proto/oci';
import type { ContentWriter } from '../content/content-writer.js';
import type { LocalContent } from '../content/local-content.js';
import { safeSize } from '../content/paths.js';

// The Content service over the local store, in containerd's semantics (services/content):
// List streams in batches of 100, Read streams exactly the asked range, and Write is the bidi
// STAT / WRITE / COMMIT protocol that ctr's remote writer speaks.

const LIST_BATCH = 100;

/** A Read offset or size: negative means 0 (as containerd reads them), too big is InvalidArgument. */
function wireSize(v: bigint, what: string): number {
  return v <= 0n ? 0 : safeSize(v, what);
}

// Write's offsets and sizes are strict: a negative one is InvalidArgument (containerd reads a
// negative total as unknown and a negative offset as "here"; neither is anything a client means).

/** A Write message's total: 0 is unknown, negative or too big InvalidArgument. */
function writeTotal(req: WriteContentRequest, ref: string): number {
  return safeSize(req.total, `content ref "${ref}": total`);
}

async function* writeSession(
  local: LocalContent,
  requests: AsyncIterable<WriteContentRequest>,
  ns: string,
  lease: string | undefined,
  signal: AbortSignal,
): AsyncGenerator<WriteContentResponse> {
  const it = requests[Symbol.asyncIterator]();
  let next = await it.next();
  if (next.done) return;
  let req = next.value;
  if (req.ref === '') throw new InvalidArgument('content write: first message must have a reference');
  const ref = req.ref;
  let total = writeTotal(req, ref);
  let expected = req.expected ? validateDigest(req.expected, 'expected digest') : '';
  const w: ContentWriter = await local.writer(ns, ref, { total, expected, lease, signal });
  try {
    for (;;) {
      // The whole message is checked before anything of it is applied.
      if (req.expected !== '') expected = validateDigest(req.expected, 'expected digest');
      const t = writeTotal(req, ref);
      if (t > 0) total = t;
      const offset = safeSize(req.offset, `content ref "${ref}": write offset`);
      if (
        req.action !== WriteAction.STAT &&
        req.action !== WriteAction.WRITE &&
        req.action !== WriteAction.COMMIT
      ) {
        throw new InvalidArgument(`content ref "${ref}": unknown write action ${req.action as number}`);
      }
      await w.expect({ total, expected });
      const out = create(WriteContentResponseSchema, { action: req.action, total: BigInt(total) });
      switch (req.action) {
        case WriteAction.STAT: {
          const st = w.status();
          out.offset = BigInt(st.offset);
          out.digest = w.digest();
          out.startedAt = timestampFromNanos(st.startedAt);
          out.updatedAt = timestampFromNanos(st.updatedAt);
          break;
        }
        case WriteAction.WRITE:
        case WriteAction.COMMIT: {
          await w.writeAt(offset, req.data, signal);
          out.offset = BigInt(w.offset);
          if (req.action === WriteAction.COMMIT) {
            const info: Info = await w.commit(total, expected, req.labels, signal);
            out.digest = info.digest;
          } else {
            out.digest = w.digest();
          }
          break;
        }
      }
      yield out;
      next = await it.next();
      if (next.done) return;
      req = next.value;
    }
  } finally {
    await w.close();
  }
}

export function contentService(local: LocalContent): ServiceRegistration {
  return service(ContentService, {
    info: async (req, ctx) => ({ info: local.info(namespaceFromContext(ctx), req.digest) }),
    update: async (req, ctx) => ({
      info: local.update(namespaceFromContext(ctx), req.info, req.updateMask?.paths ?? []),
    }),
    async *list(req, ctx) {
      const all = await local.list(namespaceFromContext(ctx), req.filters, ctx.signal);
      const slice = new TimeSlice();
      for (let i = 0; i < all.length; i += LIST_BATCH) {
        yield { info: all.slice(i, i + LIST_BATCH) };
        if (slice.due) await slice.yield(ctx.signal);
      }
    },
    delete: async (req, ctx) => {
      local.delete(namespaceFromContext(ctx), req.digest);
      return {};
    },
    async *read(req, ctx) {
      const ns = namespaceFromContext(ctx);
      const offset = wireSize(req.offset, `content digest ${req.digest}: read offset`);
      const size = wireSize(req.size, `content digest ${req.digest}: read size`);
      let pos = offset;
      for await (const data of local.readStream(ns, req.digest, { offset, size, signal: ctx.signal })) {
        yield { offset: BigInt(pos), data };
        pos += data.length;
      }
    },
    status: async (req, ctx) => ({ status: local.status(namespaceFromContext(ctx), req.ref) }),
    listStatuses: async (req, ctx) => ({
      statuses: await local.listStatuses(namespaceFromContext(ctx), req.filters, ctx.signal),
    }),
    write: (requests, ctx) =>
      writeSession(local, requests, namespaceFromContext(ctx), leaseFromContext(ctx), ctx.signal),
    abort: async (req, ctx) => {
      local.abort(namespaceFromContext(ctx), req.ref);
      return {};
    },
  });
}
