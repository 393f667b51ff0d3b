import { testBudgets } from '../../scripts/vitest-budgets.mjs';

export default testBudgets({
  realProcess: [
    'test/real-runc.test.ts', // real runc and busybox containers
    'test/subreaper.test.ts', // real runc, sh
    'test/runc-fake.test.ts', // a fake runc script, run as a child process
    'test/spawner.test.ts', // sh through both spawners
  ],
});
