import { Code, ConnectError } from '@connectrpc/connect';
import { VersionService } from '@ctrd/api-proto/version';
import { describe, expect, it } from 'vitest';
import { resolveAddress, resolveNamespace, socketPath } from '../src/address.js';
import { hoistGlobalFlags } from '../src/argv.js';
import { endFlagsAtFirstArg } from '../src/base-command.js';
import { parseDuration } from '../src/duration.js';
import { describeError, UsageError } from '../src/errors.js';
import { formatTable } from '../src/table.js';
import { runCtr } from './helpers.js';

describe('global settings', () => {
  it('takes --address, then CTRD_ADDRESS, then CONTAINERD_ADDRESS, then the default', () => {
    const env = { CTRD_ADDRESS: '/a.sock', CONTAINERD_ADDRESS: '/b.sock' };
    expect(resolveAddress('/flag.sock', env)).toEqual({ value: '/flag.sock', source: 'flag' });
    expect(resolveAddress(undefined, env)).toEqual({ value: '/a.sock', source: 'CTRD_ADDRESS' });
    expect(resolveAddress(undefined, { CONTAINERD_ADDRESS: '/b.sock' }).source).toBe('CONTAINERD_ADDRESS');
    expect(resolveAddress(undefined, {})).toEqual({ value: '/run/ctrd/ctrd.sock', source: 'default' });
    expect(resolveNamespace(undefined, { CONTAINERD_NAMESPACE: 'k8s.io' }).value).toBe('k8s.io');
    expect(resolveNamespace(undefined, {}).value).toBe('default');
    expect(socketPath('unix:///run/x.sock')).toBe('/run/x.sock');
  });

  it('parses Go-style durations', () => {
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('2')).toBe(2000);
    expect(() => parseDuration('soon')).toThrow(/invalid duration "soon"/);
  });

  it('ends flags at the first positional argument, like containerd ctr', () => {
    const defs = {
      rootfs: { type: 'option' },
      rm: { type: 'boolean' },
      namespace: { type: 'option', char: 'n' },
    };
    expect(endFlagsAtFirstArg(['--rm', '--rootfs', '/r', 'id', 'sh', '-c', 'x'], defs).argv).toEqual([
      '--rm',
      '--rootfs',
      '/r',
      '--',
      'id',
      'sh',
      '-c',
      'x',
    ]);
    expect(endFlagsAtFirstArg(['-n', 'ns', '--rootfs=/r', 'id'], defs)).toEqual({
      argv: ['-n', 'ns', '--rootfs=/r', '--', 'id'],
      dashDashFirst: false,
    });
    expect(endFlagsAtFirstArg(['--rm', '--', 'sh', '-x'], defs)).toEqual({
      argv: ['--rm', '--', 'sh', '-x'],
      dashDashFirst: true,
    });
  });
});

describe('table printer', () => {
  it('aligns columns with containerd ctr spacing and no trailing blanks', () => {
    const text = formatTable(
      ['CONTAINER', 'IMAGE', 'RUNTIME'],
      [
        ['redis', 'docker.io/library/redis:alpine', 'io.containerd.runc.v2'],
        ['a', '-', 'io.containerd.runc.v2'],
      ],
    );
    expect(text).toBe(
      'CONTAINER    IMAGE                             RUNTIME\n' +
        'redis        docker.io/library/redis:alpine    io.containerd.runc.v2\n' +
        'a            -                                 io.containerd.runc.v2\n',
    );
  });
});

describe('error descriptions', () => {
  it('names the socket and the fix when the dial fails', () => {
    const cause = Object.assign(new Error('connect ENOENT /x.sock'), { code: 'ENOENT', syscall: 'connect' });
    const err = new ConnectError('connect ENOENT /x.sock', Code.Internal, undefined, undefined, cause);
    const { message, exitCode } = describeError(err, {
      address: { value: '/x.sock', source: 'CTRD_ADDRESS' },
    });
    expect(exitCode).toBe(1);
    expect(message).toBe(
      'cannot connect to ctrd at /x.sock (from CTRD_ADDRESS): no socket at that path (is ctrd running?); ' +
        'point ctr at another socket with -a/--address or CTRD_ADDRESS',
    );
  });

  it('passes daemon messages through without the code prefix', () => {
    const err = new ConnectError('container "web" in namespace "default": not found', Code.NotFound);
    expect(describeError(err)).toEqual({
      message: 'container "web" in namespace "default": not found',
      exitCode: 1,
    });
  });

  it('gives usage errors exit 2', () => {
    expect(describeError(new UsageError('bad'))).toEqual({ message: 'bad', exitCode: 2 });
  });
});

describe('ctr version', () => {
  const routes = (router: import('@connectrpc/connect').ConnectRouter) =>
    router.service(VersionService, { version: () => ({ version: '1.2.3', revision: 'abc' }) });

  it('prints client and server versions', async () => {
    const { code, stdout, stderr } = await runCtr(['version'], { routes });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Client:\n {2}Version: {2}0\.1\.0\n {2}Node: {5}v\d+/);
    expect(stdout).toContain('Server:\n  Version:  1.2.3\n  Revision: abc\n');
  });

  it('prints JSON with --json', async () => {
    const { code, stdout } = await runCtr(['version', '--json'], { routes });
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      client: { version: '0.1.0', node: process.version },
      server: { version: '1.2.3', revision: 'abc' },
    });
  });

  it('sends the namespace header from -n, CTRD_NAMESPACE or the default', async () => {
    const seen: string[] = [];
    const spy = (router: import('@connectrpc/connect').ConnectRouter) =>
      router.service(VersionService, {
        version: (_req, ctx) => {
          seen.push(ctx.requestHeader.get('containerd-namespace') ?? '');
          return { version: '1', revision: '' };
        },
      });
    await runCtr(['version'], { routes: spy });
    await runCtr(['version'], { routes: spy, env: { CTRD_NAMESPACE: 'envns' } });
    await runCtr(['version', '-n', 'flagns'], { routes: spy, env: { CTRD_NAMESPACE: 'envns' } });
    expect(seen).toEqual(['default', 'envns', 'flagns']);
  });

  it('traces calls on stderr with --debug', async () => {
    const { code, stderr } = await runCtr(['version', '--debug'], { routes });
    expect(code).toBe(0);
    expect(stderr).toContain(
      'ctr: debug: -> /containerd.services.version.v1.Version/Version (namespace default)',
    );
    expect(stderr).toMatch(/ctr: debug: <- \/containerd\.services\.version\.v1\.Version\/Version ok/);
  });

  it('reports daemon errors as "ctr: <message>" with exit 1', async () => {
    const failing = (router: import('@connectrpc/connect').ConnectRouter) =>
      router.service(VersionService, {
        version: () => {
          throw new ConnectError('version: the daemon is shutting down', Code.Unavailable);
        },
      });
    const { code, stdout, stderr } = await runCtr(['version'], { routes: failing });
    expect({ code, stdout, stderr }).toEqual({
      code: 1,
      stdout: '',
      stderr: 'ctr: version: the daemon is shutting down: unavailable\n',
    });
  });

  it('exits 2 on a usage error', async () => {
    const { code, stderr } = await runCtr(['version', '--timeout', 'soon'], { routes });
    expect(code).toBe(2);
    expect(stderr).toBe(
      'ctr: --timeout: invalid duration "soon": use a number with a unit, e.g. 10s, 500ms, 1m30s\nsee \'ctr version --help\'\n',
    );
    const unknown = await runCtr(['version', '--frob'], { routes });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^ctr: nonexistent flag: --frob\nsee 'ctr version --help'\n$/);
  });
});

describe('global flags before the command', () => {
  const commands = new Set(['containers', 'c', 'c:ls', 'containers:ls', 'run', 'version']);
  const isCommand = (id: string) => commands.has(id);

  it('moves them after the command words, as containerd ctr users write them', () => {
    expect(hoistGlobalFlags(['-n', 'k8s.io', 'c', 'ls', '-q'], isCommand)).toEqual([
      'c',
      'ls',
      '-n',
      'k8s.io',
      '-q',
    ]);
    expect(hoistGlobalFlags(['--address=/x.sock', '--debug', 'run', '--rm', 'id', 'sh'], isCommand)).toEqual([
      'run',
      '--address=/x.sock',
      '--debug',
      '--rm',
      'id',
      'sh',
    ]);
    expect(hoistGlobalFlags(['-a', '/x', 'containers'], isCommand)).toEqual(['containers', '-a', '/x']);
  });

  it('hoists --json and --timeout too, so `ctr --json c ls` is `ctr c ls --json`', () => {
    expect(hoistGlobalFlags(['--json', 'c', 'ls'], isCommand)).toEqual(['c', 'ls', '--json']);
    expect(hoistGlobalFlags(['--timeout', '5s', '-n', 'x', '--json', 'version'], isCommand)).toEqual([
      'version',
      '--timeout',
      '5s',
      '-n',
      'x',
      '--json',
    ]);
  });

  it('leaves other orders alone and shows help for flags without a command', () => {
    expect(hoistGlobalFlags(['c', 'ls', '-n', 'x'], isCommand)).toEqual(['c', 'ls', '-n', 'x']);
    expect(hoistGlobalFlags(['-a', '/x'], isCommand)).toEqual([]);
    expect(hoistGlobalFlags(['-a', '/x', 'frob'], isCommand)).toEqual(['frob', '-a', '/x']);
  });
});
