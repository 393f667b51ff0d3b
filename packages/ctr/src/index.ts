// Public entry of @ctrd/ctr: the pieces other tools reuse (the command base, the client factory, the
// table printer). The CLI itself is `bin/run.js`.
export {
  DEFAULT_ADDRESS,
  DEFAULT_NAMESPACE,
  resolveAddress,
  resolveNamespace,
  socketPath,
} from './address.js';
export type { Resolved, Source } from './address.js';
export { CtrCommand, endFlagsAtFirstArg } from './base-command.js';
export type { CtrArgs, CtrFlags } from './base-command.js';
export { Clients } from './clients.js';
export type { ClientsOptions } from './clients.js';
export { parseDuration } from './duration.js';
export { describeError, UsageError } from './errors.js';
export type { DescribedError, ErrorContext } from './errors.js';
export type { CtrIo } from './io.js';
export { formatTable } from './table.js';
export type { TableOptions } from './table.js';
export { unixTransport, withCallDefaults } from './transport.js';
export type { CallDefaults } from './transport.js';
export { ProcessSession } from './attach.js';
export type { SessionOptions, StdioPaths } from './attach.js';
export { DEFAULT_FIFO_DIR, FifoSet } from './fifo-io.js';
export type { FifoOptions, FifoPaths } from './fifo-io.js';
export { buildSpec, defaultSpec } from './oci-spec.js';
export type { OciMount, OciProcess, OciSpec, SpecOptions } from './oci-spec.js';
