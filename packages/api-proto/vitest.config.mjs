import { testBudgets } from '../../scripts/vitest-budgets.mjs';

export default testBudgets({
  realProcess: [
    'test/tar.test.ts', // runs tar, zstd and python3 to make and check archives
    'test/grpc-paths.test.ts', // streams tens of MiB through a real HTTP/2 server on a unix socket
  ],
});
