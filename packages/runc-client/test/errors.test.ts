import { describe, expect, it } from 'vitest';
import { parseLogLine, RuncError, RuncValidationError, runcMessageFrom } from '../src/errors.js';

describe('runc log parsing', () => {
  it('reads JSON log lines', () => {
    expect(
      parseLogLine('{"level":"error","msg":"container does not exist","time":"2024-01-01T00:00:00Z"}'),
    ).toEqual({
      level: 'error',
      msg: 'container does not exist',
    });
    expect(parseLogLine('{"nolevel":1}')).toBeUndefined();
    expect(parseLogLine('{broken')).toBeUndefined();
  });
  it('reads logfmt (text) lines with quoted messages', () => {
    expect(
      parseLogLine('time="2024-01-01T00:00:00Z" level=error msg="exec failed: \\"sh\\" not found"'),
    ).toEqual({
      level: 'error',
      msg: 'exec failed: "sh" not found',
    });
    expect(parseLogLine('just text')).toBeUndefined();
  });
  it('picks the last error, ignoring warnings and debug lines', () => {
    const out = [
      '{"level":"debug","msg":"nsexec started"}',
      '{"level":"error","msg":"first"}',
      '{"level":"warning","msg":"cgroup warning"}',
      '{"level":"error","msg":"runc run failed: unable to start container process: exec: \\"nope\\": executable file not found in $PATH"}',
      '',
    ].join('\n');
    expect(runcMessageFrom(out)).toBe(
      'runc run failed: unable to start container process: exec: "nope": executable file not found in $PATH',
    );
  });
  it('falls back to the last plain stderr line', () => {
    expect(runcMessageFrom('Incorrect Usage.\n\nflag provided but not defined: -bogus\n')).toBe(
      'flag provided but not defined: -bogus',
    );
    expect(runcMessageFrom('')).toBe('');
  });
});

describe('error classes', () => {
  it('RuncError carries argv, exit code and runc message', () => {
    const e = new RuncError('start c1', {
      argv: ['runc', 'start', 'c1'],
      exitCode: 1,
      runcMessage: 'container does not exist',
    });
    expect(e.message).toBe('runc start c1: container does not exist');
    expect(e.exitCode).toBe(1);
    expect(e.argv).toEqual(['runc', 'start', 'c1']);
    expect(e.isNotFound()).toBe(true);
    expect(e.isAlreadyExists()).toBe(false);
    expect(e).toBeInstanceOf(RuncError);
    expect(e).toBeInstanceOf(Error);
  });
  it('without a message, says how runc ended', () => {
    expect(new RuncError('kill c1', { argv: [], exitCode: 2, runcMessage: '' }).message).toBe(
      'runc kill c1: exit status 2',
    );
    expect(
      new RuncError('kill c1', { argv: [], exitCode: null, signal: 'SIGKILL', runcMessage: '' }).message,
    ).toBe('runc kill c1: killed by SIGKILL');
  });
  it('instanceof works across copies of the class (brand, not prototype)', () => {
    const foreign = { message: 'x' } as Record<symbol, unknown>;
    Object.defineProperty(foreign, Symbol.for('@ctrd/runc-client/RuncError'), { value: true });
    expect(foreign instanceof RuncError).toBe(true);
    expect(new Error('x') instanceof RuncError).toBe(false);
    expect(new RuncValidationError('x') instanceof RuncError).toBe(false);
    expect(new RuncValidationError('x') instanceof RuncValidationError).toBe(true);
  });
});
