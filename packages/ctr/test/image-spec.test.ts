import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isInvalidArgument, isNotFound, isResourceExhausted } from '@ctrd/api-proto';
import type { ImageConfig } from '@ctrd/api-proto/oci';
import { afterAll, describe, expect, it } from 'vitest';
import {
  imageLabels,
  imageProcess,
  MAX_ID_FILE_BYTES,
  resolveUserInRoot,
  userIsNumeric,
  validateCwd,
} from '../src/images/image-spec.js';
import { readFileInRoot, resolveInRoot } from '../src/images/temp-mount.js';

const dir = mkdtempSync(join(tmpdir(), 'ctr-image-spec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (run: ImageConfig['config']): ImageConfig => ({
  architecture: 'amd64',
  os: 'linux',
  rootfs: { type: 'layers', diff_ids: [] },
  config: run,
});

async function caught(p: Promise<unknown> | (() => unknown)): Promise<Error> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

describe('imageProcess', () => {
  const cfg = config({
    Entrypoint: ['/entry'],
    Cmd: ['serve', '--port', '80'],
    Env: ['PATH=/opt/bin', 'MODE=prod'],
    WorkingDir: '/srv/app',
    User: 'www',
    StopSignal: 'SIGQUIT',
  });

  it('runs Entrypoint + Cmd in WorkingDir with the image env and user', () => {
    expect(imageProcess(cfg, {}, 'img')).toEqual({
      args: ['/entry', 'serve', '--port', '80'],
      env: ['PATH=/opt/bin', 'MODE=prod'],
      cwd: '/srv/app',
      user: 'www',
    });
  });

  it('a given command replaces Cmd only; user env overrides by key; --cwd and --user win', () => {
    const p = imageProcess(
      cfg,
      { args: ['sh'], env: ['MODE=dev', 'X=1'], cwd: '/tmp', user: '1000:1000' },
      'img',
    );
    expect(p).toEqual({
      args: ['/entry', 'sh'],
      env: ['PATH=/opt/bin', 'MODE=dev', 'X=1'],
      cwd: '/tmp',
      user: '1000:1000',
    });
  });

  it('gives every container its own arrays (CVE-2021-21334)', () => {
    const a = imageProcess(cfg, { env: ['A=1'] }, 'img');
    const b = imageProcess(cfg, { env: ['B=2'] }, 'img');
    a.env.push('MUTATED=1');
    a.args.push('x');
    expect(b.env).toEqual(['PATH=/opt/bin', 'MODE=prod', 'B=2']);
    expect(cfg.config?.Env).toEqual(['PATH=/opt/bin', 'MODE=prod']);
    expect(cfg.config?.Entrypoint).toEqual(['/entry']);
  });

  it('defaults PATH and / without env or WorkingDir; no command at all is an error', async () => {
    expect(imageProcess(config({ Cmd: ['sh'] }), {}, 'img')).toMatchObject({
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      user: '',
    });
    const e = await caught(() => imageProcess(config({}), {}, 'x.io/empty:1'));
    expect(isInvalidArgument(e)).toBe(true);
    expect(e.message).toContain('image "x.io/empty:1" has no command');
  });

  it('labels the stop signal', () => {
    expect(imageLabels(cfg)).toEqual({ 'io.containerd.image.config.stop-signal': 'SIGQUIT' });
    expect(imageLabels(config({}))).toEqual({});
  });
});

describe('validateCwd', () => {
  it('normalizes and keeps .. inside the root', () => {
    expect(validateCwd('/a/../../b/')).toBe('/b');
    expect(validateCwd('/../..')).toBe('/');
  });
  it('rejects relative paths and /proc fd directories', async () => {
    for (const bad of ['rel/dir', '', '/proc/self/fd/7', '/proc/1/fd', '/proc/thread-self/fd/3', '/x\0y']) {
      expect(isInvalidArgument(await caught(() => validateCwd(bad))), bad).toBe(true);
    }
    expect(validateCwd('/proc/self')).toBe('/proc/self');
  });
});

describe('resolveUserInRoot', () => {
  const root = join(dir, 'root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(
    join(root, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\nbig:x:4294967296:1::/:/bin/sh\n',
  );
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nwww:x:33:\nadm:x:4:www,other\nstaff:x:50:www\n');

  it('resolves names, numeric ids and groups; the primary gid is always in additionalGids', async () => {
    expect(await resolveUserInRoot('www', root)).toEqual({ uid: 33, gid: 33, additionalGids: [4, 33, 50] });
    expect(await resolveUserInRoot('33', root)).toEqual({ uid: 33, gid: 33, additionalGids: [4, 33, 50] });
    expect(await resolveUserInRoot('www:adm', root)).toEqual({ uid: 33, gid: 4, additionalGids: [4, 50] });
    expect(await resolveUserInRoot('', root)).toEqual({ uid: 0, gid: 0, additionalGids: [0] });
    expect(await resolveUserInRoot('1000:1000', undefined)).toEqual({
      uid: 1000,
      gid: 1000,
      additionalGids: [1000],
    });
    expect(await resolveUserInRoot('1234', root)).toEqual({ uid: 1234, gid: 0, additionalGids: [0] });
  });

  it('rejects unknown names and ids out of range (CVE-2024-40635)', async () => {
    expect(isNotFound(await caught(resolveUserInRoot('nobody', root)))).toBe(true);
    expect(isNotFound(await caught(resolveUserInRoot('www:wheel', root)))).toBe(true);
    expect(isNotFound(await caught(resolveUserInRoot('big', root)))).toBe(true);
    for (const bad of ['2147483648', '4294967296', '0:2147483648', '99999999999']) {
      expect(isInvalidArgument(await caught(resolveUserInRoot(bad, root))), bad).toBe(true);
    }
    expect(userIsNumeric('1:2')).toBe(true);
    expect(userIsNumeric('1')).toBe(false);
    expect(userIsNumeric('www:1')).toBe(false);
  });

  it('reads /etc/passwd through symlinks only inside the root', async () => {
    const evil = join(dir, 'evil');
    mkdirSync(join(evil, 'etc'), { recursive: true });
    mkdirSync(join(evil, 'real'));
    writeFileSync(join(evil, 'real/passwd'), 'inside:x:7:7::/:/bin/sh\n');
    // An absolute link must resolve inside the image root, never on the host's /real/passwd or /etc/passwd.
    symlinkSync('/real/passwd', join(evil, 'etc/passwd'));
    expect(await resolveInRoot(evil, '/etc/passwd')).toBe(join(evil, 'real/passwd'));
    expect(await resolveUserInRoot('inside', evil)).toMatchObject({ uid: 7, gid: 7 });
    symlinkSync('../../../../etc/shadow', join(evil, 'etc/group'));
    expect(await resolveInRoot(evil, '/etc/group')).toBe(join(evil, 'etc/shadow'));
    expect(await readFileInRoot(evil, '/etc/group', 100)).toBeUndefined();
  });

  it('refuses an /etc/group larger than the cap without reading it (reliability 41)', async () => {
    const huge = join(dir, 'huge');
    mkdirSync(join(huge, 'etc'), { recursive: true });
    writeFileSync(join(huge, 'etc/passwd'), 'u:x:5:5::/:/bin/sh\n');
    writeFileSync(join(huge, 'etc/group'), '');
    truncateSync(join(huge, 'etc/group'), MAX_ID_FILE_BYTES + 1);
    const e = await caught(resolveUserInRoot('u', huge));
    expect(isResourceExhausted(e)).toBe(true);
    expect(e.message).toContain('image /etc/group');
  });
});
