// The mount(8) command line of a snapshot Mount lives in @ctrd/api-proto/mount, shared with the shim
// (which mounts task rootfs the same way).
export type { MountCommand, MountLike } from '@ctrd/api-proto/mount';
export { compactLowerdir, mountCommand, mountDataLength, PAGE_SIZE } from '@ctrd/api-proto/mount';
