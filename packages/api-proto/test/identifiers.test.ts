import { describe, expect, it } from 'vitest';
import { InvalidArgument } from '../src/errors.js';
import {
  isValidIdentifier,
  MAX_IDENTIFIER_LENGTH,
  validateIdentifier,
  validateLabels,
} from '../src/identifiers.js';

describe('identifiers', () => {
  it('accepts containerd-valid ids', () => {
    for (const id of ['a', 'default', 'k8s.io', 'foo_bar-baz.1', 'A9', 'x'.repeat(MAX_IDENTIFIER_LENGTH)]) {
      expect(isValidIdentifier(id), id).toBe(true);
      expect(() => validateIdentifier(id)).not.toThrow();
    }
  });

  it('rejects invalid ids with InvalidArgument naming the object', () => {
    for (const id of [
      '',
      '-a',
      'a-',
      'a..b',
      'a/b',
      '../x',
      'a b',
      'ä',
      '.',
      'a__b',
      'x'.repeat(77),
      'a\u0000',
    ]) {
      expect(isValidIdentifier(id), id).toBe(false);
      expect(() => validateIdentifier(id, 'container')).toThrow(InvalidArgument);
    }
    expect(() => validateIdentifier('a/b', 'container')).toThrow(/^container "a\/b": identifier must be/);
    expect(() => validateIdentifier('', 'namespace')).toThrow('namespace: identifier must not be empty');
    expect(() => validateIdentifier('y'.repeat(80), 'task')).toThrow(
      /80 characters, longer than the maximum of 76/,
    );
  });

  it('limits len(key)+len(value) to 4096 bytes', () => {
    expect(() => validateLabels({ k: 'v'.repeat(4095) })).not.toThrow();
    expect(() => validateLabels({ k: 'v'.repeat(4096) }, 'container "web"')).toThrow(InvalidArgument);
    expect(() => validateLabels({ k: 'é'.repeat(2048) })).toThrow(/4097 bytes/);
    expect(() => validateLabels({ '': 'x' })).toThrow(InvalidArgument);
    expect(() => validateLabels(undefined)).not.toThrow();
  });
});
