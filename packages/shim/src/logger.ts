// The shim's pieces take a pino-compatible logger and are silent without one.
export type { Logger } from '@ctrd/api-proto';
export { silentLogger } from '@ctrd/api-proto';
