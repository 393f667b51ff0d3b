import { testBudgets } from '../../scripts/vitest-budgets.mjs';

export default testBudgets({
  realProcess: [
    'test/tar.test.ts', // runs tar, zstd and python3 to make and check archives
    'test/grpc-paths.test.ts', // streams tens of MiB through a real HTTP/2 server on a unix socket
    'test/tar-properties.test.ts', // properties that draw inputs for up to 8 s each
    'test/typeurl-properties.test.ts', // the same
    'test/decompress-properties.test.ts', // spawns zstd for its samples
    'test/decompress-bomb.test.ts', // 1 GiB through gunzip
  ],
});
