import { describe, expect, it } from 'vitest';
import { validateProcess } from '../src/process-spec.js';

describe('process spec checks', () => {
  it('accepts an ordinary process', () => {
    expect(() =>
      validateProcess(
        { args: ['sh'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [10] } },
        'exec e',
        true,
      ),
    ).not.toThrow();
    expect(() => validateProcess(undefined, 'task t', false)).not.toThrow();
  });

  it('rejects a relative or /proc/*/fd cwd (CVE-2024-21626)', () => {
    expect(() => validateProcess({ args: ['sh'], cwd: 'tmp' }, 'exec e', true)).toThrow(
      /cwd "tmp" must be an absolute path/,
    );
    for (const cwd of ['/proc/self/fd/7', '/proc/1/fd', '/proc/thread-self/fd/3/x']) {
      expect(() => validateProcess({ args: ['sh'], cwd }, 'exec e', true)).toThrow(/outside \/proc\/\*\/fd/);
    }
  });

  it('rejects ids that would wrap or are not integers', () => {
    for (const uid of [-1, 2 ** 32, 2 ** 53 + 2, 1.5, '0']) {
      expect(() => validateProcess({ args: ['sh'], user: { uid, gid: 0 } }, 'exec e', true)).toThrow(
        /user.uid/,
      );
    }
    expect(() =>
      validateProcess({ args: ['sh'], user: { uid: 0, gid: 0, additionalGids: [-1] } }, 'x', true),
    ).toThrow(/additionalGids/);
  });

  it('requires args for an exec', () => {
    expect(() => validateProcess({ cwd: '/' }, 'exec e', true)).toThrow(/args must be a non-empty list/);
    expect(() => validateProcess({ args: [] }, 'exec e', true)).toThrow(/args/);
  });
});
