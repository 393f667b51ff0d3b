import { testBudgets } from '../../scripts/vitest-budgets.mjs';

export default testBudgets({
  realProcess: [
    'test/cli.test.ts', // the built ctr binary, as a child process
    'test/registry-client.test.ts', // openssl makes a certificate for an https registry
  ],
});
