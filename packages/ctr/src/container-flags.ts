import { Flags } from '@oclif/core';

/** Flags shared by `containers create` and `run` (containerd ctr's names). */
export const containerFlags = {
  rootfs: Flags.string({
    summary: 'use this directory as the root filesystem (absolute or relative path) instead of an image',
    helpValue: 'DIR',
  }),
  snapshotter: Flags.string({
    summary:
      "snapshotter for the image's layers [env: CTRD_SNAPSHOTTER, CONTAINERD_SNAPSHOTTER] [default: overlayfs]",
    helpValue: 'NAME',
  }),
  platform: Flags.string({
    summary: 'image platform to run (default: this host)',
    helpValue: 'OS/ARCH[/VARIANT]',
  }),
  env: Flags.string({
    char: 'e',
    summary: 'environment variable KEY=VALUE (repeatable)',
    multiple: true,
    multipleNonGreedy: true,
    helpValue: 'KEY=VALUE',
  }),
  cwd: Flags.string({ summary: 'working directory of the process', helpValue: 'DIR' }),
  user: Flags.string({
    char: 'u',
    summary: 'user (and group) to run as: uid[:gid] or name[:group] from the rootfs',
    helpValue: 'USER',
  }),
  tty: Flags.boolean({ char: 't', summary: 'allocate a terminal' }),
  mount: Flags.string({
    summary: 'extra mount, e.g. type=bind,src=/tmp,dst=/host,options=rbind:ro (repeatable)',
    multiple: true,
    multipleNonGreedy: true,
    helpValue: 'SPEC',
  }),
  'net-host': Flags.boolean({ summary: "share the host's network namespace" }),
  'memory-limit': Flags.integer({ summary: 'memory limit in bytes', min: 0, helpValue: 'BYTES' }),
  cpus: Flags.custom<number>({
    summary: 'CPU limit in cores, e.g. 0.5',
    helpValue: 'N',
    parse: async (input) => {
      const value = Number(input);
      if (!Number.isFinite(value) || value < 0)
        throw new Error(`expected a number of cores such as 0.5 or 2, got "${input}"`);
      return value;
    },
  })(),
  label: Flags.string({
    summary: 'container label KEY=VALUE (repeatable)',
    multiple: true,
    multipleNonGreedy: true,
    helpValue: 'KEY=VALUE',
  }),
  runtime: Flags.string({ summary: 'runtime name', default: 'io.containerd.runc.v2', helpValue: 'NAME' }),
};
