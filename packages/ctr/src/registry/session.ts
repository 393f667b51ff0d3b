import { Flags } from '@oclif/core';
import { InvalidArgument } from '@ctrd/api-proto/client';
import { defaultPlatform, type Platform, parsePlatform, type Reference } from '@ctrd/api-proto/oci';
import { parseUserFlag } from './auth.js';
import { RegistryClient } from './client.js';
import { Progress } from './progress.js';

// What pull, push and content fetch share: the registry flags (as stock ctr names them), the
// client they build, Ctrl-C as an AbortSignal, and the progress board on stderr.

export const registryFlags = {
  user: Flags.string({
    char: 'u',
    summary: 'registry credentials USER[:PASSWORD]; without the password, CTRD_REGISTRY_PASSWORD is used',
    helpValue: 'USER[:PASSWORD]',
  }),
  'plain-http': Flags.boolean({ summary: 'talk to the registry over plain http instead of https' }),
  'skip-verify': Flags.boolean({
    char: 'k',
    summary: "accept the registry's TLS certificate without verifying it (insecure)",
  }),
};

export const platformFlags = {
  platform: Flags.string({
    summary: 'fetch this platform, e.g. linux/arm64 (repeatable; default: this host)',
    multiple: true,
    multipleNonGreedy: true,
    helpValue: 'OS/ARCH[/VARIANT]',
  }),
  'all-platforms': Flags.boolean({ summary: 'fetch every platform of the image' }),
  'all-metadata': Flags.boolean({ summary: 'also fetch the manifests and configs of the other platforms' }),
  'max-concurrent-downloads': Flags.integer({
    summary: 'blobs downloaded at the same time',
    default: 3,
    min: 1,
    max: 64,
  }),
};

export interface RegistryFlagValues {
  user?: string | undefined;
  'plain-http'?: boolean;
  'skip-verify'?: boolean;
}

export function makeRegistryClient(
  ref: Reference,
  flags: RegistryFlagValues,
  env: Record<string, string | undefined>,
): RegistryClient {
  if (flags['skip-verify']) {
    // Node's fetch takes no per-request TLS options; this process talks TLS only to the registry.
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  }
  return new RegistryClient({
    domain: ref.domain,
    plainHttp: flags['plain-http'] ?? false,
    credentials: flags.user !== undefined ? parseUserFlag(flags.user, env) : undefined,
  });
}

export function wantedPlatforms(specs: readonly string[] | undefined): Platform[] {
  if (!specs || specs.length === 0) return [defaultPlatform()];
  return specs.map((s) => parsePlatform(s));
}

export function checkPlatformFlags(flags: {
  platform?: string[] | undefined;
  'all-platforms'?: boolean;
}): void {
  if (flags['all-platforms'] && (flags.platform?.length ?? 0) > 0) {
    throw new InvalidArgument('--platform and --all-platforms: give one or the other');
  }
}

/** An AbortSignal that fires on SIGINT/SIGTERM while `fn` runs (real CLI only). */
export async function withInterrupt<T>(
  interactive: boolean,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  const stop = () => abort.abort(new Error('interrupted'));
  if (interactive) {
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
  try {
    return await fn(abort.signal);
  } finally {
    if (interactive) {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  }
}

/** The board on stderr, redrawn in place when stderr is a terminal. */
export function progressOn(stderr: NodeJS.WritableStream & { isTTY?: boolean }): Progress {
  return new Progress(stderr, { tty: stderr.isTTY === true }).start();
}
