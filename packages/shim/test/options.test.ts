import { describe, expect, it } from 'vitest';
import { parseCommandLine, toArgv, UsageError } from '../src/options.js';
import { shimSocketPath } from '../src/socket-address.js';

describe('command line', () => {
  it('parses start with defaults and round-trips through toArgv', () => {
    const { command, options } = parseCommandLine([
      'start',
      '--namespace',
      'default',
      '--id',
      'g1',
      '--state-dir',
      '/tmp/s',
      '--address',
      '/tmp/d.sock',
      '--oom-notify',
    ]);
    expect(command).toBe('start');
    expect(options).toMatchObject({
      runcBinary: 'runc',
      runcRoot: '/run/ctrd/runc/default',
      oomNotify: true,
    });
    expect(parseCommandLine(toArgv('serve', options))).toEqual({ command: 'serve', options });
  });

  it('answers --version and --help', () => {
    expect(parseCommandLine(['--version']).command).toBe('version');
    expect(parseCommandLine(['-h']).command).toBe('help');
  });

  it('rejects bad ids, relative paths and missing flags as usage errors', () => {
    expect(() => parseCommandLine(['start', '--id', '../x', '--address', '/d'])).toThrow(UsageError);
    expect(() => parseCommandLine(['start', '--id', 'a', '--address', '/d', '--state-dir', 'rel'])).toThrow(
      /must be an absolute path/,
    );
    expect(() => parseCommandLine(['start', '--id', 'a'])).toThrow(/--address/);
    expect(() => parseCommandLine(['delete', '--id', 'a'])).toThrow(/--bundle/);
    expect(() => parseCommandLine(['bogus'])).toThrow(/unknown command/);
    expect(() => parseCommandLine(['start', '--nope'])).toThrow(UsageError);
    expect(() => parseCommandLine(['start', '--id', 'a', '--address', '/d', '--log-level', 'loud'])).toThrow(
      /--log-level "loud": expected one of/,
    );
  });

  it('names the socket by a hash under <state>/s, short enough for sun_path', () => {
    const p = shimSocketPath('/run/ctrd', 'default', 'x'.repeat(76), '/run/ctrd/ctrd.sock');
    expect(p).toMatch(/^\/run\/ctrd\/s\/[0-9a-f]{64}$/);
    expect(p.length).toBeLessThan(108);
    expect(shimSocketPath('/run/ctrd', 'other', 'x', '/a')).not.toBe(
      shimSocketPath('/run/ctrd', 'default', 'x', '/a'),
    );
  });
});
