import { createHash } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import {
  Code,
  type ConnectRouter,
  ConnectError,
  createRouterTransport,
  type HandlerContext,
} from '@connectrpc/connect';
import { ContentService, WriteAction } from '@ctrd/api-proto/content';
import { type Image, ImageSchema, ImagesService } from '@ctrd/api-proto/images';
import { LeasesService } from '@ctrd/api-proto/leases';
import { Clients } from '../src/clients.js';

// An in-memory content store with containerd's Content.Write semantics (STAT resumes an ingest
// by ref, a ref has one writer at a time, COMMIT checks size and digest and fails without making
// the blob visible), plus the Leases and Images calls pull and push make. Enough to drive the
// registry fetch and push code through the real Connect client without a daemon.

export interface StoredBlob {
  data: Buffer;
  labels: Record<string, string>;
}

export class FakeContent {
  readonly blobs = new Map<string, StoredBlob>();
  readonly ingests = new Map<string, { data: Buffer; total: bigint; expected: string; locked: boolean }>();
  readonly images = new Map<string, Image>();
  readonly leases = new Set<string>();
  /** `STAT <ref> lease=<id>` for each Write stream, in order. */
  readonly writes: string[] = [];
  readonly aborted: string[] = [];

  put(data: Buffer | string, labels: Record<string, string> = {}): string {
    const buf = Buffer.from(data);
    const digest = `sha256:${createHash('sha256').update(buf).digest('hex')}`;
    this.blobs.set(digest, { data: buf, labels });
    return digest;
  }

  clients(): Clients {
    return new Clients({
      address: 'unix:///nonexistent',
      namespace: 'default',
      transport: createRouterTransport(this.routes),
    });
  }

  routes = (router: ConnectRouter): void => {
    const self = this;
    const lease = (ctx: HandlerContext) => ctx.requestHeader.get('containerd-lease') ?? '';
    router.service(ContentService, {
      info: (req) => {
        const b = this.blobs.get(req.digest);
        if (!b) throw new ConnectError(`content digest ${req.digest}: not found`, Code.NotFound);
        return { info: { digest: req.digest, size: BigInt(b.data.length), labels: { ...b.labels } } };
      },
      update: (req) => {
        const digest = req.info?.digest ?? '';
        const b = this.blobs.get(digest);
        if (!b) throw new ConnectError(`content digest ${digest}: not found`, Code.NotFound);
        for (const path of req.updateMask?.paths ?? []) {
          const key = path.replace(/^labels\./, '');
          const value = req.info?.labels[key] ?? '';
          if (value === '') delete b.labels[key];
          else b.labels[key] = value;
        }
        return { info: { digest, size: BigInt(b.data.length), labels: { ...b.labels } } };
      },
      status: (req) => {
        const i = this.ingests.get(req.ref);
        if (!i) throw new ConnectError(`ref ${req.ref}: not found`, Code.NotFound);
        return {
          status: { ref: req.ref, offset: BigInt(i.data.length), total: i.total, expected: i.expected },
        };
      },
      abort: (req) => {
        this.aborted.push(req.ref);
        if (!this.ingests.delete(req.ref)) throw new ConnectError(`ref ${req.ref}: not found`, Code.NotFound);
        return {};
      },
      read: async function* (req) {
        const b = self.blobs.get(req.digest);
        if (!b) throw new ConnectError(`content digest ${req.digest}: not found`, Code.NotFound);
        const end = req.size > 0n ? Number(req.offset + req.size) : b.data.length;
        for (let at = Number(req.offset); at < end; at += 1000) {
          yield { offset: BigInt(at), data: b.data.subarray(at, Math.min(at + 1000, end)) };
        }
      },
      write: async function* (requests, ctx) {
        let ref = '';
        let ingest: { data: Buffer; total: bigint; expected: string; locked: boolean } | undefined;
        try {
          for await (const req of requests) {
            if (req.action === WriteAction.STAT) {
              ref = req.ref;
              self.writes.push(`STAT ${ref} lease=${lease(ctx)}`);
              if (req.expected && self.blobs.has(req.expected)) {
                throw new ConnectError(`content ${req.expected}: already exists`, Code.AlreadyExists);
              }
              ingest = self.ingests.get(ref);
              if (ingest?.locked) throw new ConnectError(`ref ${ref} locked: unavailable`, Code.Unavailable);
              if (!ingest) {
                ingest = { data: Buffer.alloc(0), total: req.total, expected: req.expected, locked: false };
                self.ingests.set(ref, ingest);
              }
              ingest.locked = true;
              yield { action: WriteAction.STAT, offset: BigInt(ingest.data.length), total: ingest.total };
            } else if (req.action === WriteAction.WRITE) {
              if (!ingest) throw new ConnectError('write before stat', Code.FailedPrecondition);
              if (req.offset !== BigInt(ingest.data.length)) {
                throw new ConnectError(
                  `ref ${ref}: write at ${req.offset}, have ${ingest.data.length}`,
                  Code.InvalidArgument,
                );
              }
              ingest.data = Buffer.concat([ingest.data, req.data]);
              yield { action: WriteAction.WRITE, offset: BigInt(ingest.data.length) };
            } else {
              if (!ingest) throw new ConnectError('commit before stat', Code.FailedPrecondition);
              if (req.total > 0n && BigInt(ingest.data.length) !== req.total) {
                throw new ConnectError(
                  `unexpected commit size ${ingest.data.length}, expected ${req.total}: failed precondition`,
                  Code.FailedPrecondition,
                );
              }
              const digest = `sha256:${createHash('sha256').update(ingest.data).digest('hex')}`;
              if (req.expected && digest !== req.expected) {
                throw new ConnectError(
                  `unexpected commit digest ${digest}, expected ${req.expected}: failed precondition`,
                  Code.FailedPrecondition,
                );
              }
              self.blobs.set(digest, { data: ingest.data, labels: { ...req.labels } });
              self.ingests.delete(ref);
              ingest = undefined;
              yield {
                action: WriteAction.COMMIT,
                digest,
                offset: BigInt(self.blobs.get(digest)?.data.length ?? 0),
              };
            }
          }
        } finally {
          if (ingest) ingest.locked = false;
        }
      },
    });
    router.service(LeasesService, {
      create: (req) => {
        this.leases.add(req.id);
        return { lease: { id: req.id, labels: req.labels } };
      },
      delete: (req) => {
        this.leases.delete(req.id);
        return {};
      },
    });
    router.service(ImagesService, {
      get: (req) => {
        const image = this.images.get(req.name);
        if (!image) throw new ConnectError(`image "${req.name}": not found`, Code.NotFound);
        return { image };
      },
      create: (req) => {
        const image = create(ImageSchema, req.image);
        if (this.images.has(image.name)) {
          throw new ConnectError(`image "${image.name}": already exists`, Code.AlreadyExists);
        }
        this.images.set(image.name, image);
        return { image };
      },
      update: (req) => {
        const image = create(ImageSchema, req.image);
        if (!this.images.has(image.name))
          throw new ConnectError(`image "${image.name}": not found`, Code.NotFound);
        this.images.set(image.name, image);
        return { image };
      },
    });
  };
}
