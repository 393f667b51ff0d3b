import { readFileSync } from 'node:fs';
import { service, type ServiceRegistration } from '@ctrd/api-proto';
import { VersionService } from '@ctrd/api-proto/version';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

// Defined by scripts/bundle-bin.mjs in the bundled `ctrd` bin; absent from tsc's output.
declare const __CTRD_REVISION__: string | undefined;

export const VERSION: string = pkg.version;
/**
 * What Version answers as revision: in the bundled bin, the git commit it was built from (".m"
 * when the tree had changes; see scripts/bundle-bin.mjs). Unbundled (the library entry), the
 * CTRD_REVISION environment variable, else the package version: never empty, since dockerd prints
 * it as the containerd version's commit.
 */
export const REVISION: string =
  typeof __CTRD_REVISION__ === 'string' && __CTRD_REVISION__ !== ''
    ? __CTRD_REVISION__
    : process.env.CTRD_REVISION || VERSION;

export function versionService(): ServiceRegistration {
  return service(VersionService, { version: async () => ({ version: VERSION, revision: REVISION }) });
}
