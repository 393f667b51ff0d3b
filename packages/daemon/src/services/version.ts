import { readFileSync } from 'node:fs';
import { service, type ServiceRegistration } from '@ctrd/api-proto';
import { VersionService } from '@ctrd/api-proto/version';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export const VERSION: string = pkg.version;
/** Set at release time through CTRD_REVISION; empty in a development build. */
export const REVISION: string = process.env.CTRD_REVISION ?? '';

export function versionService(): ServiceRegistration {
  return service(VersionService, { version: async () => ({ version: VERSION, revision: REVISION }) });
}
