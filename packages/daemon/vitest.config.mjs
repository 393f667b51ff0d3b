import { testBudgets } from '../../scripts/vitest-budgets.mjs';

export default testBudgets({
  realProcess: [
    'test/snapshots.test.ts', // overlayfs and bind mounts through mount(8)
    'test/content.test.ts', // a tmpfs mount(8) to fill
    'test/diff-apply.test.ts', // tar, thousands of real files
    'test/diff-apply-properties.test.ts', // hundreds of random layers on disk
    'test/json-any-properties.test.ts', // properties that draw inputs for up to 8 s each
    'test/diff-service.test.ts', // cp, mknod, zstd, overlayfs
    'test/event-loop.test.ts', // a daemon on a real socket with 20,000 containers stored
    'test/health.test.ts', // a daemon on a real socket
  ],
});
