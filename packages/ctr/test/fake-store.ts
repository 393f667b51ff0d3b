import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { create } from '@bufbuild/protobuf';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { Code, type ConnectRouter, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { toTimestamp } from '@ctrd/api-proto';
import { ContentService, type Info, InfoSchema, WriteAction } from '@ctrd/api-proto/content';
import { DiffService } from '@ctrd/api-proto/diff';
import { type Image, ImageSchema, ImagesService } from '@ctrd/api-proto/images';
import { LeasesService } from '@ctrd/api-proto/leases';
import { NamespacesService } from '@ctrd/api-proto/namespaces';
import { MediaType } from '@ctrd/api-proto/oci';
import { Kind, SnapshotsService } from '@ctrd/api-proto/snapshots';
import { decompressStream, readTar } from '@ctrd/api-proto/tar';

/**
 * In-memory Content, Images, Snapshots, Diff and Leases services with containerd's behaviour where
 * ctr depends on it: Write's STAT/WRITE/COMMIT with resumable ingests and digest checks, update
 * masks on labels, snapshots as real directories (so prepare/view mounts are bind mounts ctr can
 * mount), and a Diff.Apply that unpacks the layer into the snapshot and reports its digest.
 */
export class FakeStore {
  blobs = new Map<
    string,
    Map<string, { data: Buffer; labels: Record<string, string>; createdAt: Timestamp }>
  >();
  ingests = new Map<string, { data: Buffer[]; size: number; expected: string }>();
  images = new Map<string, Map<string, Image>>();
  snapshots = new Map<
    string,
    { name: string; parent: string; kind: Kind; labels: Record<string, string>; dir: string; ns: string }
  >();
  leases = new Map<string, { id: string; labels: Record<string, string>; resources: string[] }>();
  deletedLeases: string[] = [];
  calls: string[] = [];
  /** Call names that carried a containerd-lease header. */
  leased: string[] = [];
  /** Make Diff.Apply report this digest instead of the real one. */
  applyDigest: string | undefined;
  readonly root = mkdtempSync(join(tmpdir(), 'ctr-fake-store-'));
  private seq = 0;

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  private ns(ctx: HandlerContext, method: string): string {
    const ns = ctx.requestHeader.get('containerd-namespace') ?? '';
    const lease = ctx.requestHeader.get('containerd-lease');
    this.calls.push(`${method} ${ns}`);
    if (lease) {
      this.leased.push(method);
      const l = this.leases.get(lease);
      if (!l) throw new ConnectError(`lease "${lease}": not found`, Code.NotFound);
    }
    if (ns === '') throw new ConnectError('namespace is required', Code.FailedPrecondition);
    return ns;
  }

  blobsOf(ns: string) {
    let m = this.blobs.get(ns);
    if (!m) {
      m = new Map();
      this.blobs.set(ns, m);
    }
    return m;
  }

  imagesOf(ns: string) {
    let m = this.images.get(ns);
    if (!m) {
      m = new Map();
      this.images.set(ns, m);
    }
    return m;
  }

  addBlob(ns: string, data: Buffer | string, labels: Record<string, string> = {}): string {
    const buf = Buffer.from(data);
    const digest = `sha256:${createHash('sha256').update(buf).digest('hex')}`;
    this.blobsOf(ns).set(digest, { data: buf, labels, createdAt: toTimestamp(new Date())! });
    return digest;
  }

  private info(
    digest: string,
    b: { data: Buffer; labels: Record<string, string>; createdAt: Timestamp },
  ): Info {
    return create(InfoSchema, {
      digest,
      size: BigInt(b.data.length),
      labels: { ...b.labels },
      createdAt: b.createdAt,
      updatedAt: b.createdAt,
    });
  }

  private snapKey(ns: string, snapshotter: string, key: string): string {
    return `${ns}/${snapshotter}/${key}`;
  }

  snapshot(ns: string, key: string, snapshotter = 'overlayfs') {
    return this.snapshots.get(this.snapKey(ns, snapshotter, key));
  }

  private makeSnapshot(ns: string, snapshotter: string, key: string, parent: string, kind: Kind) {
    const id = this.snapKey(ns, snapshotter, key);
    if (this.snapshots.has(id))
      throw new ConnectError(`snapshot "${key}": already exists`, Code.AlreadyExists);
    const dir = join(this.root, `snap-${++this.seq}`);
    if (parent) {
      const p = this.snapshots.get(this.snapKey(ns, snapshotter, parent));
      if (!p || p.kind !== Kind.COMMITTED) {
        throw new ConnectError(`parent snapshot "${parent}": not found`, Code.NotFound);
      }
      cpSync(p.dir, dir, { recursive: true, verbatimSymlinks: true });
    } else mkdirSync(dir);
    this.snapshots.set(id, { name: key, parent, kind, labels: {}, dir, ns });
    return [{ type: 'bind', source: dir, target: '', options: ['rbind', kind === Kind.VIEW ? 'ro' : 'rw'] }];
  }

  routes = (router: ConnectRouter): void => {
    const self = this;
    router.service(NamespacesService, {
      get: (req) => ({ namespace: { name: req.name, labels: {} } }),
      list: () => ({
        namespaces: [...new Set([...this.images.keys(), ...this.blobs.keys()])].map((name) => ({ name })),
      }),
    });
    router.service(LeasesService, {
      create: (req, ctx) => {
        this.ns(ctx, 'Leases.create');
        this.leases.set(req.id, { id: req.id, labels: { ...req.labels }, resources: [] });
        return { lease: { id: req.id, labels: req.labels } };
      },
      delete: (req, ctx) => {
        this.ns(ctx, 'Leases.delete');
        this.leases.delete(req.id);
        this.deletedLeases.push(req.id);
        return {};
      },
      list: (_req, ctx) => {
        this.ns(ctx, 'Leases.list');
        return { leases: [...this.leases.values()].map((l) => ({ id: l.id, labels: l.labels })) };
      },
    });
    router.service(ContentService, {
      info: (req, ctx) => {
        const ns = this.ns(ctx, 'Content.info');
        const b = this.blobsOf(ns).get(req.digest);
        if (!b) throw new ConnectError(`content digest ${req.digest}: not found`, Code.NotFound);
        return { info: this.info(req.digest, b) };
      },
      update: (req, ctx) => {
        const ns = this.ns(ctx, 'Content.update');
        const digest = req.info?.digest ?? '';
        const b = this.blobsOf(ns).get(digest);
        if (!b) throw new ConnectError(`content digest ${digest}: not found`, Code.NotFound);
        for (const path of req.updateMask?.paths ?? []) {
          if (!path.startsWith('labels.'))
            throw new ConnectError(`cannot update ${path}`, Code.InvalidArgument);
          const key = path.slice('labels.'.length);
          const v = req.info?.labels[key];
          if (v) b.labels[key] = v;
          else delete b.labels[key];
        }
        return { info: this.info(digest, b) };
      },
      list: async function* (_req, ctx) {
        const ns = self.ns(ctx, 'Content.list');
        yield { info: [...self.blobsOf(ns)].map(([d, b]) => self.info(d, b)) };
      },
      delete: (req, ctx) => {
        const ns = this.ns(ctx, 'Content.delete');
        if (!this.blobsOf(ns).delete(req.digest)) {
          throw new ConnectError(`content digest ${req.digest}: not found`, Code.NotFound);
        }
        return {};
      },
      read: async function* (req, ctx) {
        const ns = self.ns(ctx, 'Content.read');
        const b = self.blobsOf(ns).get(req.digest);
        if (!b) throw new ConnectError(`content digest ${req.digest}: not found`, Code.NotFound);
        const start = Number(req.offset);
        const end = req.size > 0n ? Math.min(b.data.length, start + Number(req.size)) : b.data.length;
        for (let at = start; at < end; at += 3000) {
          yield { offset: BigInt(at), data: b.data.subarray(at, Math.min(end, at + 3000)) };
        }
      },
      abort: (req, ctx) => {
        this.ns(ctx, 'Content.abort');
        if (!this.ingests.delete(req.ref)) throw new ConnectError(`ref ${req.ref}: not found`, Code.NotFound);
        return {};
      },
      write: async function* (reqs, ctx) {
        const ns = self.ns(ctx, 'Content.write');
        for await (const req of reqs) {
          if (req.action === WriteAction.STAT) {
            if (req.expected && self.blobsOf(ns).has(req.expected)) {
              throw new ConnectError(`content ${req.expected}: already exists`, Code.AlreadyExists);
            }
            let ing = self.ingests.get(req.ref);
            if (!ing) {
              ing = { data: [], size: 0, expected: req.expected };
              self.ingests.set(req.ref, ing);
            }
            yield { action: req.action, offset: BigInt(ing.size), total: req.total };
            continue;
          }
          const ing = self.ingests.get(req.ref);
          if (!ing) throw new ConnectError(`ref ${req.ref}: not found`, Code.NotFound);
          if (req.action === WriteAction.WRITE) {
            if (req.offset !== BigInt(ing.size)) {
              throw new ConnectError(
                `ref ${req.ref}: write at ${req.offset}, ingest has ${ing.size}`,
                Code.OutOfRange,
              );
            }
            ing.data.push(Buffer.from(req.data));
            ing.size += req.data.length;
            yield { action: req.action, offset: BigInt(ing.size) };
            continue;
          }
          const data = Buffer.concat(ing.data);
          if (req.total > 0n && BigInt(data.length) !== req.total) {
            throw new ConnectError(
              `unexpected commit size ${data.length}, expected ${req.total}: failed precondition`,
              Code.FailedPrecondition,
            );
          }
          const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
          if (req.expected && digest !== req.expected) {
            throw new ConnectError(
              `unexpected commit digest ${digest}, expected ${req.expected}: failed precondition`,
              Code.FailedPrecondition,
            );
          }
          self.ingests.delete(req.ref);
          self
            .blobsOf(ns)
            .set(digest, { data, labels: { ...req.labels }, createdAt: toTimestamp(new Date())! });
          yield { action: req.action, offset: BigInt(data.length), digest };
        }
      },
    });
    router.service(ImagesService, {
      get: (req, ctx) => {
        const ns = this.ns(ctx, 'Images.get');
        const image = this.imagesOf(ns).get(req.name);
        if (!image) throw new ConnectError(`image "${req.name}": not found`, Code.NotFound);
        return { image };
      },
      list: (req, ctx) => {
        const ns = this.ns(ctx, 'Images.list');
        const all = [...this.imagesOf(ns).values()];
        const names = req.filters.map((f) => /^name==(.*)$/.exec(f)?.[1]).filter((n) => n !== undefined);
        return { images: names.length ? all.filter((i) => names.includes(i.name)) : all };
      },
      create: (req, ctx) => {
        const ns = this.ns(ctx, 'Images.create');
        const image = create(ImageSchema, req.image);
        if (this.imagesOf(ns).has(image.name)) {
          throw new ConnectError(`image "${image.name}": already exists`, Code.AlreadyExists);
        }
        image.createdAt = toTimestamp(new Date());
        this.imagesOf(ns).set(image.name, image);
        return { image };
      },
      update: (req, ctx) => {
        const ns = this.ns(ctx, 'Images.update');
        const name = req.image?.name ?? '';
        const image = this.imagesOf(ns).get(name);
        if (!image) throw new ConnectError(`image "${name}": not found`, Code.NotFound);
        for (const path of req.updateMask?.paths ?? []) {
          if (path === 'target') image.target = req.image?.target;
          else if (path === 'labels') image.labels = { ...req.image?.labels };
          else if (path.startsWith('labels.')) {
            const key = path.slice(7);
            const v = req.image?.labels[key];
            if (v) image.labels[key] = v;
            else delete image.labels[key];
          }
        }
        return { image };
      },
      delete: (req, ctx) => {
        const ns = this.ns(ctx, `Images.delete${req.sync ? ' sync' : ''}`);
        if (!this.imagesOf(ns).delete(req.name)) {
          throw new ConnectError(`image "${req.name}": not found`, Code.NotFound);
        }
        return {};
      },
    });
    router.service(SnapshotsService, {
      prepare: (req, ctx) => {
        const ns = this.ns(ctx, 'Snapshots.prepare');
        return { mounts: this.makeSnapshot(ns, req.snapshotter, req.key, req.parent, Kind.ACTIVE) };
      },
      view: (req, ctx) => {
        const ns = this.ns(ctx, 'Snapshots.view');
        return { mounts: this.makeSnapshot(ns, req.snapshotter, req.key, req.parent, Kind.VIEW) };
      },
      mounts: (req, ctx) => {
        const ns = this.ns(ctx, 'Snapshots.mounts');
        const s = this.snapshots.get(this.snapKey(ns, req.snapshotter, req.key));
        if (!s) throw new ConnectError(`snapshot "${req.key}": not found`, Code.NotFound);
        return { mounts: [{ type: 'bind', source: s.dir, target: '', options: ['rbind', 'rw'] }] };
      },
      commit: (req, ctx) => {
        const ns = this.ns(ctx, 'Snapshots.commit');
        const id = this.snapKey(ns, req.snapshotter, req.key);
        const s = this.snapshots.get(id);
        if (!s || s.kind !== Kind.ACTIVE)
          throw new ConnectError(`snapshot "${req.key}": not found`, Code.NotFound);
        const to = this.snapKey(ns, req.snapshotter, req.name);
        if (this.snapshots.has(to))
          throw new ConnectError(`snapshot "${req.name}": already exists`, Code.AlreadyExists);
        this.snapshots.delete(id);
        this.snapshots.set(to, { ...s, name: req.name, kind: Kind.COMMITTED, labels: { ...req.labels } });
        return {};
      },
      remove: (req, ctx) => {
        const ns = this.ns(ctx, 'Snapshots.remove');
        const id = this.snapKey(ns, req.snapshotter, req.key);
        const s = this.snapshots.get(id);
        if (!s) throw new ConnectError(`snapshot "${req.key}": not found`, Code.NotFound);
        for (const other of this.snapshots.values()) {
          if (other.ns === ns && other.parent === req.key) {
            throw new ConnectError(
              `snapshot "${req.key}" has children: failed precondition`,
              Code.FailedPrecondition,
            );
          }
        }
        this.snapshots.delete(id);
        rmSync(s.dir, { recursive: true, force: true });
        return {};
      },
      stat: (req, ctx) => {
        const ns = this.ns(ctx, 'Snapshots.stat');
        const s = this.snapshots.get(this.snapKey(ns, req.snapshotter, req.key));
        if (!s) throw new ConnectError(`snapshot "${req.key}": not found`, Code.NotFound);
        return { info: { name: s.name, parent: s.parent, kind: s.kind, labels: s.labels } };
      },
      list: async function* (req, ctx) {
        const ns = self.ns(ctx, 'Snapshots.list');
        const prefix = `${ns}/${req.snapshotter}/`;
        const info = [...self.snapshots.entries()]
          .filter(([k]) => k.startsWith(prefix))
          .map(([, s]) => ({ name: s.name, parent: s.parent, kind: s.kind, labels: s.labels }));
        yield { info };
      },
      usage: (req, ctx) => {
        const ns = this.ns(ctx, 'Snapshots.usage');
        const s = this.snapshots.get(this.snapKey(ns, req.snapshotter, req.key));
        if (!s) throw new ConnectError(`snapshot "${req.key}": not found`, Code.NotFound);
        return { size: 4096n, inodes: 3n };
      },
    });
    router.service(DiffService, {
      apply: async (req, ctx) => {
        const ns = this.ns(ctx, 'Diff.apply');
        const digest = req.diff?.digest ?? '';
        const b = this.blobsOf(ns).get(digest);
        if (!b) throw new ConnectError(`content digest ${digest}: not found`, Code.NotFound);
        const target = req.mounts[0]?.source ?? '';
        const hash = createHash('sha256');
        let size = 0;
        async function* hashed() {
          for await (const chunk of decompressStream(
            (async function* () {
              yield b!.data;
            })(),
          )) {
            hash.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        }
        for await (const entry of readTar(hashed(), { drainTrailing: true })) {
          const name = posix.normalize(`/${entry.name}`);
          if (name.split('/').includes('..') || entry.name.split('/').includes('..')) {
            throw new ConnectError(`tar entry ${entry.name}: path escapes the root`, Code.InvalidArgument);
          }
          const path = join(target, name);
          if (entry.type === 'dir') mkdirSync(path, { recursive: true });
          else if (entry.type === 'file') {
            const parts: Buffer[] = [];
            for await (const c of entry.body) parts.push(Buffer.from(c));
            mkdirSync(join(path, '..'), { recursive: true });
            writeFileSync(path, Buffer.concat(parts), { mode: entry.mode });
          }
        }
        const applied = this.applyDigest ?? `sha256:${hash.digest('hex')}`;
        return { applied: { mediaType: MediaType.ociLayer, digest: applied, size: BigInt(size) } };
      },
    });
  };
}
