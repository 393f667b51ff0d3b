import { create } from '@bufbuild/protobuf';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { Code, type ConnectRouter, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { packAny, toTimestamp } from '@ctrd/api-proto';
import {
  type Container,
  Container_RuntimeSchema,
  ContainerSchema,
  ContainersService,
} from '@ctrd/api-proto/containers';
import { EventHistoryService } from '@ctrd/api-proto/eventhistory';
import { type Envelope, EnvelopeSchema, EventsService } from '@ctrd/api-proto/events';
import { type Image, ImageSchema, ImagesService } from '@ctrd/api-proto/images';
import { LeasesService } from '@ctrd/api-proto/leases';
import { NamespacesService } from '@ctrd/api-proto/namespaces';
import { VersionService } from '@ctrd/api-proto/version';
import type { DescMessage, MessageInitShape, MessageShape } from '@bufbuild/protobuf';

/**
 * An in-memory stand-in for the daemon core, enough to drive ctr's commands: namespaces, containers,
 * leases and events, with containerd's error codes and messages. Records each call as
 * `Service.method ns`.
 */
export class FakeDaemon {
  namespaces = new Map<string, Record<string, string>>();
  containers = new Map<string, Map<string, Container>>();
  leases = new Map<string, { id: string; labels: Record<string, string>; createdAt?: Timestamp }[]>();
  /** Sent by Events.Subscribe (then the stream ends) and recorded for EventHistory.Replay. */
  events: Envelope[] = [];
  history: Envelope[] = [];
  images = new Map<string, Map<string, Image>>();
  calls: string[] = [];
  subscribeFilters: string[][] = [];
  replayRequests: { since?: Date; filters: string[]; follow: boolean }[] = [];
  listStreamImplemented = true;

  private ns(ctx: HandlerContext, method: string): string {
    const ns = ctx.requestHeader.get('containerd-namespace') ?? '';
    this.calls.push(`${method} ${ns}`);
    if (ns === '') throw new ConnectError('namespace is required', Code.FailedPrecondition);
    return ns;
  }

  private touch(ns: string): void {
    if (!this.namespaces.has(ns)) this.namespaces.set(ns, {});
  }

  addContainer(ns: string, init: MessageInitShape<typeof ContainerSchema> & { id: string }): void {
    this.touch(ns);
    let map = this.containers.get(ns);
    if (!map) {
      map = new Map();
      this.containers.set(ns, map);
    }
    const c = create(ContainerSchema, init);
    c.runtime ??= create(Container_RuntimeSchema, { name: 'io.containerd.runc.v2' });
    c.createdAt ??= toTimestamp(new Date('2026-11-23T08:00:00Z'));
    c.updatedAt ??= c.createdAt;
    map.set(init.id, c);
  }

  addEvent<D extends DescMessage>(
    namespace: string,
    topic: string,
    schema: D,
    event: MessageShape<D>,
    at?: Date,
  ): void {
    this.events.push(
      create(EnvelopeSchema, {
        namespace,
        topic,
        timestamp: toTimestamp(at ?? new Date('2026-11-23T08:00:00Z')),
        event: packAny(schema, event),
      }),
    );
  }

  routes = (router: ConnectRouter): void => {
    const self = this;
    router.service(VersionService, { version: () => ({ version: 'fake', revision: 'r' }) });
    router.service(NamespacesService, {
      list: (_req, ctx) => {
        this.ns(ctx, 'Namespaces.list');
        return { namespaces: [...this.namespaces].map(([name, labels]) => ({ name, labels })) };
      },
      get: (req, ctx) => {
        this.ns(ctx, 'Namespaces.get');
        return { namespace: { name: req.name, labels: this.namespaces.get(req.name) ?? {} } };
      },
      create: (req, ctx) => {
        this.ns(ctx, 'Namespaces.create');
        const name = req.namespace?.name ?? '';
        if (this.namespaces.has(name))
          throw new ConnectError(`namespace ${name}: already exists`, Code.AlreadyExists);
        this.namespaces.set(name, { ...req.namespace?.labels });
        return { namespace: req.namespace };
      },
      update: (req, ctx) => {
        this.ns(ctx, 'Namespaces.update');
        const name = req.namespace?.name ?? '';
        const labels = this.namespaces.get(name);
        if (!labels) throw new ConnectError(`namespace "${name}": not found`, Code.NotFound);
        for (const path of req.updateMask?.paths ?? []) {
          const key = path.replace(/^labels\./, '');
          const value = req.namespace?.labels[key] ?? '';
          if (value === '') delete labels[key];
          else labels[key] = value;
        }
        return { namespace: { name, labels } };
      },
      delete: (req, ctx) => {
        this.ns(ctx, 'Namespaces.delete');
        if (!this.namespaces.has(req.name))
          throw new ConnectError(`namespace "${req.name}": not found`, Code.NotFound);
        if ((this.containers.get(req.name)?.size ?? 0) > 0) {
          throw new ConnectError(
            `namespace "${req.name}" must be empty, but it still has containers`,
            Code.FailedPrecondition,
          );
        }
        this.namespaces.delete(req.name);
        return {};
      },
    });
    const containersOf = (ns: string) => this.containers.get(ns) ?? new Map<string, Container>();
    const notFound = (id: string, ns: string) =>
      new ConnectError(`container "${id}" in namespace "${ns}": not found`, Code.NotFound);
    router.service(ContainersService, {
      get: (req, ctx) => {
        const ns = this.ns(ctx, 'Containers.get');
        const c = containersOf(ns).get(req.id);
        if (!c) throw notFound(req.id, ns);
        return { container: c };
      },
      list: (_req, ctx) => {
        const ns = this.ns(ctx, 'Containers.list');
        return { containers: [...containersOf(ns).values()] };
      },
      listStream: async function* (_req, ctx) {
        const ns = self.ns(ctx, 'Containers.listStream');
        if (!self.listStreamImplemented) throw new ConnectError('not implemented', Code.Unimplemented);
        for (const container of containersOf(ns).values()) yield { container };
      },
      create: (req, ctx) => {
        const ns = this.ns(ctx, 'Containers.create');
        const c = req.container;
        if (!c) throw new ConnectError('container is required', Code.InvalidArgument);
        if (containersOf(ns).has(c.id)) {
          throw new ConnectError(`container "${c.id}": already exists`, Code.AlreadyExists);
        }
        this.addContainer(ns, { ...c, createdAt: toTimestamp(new Date('2026-11-23T09:00:00Z')) });
        return { container: containersOf(ns).get(c.id) };
      },
      update: (req, ctx) => {
        const ns = this.ns(ctx, 'Containers.update');
        const id = req.container?.id ?? '';
        const c = containersOf(ns).get(id);
        if (!c) throw notFound(id, ns);
        for (const path of req.updateMask?.paths ?? []) {
          const key = path.replace(/^labels\./, '');
          const value = req.container?.labels[key] ?? '';
          if (value === '') delete c.labels[key];
          else c.labels[key] = value;
        }
        return { container: c };
      },
      delete: (req, ctx) => {
        const ns = this.ns(ctx, 'Containers.delete');
        if (!containersOf(ns).delete(req.id)) throw notFound(req.id, ns);
        return {};
      },
    });
    router.service(ImagesService, {
      list: (req, ctx) => {
        const ns = this.ns(ctx, `Images.list ${req.filters.join(' ')}`);
        return { images: [...(this.images.get(ns)?.values() ?? [])] };
      },
      create: (req, ctx) => {
        const ns = this.ns(ctx, 'Images.create');
        const image = create(ImageSchema, req.image);
        let map = this.images.get(ns);
        if (!map) {
          map = new Map();
          this.images.set(ns, map);
        }
        if (map.has(image.name))
          throw new ConnectError(`image "${image.name}": already exists`, Code.AlreadyExists);
        map.set(image.name, image);
        return { image };
      },
    });
    router.service(LeasesService, {
      list: (_req, ctx) => {
        const ns = this.ns(ctx, 'Leases.list');
        return { leases: this.leases.get(ns) ?? [] };
      },
    });
    router.service(EventsService, {
      subscribe: async function* (req, ctx) {
        self.calls.push(`Events.subscribe ${ctx.requestHeader.get('containerd-namespace')}`);
        self.subscribeFilters.push([...req.filters]);
        for (const env of self.events) yield env;
      },
    });
    router.service(EventHistoryService, {
      replay: async function* (req) {
        const since = req.since ? new Date(Number(req.since.seconds) * 1000) : undefined;
        self.replayRequests.push({
          ...(since ? { since } : {}),
          filters: [...req.filters],
          follow: req.follow,
        });
        for (const env of self.history) yield env;
      },
    });
  };
}
