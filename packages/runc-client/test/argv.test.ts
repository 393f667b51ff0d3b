import { describe, expect, it } from 'vitest';
import * as argv from '../src/argv.js';
import { RuncValidationError } from '../src/errors.js';

describe('global flags', () => {
  it('defaults to json logs only', () => {
    expect(argv.globalArgs({})).toEqual(['--log-format', 'json']);
  });
  it('emits every global option in runc order', () => {
    expect(
      argv.globalArgs({
        root: '/r',
        log: '/l.json',
        logFormat: 'text',
        systemdCgroup: true,
        rootless: 'auto',
        debug: true,
        criu: '/usr/sbin/criu',
      }),
    ).toEqual([
      '--root',
      '/r',
      '--log',
      '/l.json',
      '--log-format',
      'text',
      '--systemd-cgroup',
      '--rootless',
      'auto',
      '--debug',
      '--criu',
      '/usr/sbin/criu',
    ]);
    expect(argv.globalArgs({ rootless: false })).toContain('false');
  });
});

describe('create and run', () => {
  it('create with every option', () => {
    expect(
      argv.createArgs('c1', '/b', {
        consoleSocket: { path: '/s.sock' },
        pidFile: '/p',
        noPivot: true,
        noNewKeyring: true,
        preserveFds: 2,
      }),
    ).toEqual([
      'create',
      '--bundle',
      '/b',
      '--console-socket',
      '/s.sock',
      '--pid-file',
      '/p',
      '--no-pivot',
      '--no-new-keyring',
      '--preserve-fds',
      '2',
      'c1',
    ]);
  });
  it('create minimal; extraFiles imply --preserve-fds', () => {
    expect(argv.createArgs('c1', '/b')).toEqual(['create', '--bundle', '/b', 'c1']);
    expect(argv.createArgs('c1', '/b', { extraFiles: [7, 8, 9] })).toEqual([
      'create',
      '--bundle',
      '/b',
      '--preserve-fds',
      '3',
      'c1',
    ]);
  });
  it('run with every option', () => {
    expect(
      argv.runArgs('c1', '/b', {
        consoleSocket: '/s',
        detach: true,
        keep: true,
        pidFile: '/p',
        noSubreaper: true,
        noPivot: true,
        noNewKeyring: true,
        preserveFds: 1,
      }),
    ).toEqual([
      'run',
      '--bundle',
      '/b',
      '--console-socket',
      '/s',
      '--detach',
      '--keep',
      '--pid-file',
      '/p',
      '--no-subreaper',
      '--no-pivot',
      '--no-new-keyring',
      '--preserve-fds',
      '1',
      'c1',
    ]);
  });
  it('start', () => expect(argv.startArgs('c1')).toEqual(['start', 'c1']));
});

describe('exec', () => {
  it('with a process file ignores the per-field flags', () => {
    expect(
      argv.execArgs(
        'c1',
        {
          detach: true,
          pidFile: '/p',
          consoleSocket: '/s',
          cwd: '/x',
          ignorePaused: true,
          cgroup: ['memory:sub'],
        },
        '/proc.json',
      ),
    ).toEqual([
      'exec',
      '--console-socket',
      '/s',
      '--detach',
      '--pid-file',
      '/p',
      '--cgroup',
      'memory:sub',
      '--ignore-paused',
      '--process',
      '/proc.json',
      'c1',
    ]);
  });
  it('with args and every flag', () => {
    expect(
      argv.execArgs('c1', {
        args: ['sh', '-c', 'echo hi'],
        cwd: '/tmp',
        env: ['A=1', 'B=2'],
        tty: true,
        user: '1000:1000',
        additionalGids: [10, 20],
        processLabel: 'lbl',
        apparmor: 'prof',
        noNewPrivs: true,
        caps: ['CAP_NET_ADMIN'],
        preserveFds: 1,
      }),
    ).toEqual([
      'exec',
      '--preserve-fds',
      '1',
      '--cwd',
      '/tmp',
      '--env',
      'A=1',
      '--env',
      'B=2',
      '--tty',
      '--user',
      '1000:1000',
      '--additional-gids',
      '10',
      '--additional-gids',
      '20',
      '--process-label',
      'lbl',
      '--apparmor',
      'prof',
      '--no-new-privs',
      '--cap',
      'CAP_NET_ADMIN',
      'c1',
      'sh',
      '-c',
      'echo hi',
    ]);
  });
  it('refuses an exec with neither process nor args', () => {
    expect(() => argv.execArgs('c1', {})).toThrow(RuncValidationError);
    expect(() => argv.execArgs('c1', {})).toThrow(/pass \{ process \}/);
  });
});

describe('kill, delete, state, list, ps, pause, resume, update', () => {
  it('kill by number, by name, with --all', () => {
    expect(argv.killArgs('c1', 9)).toEqual(['kill', 'c1', '9']);
    expect(argv.killArgs('c1', 'SIGTERM', { all: true })).toEqual(['kill', '--all', 'c1', 'SIGTERM']);
    expect(argv.killArgs('c1', 'kill')).toEqual(['kill', 'c1', 'KILL']);
    expect(argv.killArgs('c1', '15')).toEqual(['kill', 'c1', '15']);
    expect(argv.killArgs('c1', 'SIGRTMIN+3')).toEqual(['kill', 'c1', 'SIGRTMIN+3']);
  });
  it('kill refuses nonsense signals', () => {
    expect(() => argv.killArgs('c1', 0)).toThrow(/out of range/);
    expect(() => argv.killArgs('c1', 65)).toThrow(/out of range/);
    expect(() => argv.killArgs('c1', 'SIG TERM; rm')).toThrow(/not a signal name/);
  });
  it('the rest', () => {
    expect(argv.deleteArgs('c1')).toEqual(['delete', 'c1']);
    expect(argv.deleteArgs('c1', { force: true })).toEqual(['delete', '--force', 'c1']);
    expect(argv.stateArgs('c1')).toEqual(['state', 'c1']);
    expect(argv.listArgs()).toEqual(['list', '--format', 'json']);
    expect(argv.psArgs('c1')).toEqual(['ps', '--format', 'json', 'c1']);
    expect(argv.pauseArgs('c1')).toEqual(['pause', 'c1']);
    expect(argv.resumeArgs('c1')).toEqual(['resume', 'c1']);
    expect(argv.updateArgs('c1')).toEqual(['update', '--resources', '-', 'c1']);
    expect(argv.versionArgs()).toEqual(['--version']);
    expect(argv.featuresArgs()).toEqual(['features']);
  });
});

describe('checkpoint and restore', () => {
  it('checkpoint with every CRIU option', () => {
    expect(
      argv.checkpointArgs('c1', {
        imagePath: '/img',
        workPath: '/work',
        parentPath: '../parent',
        leaveRunning: true,
        tcpEstablished: true,
        externalUnixSockets: true,
        shellJob: true,
        lazyPages: true,
        statusFd: 5,
        pageServer: '10.0.0.1:1234',
        fileLocks: true,
        preDump: true,
        manageCgroupsMode: 'full',
        emptyNamespaces: ['network', 'ipc'],
        autoDedup: true,
      }),
    ).toEqual([
      'checkpoint',
      '--image-path',
      '/img',
      '--work-path',
      '/work',
      '--tcp-established',
      '--ext-unix-sk',
      '--shell-job',
      '--file-locks',
      '--manage-cgroups-mode',
      'full',
      '--empty-ns',
      'network',
      '--empty-ns',
      'ipc',
      '--auto-dedup',
      '--lazy-pages',
      '--parent-path',
      '../parent',
      '--leave-running',
      '--status-fd',
      '5',
      '--page-server',
      '10.0.0.1:1234',
      '--pre-dump',
      'c1',
    ]);
    expect(argv.checkpointArgs('c1', { imagePath: '/img' })).toEqual([
      'checkpoint',
      '--image-path',
      '/img',
      'c1',
    ]);
  });
  it('restore with every option', () => {
    expect(
      argv.restoreArgs('c1', {
        bundle: '/b',
        imagePath: '/img',
        workPath: '/work',
        consoleSocket: '/s',
        tcpEstablished: true,
        externalUnixSockets: true,
        shellJob: true,
        fileLocks: true,
        manageCgroupsMode: 'soft',
        detach: true,
        pidFile: '/p',
        noSubreaper: true,
        noPivot: true,
        emptyNamespaces: ['network'],
        autoDedup: true,
        lazyPages: true,
        lsmProfile: 'apparmor:x',
        lsmMountContext: 'ctx',
      }),
    ).toEqual([
      'restore',
      '--bundle',
      '/b',
      '--image-path',
      '/img',
      '--work-path',
      '/work',
      '--tcp-established',
      '--ext-unix-sk',
      '--shell-job',
      '--file-locks',
      '--manage-cgroups-mode',
      'soft',
      '--empty-ns',
      'network',
      '--auto-dedup',
      '--lazy-pages',
      '--console-socket',
      '/s',
      '--detach',
      '--pid-file',
      '/p',
      '--no-subreaper',
      '--no-pivot',
      '--lsm-profile',
      'apparmor:x',
      '--lsm-mount-context',
      'ctx',
      'c1',
    ]);
  });
});

describe('events', () => {
  it('stats once, stream with and without interval', () => {
    expect(argv.eventsArgs('c1', { stats: true })).toEqual(['events', '--stats', 'c1']);
    expect(argv.eventsArgs('c1', {})).toEqual(['events', 'c1']);
    expect(argv.eventsArgs('c1', { intervalMs: 1500 })).toEqual(['events', '--interval', '1500ms', 'c1']);
    expect(() => argv.eventsArgs('c1', { intervalMs: 0 })).toThrow(/positive/);
  });
});
