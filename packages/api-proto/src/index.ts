// Public entry of @ctrd/api-proto: the helpers that belong with the contract. Generated schemas
// and service descriptors live in the subpath exports (@ctrd/api-proto/containers, ...).

// Everything a client needs (also the light entry @ctrd/api-proto/client), then the rest.
export * from './client.js';

export { clientErrorInterceptor, serverErrorInterceptor, withErrorClasses } from './error-interceptors.js';

export { classify, codeFromKind, kindFromCode, toConnectError } from './errors.js';
export { envelopeAdaptor, messageAdaptor } from './event-filters.js';
export type { Adaptor, FieldValue, Filter, Operator, Selector } from './filters.js';
export {
  adaptObject,
  MAX_FILTERS_LENGTH,
  matchAll,
  matchAllSliced,
  parseFilter,
  parseFilters,
} from './filters.js';
export type { Regexp } from './regexp.js';
export { compileRegexp, MAX_REGEXP_LENGTH, MAX_REGEXP_PROGRAM } from './regexp.js';
export type { SliceOptions } from './time-slice.js';
export { filterInSlices, mapInSlices, SLICE_MS, TimeSlice } from './time-slice.js';

export type { InMemoryOptions } from './in-memory.js';
export { createInMemoryClient, createInMemoryTransport } from './in-memory.js';
export type { Logger } from './logger.js';
export { silentLogger } from './logger.js';
export type { NamespaceOptions } from './namespace-headers.js';
export {
  leaseFromContext,
  leaseFromHeaders,
  namespaceFromContext,
  namespaceFromHeaders,
  namespaceInterceptor,
  withNamespace,
} from './namespace-headers.js';

export type { CloseOptions, Server, ServerOptions, ServiceRegistration } from './server.js';
export { createServer, service } from './server.js';
export { GO_ZERO_SECONDS } from './timestamps.js';

export { typeRegistry, unpackAny } from './type-registry.js';
