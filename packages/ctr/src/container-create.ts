import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { OCI_SPEC_URL, packJson } from '@ctrd/api-proto/client';
import { type Container, ContainersService } from '@ctrd/api-proto/containers';
import { normalizeReference } from '@ctrd/api-proto/oci';
import type { Clients } from './clients.js';
import { UsageError } from './errors.js';
import { parseLabelArgs } from './labels.js';
import { buildSpec, type OciSpec } from './oci-spec.js';
import { checkId } from './identifiers.js';
import { createContainerFromImage } from './images/container-image.js';
import { defaultSnapshotter, parsePlatformFlags } from './images/format.js';

export interface CreateInput {
  id: string;
  args: string[];
  rootfs?: string;
  env?: string[];
  cwd?: string;
  user?: string;
  tty?: boolean;
  mount?: string[];
  'net-host'?: boolean;
  'memory-limit'?: number;
  cpus?: number;
  label?: string[];
  runtime: string;
  /** Create from this image instead of --rootfs. */
  image?: string;
  snapshotter?: string;
  platform?: string;
  /** Unpack progress lines. */
  progress?: (line: string) => void;
}

/** A fresh container id (12 hex digits) for commands run without one. */
export function generateId(): string {
  return randomBytes(6).toString('hex');
}

/** Checks the rootfs on this host: ctr and the daemon share it, and a typo should fail before any call. */
export function resolveRootfs(rootfs: string | undefined): string {
  if (rootfs === undefined || rootfs === '') {
    throw new UsageError('give an image, or the root filesystem with --rootfs DIR');
  }
  const path = resolve(rootfs);
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new UsageError(`--rootfs ${rootfs}: no such directory`);
  }
  if (!isDir) throw new UsageError(`--rootfs ${rootfs}: not a directory`);
  return path;
}

export function specFor(namespace: string, input: CreateInput, rootfs: string): OciSpec {
  return buildSpec(namespace, input.id, {
    args: input.args,
    rootfs,
    env: input.env,
    cwd: input.cwd,
    user: input.user,
    tty: input.tty,
    mounts: input.mount,
    netHost: input['net-host'],
    hostname: input['net-host'] ? hostname() : undefined,
    memoryLimit: input['memory-limit'],
    cpus: input.cpus,
  });
}

/** Containers.Create with an OCI spec built like containerd's ctr builds it (a JSON Any). */
export async function createContainer(
  clients: Clients,
  input: CreateInput,
  env: Record<string, string | undefined> = {},
): Promise<Container> {
  checkId(input.id, 'container');
  const labels = Object.fromEntries(
    Object.entries(parseLabelArgs(input.label ?? [])).filter(([, v]) => v !== ''),
  );
  if (input.image !== undefined && input.rootfs === undefined) {
    // A malformed reference is the caller's mistake: say so before any call, not "image not found".
    normalizeReference(input.image);
    return createContainerFromImage(clients, {
      ...input,
      image: input.image,
      labels,
      snapshotter: input.snapshotter ?? defaultSnapshotter(env),
      platform: parsePlatformFlags(input.platform ? [input.platform] : [])[0],
    });
  }
  const rootfs = resolveRootfs(input.rootfs);
  const spec = specFor(clients.namespace, input, rootfs);
  const res = await clients.get(ContainersService).create({
    container: {
      id: input.id,
      labels,
      runtime: { name: input.runtime },
      spec: packJson(OCI_SPEC_URL, spec),
    },
  });
  if (!res.container) throw new Error(`container "${input.id}": the daemon returned no container`);
  return res.container;
}
