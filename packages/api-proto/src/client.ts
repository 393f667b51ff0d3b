// @ctrd/api-proto/client: what a client program needs and nothing it does not. The root entry also
// carries the server, the in-memory transport, filters and the registry of every event and metrics
// schema; a short-lived CLI that loaded all of that on each start would spend most of its run time
// loading code. Everything here is also exported from the root entry.

export type { ClientOptions, UnixTransport, UnixTransportOptions } from './unix-transport.js';
export {
  createClient,
  createUnixTransport,
  MAX_MESSAGE_BYTES,
  MAX_SOCKET_PATH,
  socketPath,
} from './unix-transport.js';
export { addressFromEnv, DEFAULT_ADDRESS, namespaceFromEnv } from './defaults.js';
export { formatGoDuration, parseGoDuration } from './durations.js';
export type { ErrorKind } from './errors.js';
export {
  AlreadyExists,
  Canceled,
  CtrdError,
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
  NotFound,
  NotImplemented,
  newError,
  ResourceExhausted,
  toCtrdError,
  Unavailable,
  Unknown,
} from './errors.js';
export {
  isValidIdentifier,
  MAX_IDENTIFIER_LENGTH,
  MAX_LABEL_SIZE,
  validateIdentifier,
  validateLabels,
  validateLeaseId,
} from './identifiers.js';
export {
  DEFAULT_NAMESPACE,
  LEASE_HEADER,
  NAMESPACE_HEADER,
  TTRPC_NAMESPACE_HEADER,
} from './namespace-headers.js';
export {
  fromTimestamp,
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
