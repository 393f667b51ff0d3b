import { testBudgets } from '../../scripts/vitest-budgets.mjs';

export default testBudgets({
  realProcess: [
    'test/snapshots.test.ts', // overlayfs and bind mounts through mount(8)
    'test/content.test.ts', // a tmpfs mount(8) to fill
    'test/diff-apply.test.ts', // tar
    'test/diff-service.test.ts', // cp, python3, mknod, zstd, overlayfs
  ],
});
