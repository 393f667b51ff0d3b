import { Args, Flags } from '@oclif/core';
import { isAlreadyExists } from '@ctrd/api-proto/client';
import { ImagesService } from '@ctrd/api-proto/images';
import { type Descriptor, formatPlatform, normalizeReference, type Platform } from '@ctrd/api-proto/oci';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import type { Clients } from '../../clients.js';
import { toProto } from '../../images/resolve.js';
import { DEFAULT_SNAPSHOTTER, unpackImage } from '../../images/unpack.js';
import { callOptions, withLease } from '../../images/with-lease.js';
import { type FetchResult, fetchImage } from '../../registry/fetch.js';
import {
  checkPlatformFlags,
  makeRegistryClient,
  platformFlags,
  progressOn,
  registryFlags,
  wantedPlatforms,
  withInterrupt,
} from '../../registry/session.js';

/** Images.Create, or on AlreadyExists Images.Update with no mask (the image is replaced), as ctr does. */
export async function createOrUpdateImage(
  clients: Clients,
  name: string,
  target: Descriptor,
  lease: string,
  signal?: AbortSignal,
): Promise<void> {
  const images = clients.get(ImagesService);
  const image = { name, target: toProto(target), labels: {} };
  try {
    await images.create({ image }, callOptions(lease, signal));
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    await images.update({ image }, callOptions(lease, signal));
  }
}

/** The platforms to unpack: each fetched manifest's with --all-platforms, else the ones asked for. */
function unpackPlatforms(result: FetchResult, all: boolean, wanted: Platform[]): Platform[] {
  if (!all) return wanted;
  const seen = new Map<string, Platform>();
  for (const m of result.manifests) {
    if (!m.complete || !m.platform || m.platform.os === 'unknown') continue;
    seen.set(formatPlatform(m.platform), m.platform);
  }
  return seen.size > 0 ? [...seen.values()] : wanted;
}

export default class ImagesPull extends CtrCommand<typeof ImagesPull> {
  static override summary = 'pull an image from a registry and unpack it';
  static override description =
    'Short names are normalized as Docker does: busybox is docker.io/library/busybox:latest. Progress goes to stderr; ' +
    'the image name to stdout. An interrupted pull resumes its partial layers the next time.';
  static override hiddenAliases = aliasesOf('images', ['pull']);
  static override args = {
    ref: Args.string({
      required: true,
      description: 'image reference, e.g. busybox or 127.0.0.1:5000/team/app:1',
    }),
  };
  static override flags = {
    ...registryFlags,
    ...platformFlags,
    snapshotter: Flags.string({
      summary: `snapshotter to unpack into [env: CONTAINERD_SNAPSHOTTER] [default: ${DEFAULT_SNAPSHOTTER}]`,
      helpValue: 'NAME',
    }),
    'no-unpack': Flags.boolean({ summary: 'fetch and create the image, but do not unpack it' }),
    'print-chainid': Flags.boolean({ summary: 'print the chain id of each unpacked platform' }),
  };

  async run(): Promise<void> {
    checkPlatformFlags(this.flags);
    const ref = normalizeReference(this.args.ref);
    const registry = makeRegistryClient(ref, this.flags, this.io.env);
    const wanted = wantedPlatforms(this.flags.platform);
    const all = this.flags['all-platforms'];
    const snapshotter = this.flags.snapshotter || this.io.env.CONTAINERD_SNAPSHOTTER || DEFAULT_SNAPSHOTTER;
    const started = Date.now();
    await withInterrupt(this.interactive, (signal) =>
      withLease(
        this.clients,
        async (lease) => {
          const progress = progressOn(this.io.stderr);
          let result: FetchResult;
          try {
            result = await fetchImage({
              clients: this.clients,
              registry,
              ref,
              lease,
              allPlatforms: all,
              platforms: wanted,
              allMetadata: this.flags['all-metadata'],
              maxConcurrent: this.flags['max-concurrent-downloads'],
              progress,
              signal,
            });
          } finally {
            progress.stop();
          }
          await createOrUpdateImage(this.clients, ref.reference, result.target, lease, signal);
          if (this.flags['no-unpack']) return;
          for (const platform of unpackPlatforms(result, all, wanted)) {
            const unpacked = await unpackImage(
              this.clients,
              { name: ref.reference, target: result.target },
              { snapshotter, platform, signal, lease, progress: (line) => this.io.stderr.write(`${line}\n`) },
            );
            if (this.flags['print-chainid']) {
              this.out(`image chain ID: ${unpacked.chainId} (${formatPlatform(unpacked.resolved.platform)})`);
            }
          }
        },
        { signal },
      ),
    );
    this.io.stderr.write(`done: ${((Date.now() - started) / 1000).toFixed(3)}s\n`);
    this.out(ref.reference);
  }
}
