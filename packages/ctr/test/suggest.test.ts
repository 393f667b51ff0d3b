import { describe, expect, it } from 'vitest';
import { closestCommand, commandNames, editDistance } from '../src/suggest.js';

describe('did you mean', () => {
  it('counts edits, a swap of neighbours as one', () => {
    expect(editDistance('ls', 'ls')).toBe(0);
    expect(editDistance('lsit', 'list')).toBe(1);
    expect(editDistance('contaners', 'containers')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
  });

  const names = commandNames(
    [
      { id: 'containers', hiddenAliases: ['c'] },
      { id: 'containers:ls', hiddenAliases: ['c:ls', 'c:list', 'containers:list'] },
      { id: 'version' },
      { id: 'run' },
      { id: 'secret', hidden: true },
    ],
    [{ name: 'images' }, { name: 'i', hidden: true }],
  );

  it('suggests the command nearest to what was typed, preferring the one that covers more words', () => {
    expect(closestCommand(['contaners', 'ls'], names)).toBe('containers ls');
    expect(closestCommand(['containers', 'lss', '-q'], names)).toBe('containers ls');
    expect(closestCommand(['c', 'lst'], names)).toBe('containers ls');
    expect(closestCommand(['verison'], names)).toBe('version');
    expect(closestCommand(['imgaes'], names)).toBe('images');
  });

  it('suggests nothing for words that are no typo of a command, or for hidden ones', () => {
    expect(closestCommand(['frobnicate'], names)).toBeUndefined();
    expect(closestCommand(['rx'], names)).toBeUndefined();
    expect(closestCommand(['secrte'], names)).toBeUndefined();
    expect(closestCommand([], names)).toBeUndefined();
  });
});
