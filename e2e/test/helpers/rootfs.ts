// The busybox rootfs/bundle builder of @ctrd/runc-client's tests, for e2e tests that run containers:
// one builder, so every suite's bundles match the runc on this machine the same way.
export {
  alive,
  BUSYBOX,
  type BundleOptions,
  buildBusyboxRootfs,
  editBundle,
  listIds,
  makeSandbox,
  mountsUnder,
  type OciSpec,
  RUNC,
  type Sandbox,
  writeBusyboxBundle,
} from '../../../packages/runc-client/test/helpers/rootfs.js';
