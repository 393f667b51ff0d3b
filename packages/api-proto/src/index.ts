// Public entry of @ctrd/api-proto: the helpers that belong with the contract. Generated schemas
// and service descriptors live in the subpath exports (@ctrd/api-proto/containers, ...).

export type { ClientOptions, UnixTransport, UnixTransportOptions } from './unix-transport.js';
export {
  createClient,
  createUnixTransport,
  MAX_MESSAGE_BYTES,
  MAX_SOCKET_PATH,
  socketPath,
} from './unix-transport.js';
export { addressFromEnv, DEFAULT_ADDRESS, namespaceFromEnv } from './defaults.js';
export { clientErrorInterceptor, serverErrorInterceptor, withErrorClasses } from './error-interceptors.js';
export type { ErrorKind } from './errors.js';
export {
  AlreadyExists,
  Canceled,
  CtrdError,
  classify,
  codeFromKind,
  DeadlineExceeded,
  errorKind,
  FailedPrecondition,
  fromConnectError,
  InvalidArgument,
  isAlreadyExists,
  isCanceled,
  isDeadlineExceeded,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  isNotImplemented,
  isResourceExhausted,
  isUnavailable,
  isUnknown,
  kindFromCode,
  NotFound,
  NotImplemented,
  newError,
  ResourceExhausted,
  toConnectError,
  toCtrdError,
  Unavailable,
  Unknown,
} from './errors.js';
export { envelopeAdaptor, messageAdaptor } from './event-filters.js';
export type { Adaptor, FieldValue, Filter, Operator, Selector } from './filters.js';
export { adaptObject, matchAll, parseFilter, parseFilters } from './filters.js';
export {
  isValidIdentifier,
  MAX_IDENTIFIER_LENGTH,
  MAX_LABEL_SIZE,
  validateIdentifier,
  validateLabels,
} from './identifiers.js';
export type { InMemoryOptions } from './in-memory.js';
export { createInMemoryClient, createInMemoryTransport } from './in-memory.js';
export type { Logger } from './logger.js';
export { silentLogger } from './logger.js';
export type { NamespaceOptions } from './namespace-headers.js';
export {
  DEFAULT_NAMESPACE,
  LEASE_HEADER,
  leaseFromContext,
  leaseFromHeaders,
  NAMESPACE_HEADER,
  namespaceFromContext,
  namespaceFromHeaders,
  namespaceInterceptor,
  withNamespace,
} from './namespace-headers.js';
export { formatGoDuration, parseGoDuration } from './durations.js';
export type { CloseOptions, Server, ServerOptions, ServiceRegistration } from './server.js';
export { createServer, service } from './server.js';
export {
  fromTimestamp,
  GO_ZERO_SECONDS,
  isUnsetTimestamp,
  nowTimestamp,
  timestampFromNanos,
  timestampToNanos,
  toTimestamp,
} from './timestamps.js';
export type { OciTypeUrl } from './typeurl.js';
export {
  anyIs,
  isJsonAny,
  OCI_LINUX_RESOURCES_URL,
  OCI_PROCESS_URL,
  OCI_SPEC_URL,
  OCI_WINDOWS_RESOURCES_URL,
  packAny,
  packJson,
  typeNameFromUrl,
  unpackAnyAs,
  unpackJson,
} from './typeurl.js';
export { typeRegistry, unpackAny } from './type-registry.js';
