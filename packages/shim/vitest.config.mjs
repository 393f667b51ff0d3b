import { testBudgets } from '../../scripts/vitest-budgets.mjs';

export default testBudgets({
  realProcess: [
    'test/runc-tasks.test.ts', // the task manager on real runc and busybox containers
    'test/reaper.test.ts', // sh and its orphans, reaped by this process as a subreaper
    'test/rootfs.test.ts', // mount(2) and umount
    'test/stdio.test.ts', // mkfifo, a logger binary, real pipes
  ],
});
