import { hostname } from 'node:os';
import { OCI_SPEC_URL, packJson } from '@ctrd/api-proto/client';
import { isAlreadyExists, isNotFound, NotFound } from '@ctrd/api-proto/client';
import { type Container, ContainersService } from '@ctrd/api-proto/containers';
import { type Image, ImagesService } from '@ctrd/api-proto/images';
import { defaultPlatform, normalizeReference, type Platform } from '@ctrd/api-proto/oci';
import { SnapshotsService } from '@ctrd/api-proto/snapshots';
import type { Clients } from '../clients.js';
import { buildSpec, type OciSpec } from '../oci-spec.js';
import {
  imageLabels,
  imageProcess,
  resolveUserInRoot,
  STOP_SIGNAL_LABEL,
  userIsNumeric,
} from './image-spec.js';
import { fromProto, type ResolvedImage, resolveImage } from './resolve.js';
import { withReadOnlyMounts } from './temp-mount.js';
import { DEFAULT_SNAPSHOTTER, imageChainIds, isUnpacked, unpackImage } from './unpack.js';
import { callOptions, withLease } from './with-lease.js';

// A container from an image, in the order containerd's ctr makes one (`ctr run IMAGE ID`): the
// image record, its manifest and config for this platform, the unpacked layers (unpacking them
// first if needed), a new active snapshot keyed by the container id on top of the image's chain
// id, the spec from the image config (user names read from the snapshot, mounted read-only here),
// and the container record naming the image, snapshotter and snapshot, all under one lease.

export interface ImageContainerInput {
  id: string;
  image: string;
  /** The user's command; the image's Cmd when empty. */
  args: string[];
  env?: string[];
  cwd?: string;
  user?: string;
  tty?: boolean;
  mount?: string[];
  'net-host'?: boolean;
  'memory-limit'?: number;
  cpus?: number;
  labels: Record<string, string>;
  runtime: string;
  snapshotter?: string;
  platform?: Platform;
  signal?: AbortSignal;
  progress?: (line: string) => void;
}

/** Images.Get by the name as given, then by its normalized form (`busybox` → `docker.io/library/busybox:latest`). */
export async function getImage(clients: Clients, ref: string, signal?: AbortSignal): Promise<Image> {
  const api = clients.get(ImagesService);
  const names = [ref];
  try {
    const normalized = normalizeReference(ref).reference;
    if (normalized !== ref) names.push(normalized);
  } catch {
    // Not a docker reference: only the exact name can match.
  }
  for (const name of names) {
    try {
      const res = await api.get({ name }, callOptions(undefined, signal));
      if (res.image) return res.image;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  throw new NotFound(`image "${ref}": not found: import or pull it first (ctr images ls lists the images)`);
}

/** The image's spec for container `id`, user names resolved in the mounted snapshot when needed. */
export async function imageSpec(
  clients: Clients,
  input: ImageContainerInput,
  resolved: ResolvedImage,
  imageName: string,
  snapshot: {
    snapshotter: string;
    key: string;
    mounts: { type: string; source: string; options: string[] }[];
  },
): Promise<OciSpec> {
  const proc = imageProcess(
    resolved.config,
    { args: input.args, env: input.env, cwd: input.cwd, user: input.user },
    imageName,
  );
  const user = userIsNumeric(proc.user)
    ? await resolveUserInRoot(proc.user, undefined)
    : await withReadOnlyMounts(snapshot.mounts, (root) => resolveUserInRoot(proc.user, root), input.signal);
  const spec = buildSpec(clients.namespace, input.id, {
    args: proc.args,
    rootfs: 'rootfs',
    env: proc.env,
    cwd: proc.cwd,
    tty: input.tty,
    mounts: input.mount,
    netHost: input['net-host'],
    hostname: input['net-host'] ? hostname() : undefined,
    memoryLimit: input['memory-limit'],
    cpus: input.cpus,
  });
  spec.process.user = { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids };
  return spec;
}

/** Creates container `input.id` from image `input.image`; the snapshot is removed again if anything fails. */
export async function createContainerFromImage(
  clients: Clients,
  input: ImageContainerInput,
): Promise<Container> {
  const { signal, progress } = input;
  const snapshotter = input.snapshotter || DEFAULT_SNAPSHOTTER;
  const platform = input.platform ?? defaultPlatform();
  const image = await getImage(clients, input.image, signal);
  const target = fromProto(image.target, `image "${image.name}"`);
  let resolved = await resolveImage(clients, image.name, target, platform, signal);
  const chains = imageChainIds(resolved, image.name);
  const top = chains[chains.length - 1]!;
  return withLease(
    clients,
    async (lease) => {
      if (!(await isUnpacked(clients, top, snapshotter, signal))) {
        resolved = (
          await unpackImage(
            clients,
            { name: image.name, target },
            { snapshotter, platform, signal, progress, lease },
          )
        ).resolved;
      }
      const snapshots = clients.get(SnapshotsService);
      let mounts: Awaited<ReturnType<typeof snapshots.prepare>>['mounts'];
      try {
        mounts = (
          await snapshots.prepare(
            { snapshotter, key: input.id, parent: top, labels: {} },
            callOptions(lease, signal),
          )
        ).mounts;
      } catch (err) {
        if (isAlreadyExists(err)) {
          throw new Error(
            `snapshot "${input.id}" in ${snapshotter} already exists: remove it (ctr snapshots rm ${input.id}) or pick another id`,
            {
              cause: err,
            },
          );
        }
        throw err;
      }
      try {
        const spec = await imageSpec(clients, input, resolved, image.name, {
          snapshotter,
          key: input.id,
          mounts,
        });
        const labels = { [STOP_SIGNAL_LABEL]: 'SIGTERM', ...imageLabels(resolved.config), ...input.labels };
        const res = await clients.get(ContainersService).create(
          {
            container: {
              id: input.id,
              image: image.name,
              labels,
              runtime: { name: input.runtime },
              spec: packJson(OCI_SPEC_URL, spec),
              snapshotter,
              snapshotKey: input.id,
            },
          },
          callOptions(lease, signal),
        );
        if (!res.container) throw new Error(`container "${input.id}": the daemon returned no container`);
        return res.container;
      } catch (err) {
        await snapshots.remove({ snapshotter, key: input.id }, callOptions(lease)).catch(() => undefined);
        throw err;
      }
    },
    { signal },
  );
}
