import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine, UsageError } from '../src/cli.js';
import { configToToml, defaultConfig, parseConfigToml } from '../src/config.js';
import { formatDuration, parseDuration } from '../src/duration.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctrd-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('durations', () => {
  it('reads Go durations', () => {
    expect(parseDuration('1m0s')).toBe(60_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('0')).toBe(0);
  });
  it('rejects nonsense, naming the setting', () => {
    expect(() => parseDuration('10', '--metrics-interval')).toThrow(
      /--metrics-interval: invalid duration "10"/,
    );
    expect(() => parseDuration('1x')).toThrow(/invalid duration/);
    expect(() => parseDuration('')).toThrow(/empty duration/);
  });
  it('writes them like Go', () => {
    expect(formatDuration(60_000)).toBe('1m0s');
    expect(formatDuration(500)).toBe('500ms');
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(3_661_000)).toBe('1h1m1s');
  });
});

describe('command line', () => {
  const noConfig = ['--config', '/dev/null'];
  it('has the seed defaults', async () => {
    const cmd = await parseCommandLine(noConfig);
    expect(cmd).toEqual({ kind: 'run', config: { ...defaultConfig } });
    expect(defaultConfig.stateDir).toBe('/run/ctrd');
    expect(defaultConfig.listen).toBe('/run/ctrd/ctrd.sock');
    expect(defaultConfig.concurrency).toBe(10);
    expect(defaultConfig.metricsInterval).toBe(60_000);
  });
  it('takes every flag, short ones too', async () => {
    const cmd = await parseCommandLine([
      ...noConfig,
      '--id=x',
      '--debug',
      '--state-dir',
      '/s',
      '-c',
      '3',
      '--metrics-interval',
      '0',
      '-l',
      '/s/a.sock',
      '--oom-notify',
      '--graphite-address',
      'g:2003',
      '--root',
      '/r',
      '--metrics-address',
      ':9090',
    ]);
    expect(cmd.kind === 'run' && cmd.config).toMatchObject({
      id: 'x',
      debug: true,
      logLevel: 'debug',
      stateDir: '/s',
      concurrency: 3,
      metricsInterval: 0,
      listen: '/s/a.sock',
      oomNotify: true,
      graphiteAddress: 'g:2003',
      root: '/r',
      metricsAddress: ':9090',
    });
  });
  it('rejects unknown flags and bad values as usage errors naming the flag', async () => {
    await expect(parseCommandLine(['--nope'])).rejects.toBeInstanceOf(UsageError);
    await expect(parseCommandLine([...noConfig, '-c', 'many'])).rejects.toThrow(/--concurrency/);
    await expect(parseCommandLine([...noConfig, '--metrics-interval', '5'])).rejects.toThrow(
      /--metrics-interval/,
    );
    await expect(parseCommandLine([...noConfig, '--log-level', 'loud'])).rejects.toThrow(/--log-level/);
    await expect(parseCommandLine(['frobnicate'])).rejects.toThrow(/unknown command/);
  });
  it('recognises help, version and config default', async () => {
    expect(await parseCommandLine(['--help'])).toEqual({ kind: 'help' });
    expect(await parseCommandLine(['-v'])).toEqual({ kind: 'version' });
    expect(await parseCommandLine(['config', 'default'])).toEqual({ kind: 'config-default' });
  });
  it('reads the config file, and flags win over it', async () => {
    const path = join(dir, 'c.toml');
    await writeFile(
      path,
      'root = "/from-file"\nconcurrency = 4\nmetrics_interval = "30s"\nsocket_group = "adm"\n',
    );
    const cmd = await parseCommandLine(['--config', path, '--root', '/from-flag']);
    expect(cmd.kind === 'run' && cmd.config).toMatchObject({
      root: '/from-flag',
      concurrency: 4,
      metricsInterval: 30_000,
      socketGroup: 'adm',
    });
  });
  it('a missing explicit config is an error', async () => {
    await expect(parseCommandLine(['--config', join(dir, 'absent.toml')])).rejects.toThrow(/cannot read/);
  });
  it('rejects unknown keys and wrong types in the file', () => {
    expect(() => parseConfigToml('roots = "/x"', 'f.toml')).toThrow(/unknown key "roots"/);
    expect(() => parseConfigToml('concurrency = "lots"', 'f.toml')).toThrow(
      /concurrency: must be a whole number/,
    );
    expect(() => parseConfigToml('root = ', 'f.toml')).toThrow(/config f.toml/);
  });
  it('config default round-trips through the parser', () => {
    const text = configToToml({ ...defaultConfig });
    expect(text).toContain('metrics_interval = "1m0s"');
    expect(parseConfigToml(text, 'default')).toEqual({ ...defaultConfig });
  });
});
