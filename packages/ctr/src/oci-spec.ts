import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './errors.js';

// A subset of the OCI runtime-spec types: what ctr writes.
export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}
export interface OciProcess {
  terminal?: boolean;
  user: { uid: number; gid: number; additionalGids?: number[] };
  args: string[];
  env: string[];
  cwd: string;
  capabilities?: { bounding: string[]; effective: string[]; permitted: string[] };
  rlimits?: { type: string; hard: number; soft: number }[];
  noNewPrivileges?: boolean;
}
export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: OciMount[];
  linux: {
    resources: {
      devices: { allow: boolean; access: string; type?: string; major?: number; minor?: number }[];
      memory?: { limit: number };
      cpu?: { quota: number; period: number };
    };
    cgroupsPath: string;
    namespaces: { type: string; path?: string }[];
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

// The values below are containerd 1.6's defaults (oci.populateDefaultUnixSpec plus
// WithDefaultUnixDevices), so a container made by this ctr runs like one made by containerd's.
const OCI_VERSION = '1.0.2-dev';
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEFAULT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];
const DEFAULT_DEVICES: [number, number | undefined][] = [
  [1, 3], // /dev/null
  [1, 8], // /dev/random
  [1, 7], // /dev/full
  [5, 0], // /dev/tty
  [1, 5], // /dev/zero
  [1, 9], // /dev/urandom
  [5, 1], // /dev/console
  [136, undefined], // /dev/pts/*
  [5, 2], // /dev/ptmx
  [10, 200], // /dev/net/tun
];

function defaultMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    {
      destination: '/run',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
  ];
}

export function defaultSpec(namespace: string, id: string): OciSpec {
  return {
    ociVersion: OCI_VERSION,
    process: {
      user: { uid: 0, gid: 0 },
      args: [],
      // containerd leaves env empty without an image; a rootfs container still needs PATH to find `sh`.
      env: [DEFAULT_PATH],
      cwd: '/',
      capabilities: {
        bounding: [...DEFAULT_CAPS],
        effective: [...DEFAULT_CAPS],
        permitted: [...DEFAULT_CAPS],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs' },
    mounts: defaultMounts(),
    linux: {
      resources: {
        devices: [
          { allow: false, access: 'rwm' },
          ...DEFAULT_DEVICES.map(([major, minor]) => ({
            allow: true,
            type: 'c',
            major,
            ...(minor === undefined ? {} : { minor }),
            access: 'rwm',
          })),
        ],
      },
      cgroupsPath: `/${namespace}/${id}`,
      namespaces: ['pid', 'ipc', 'uts', 'mount', 'network'].map((type) => ({ type })),
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export interface SpecOptions {
  args: string[];
  rootfs: string;
  env?: string[];
  cwd?: string;
  user?: string;
  tty?: boolean;
  mounts?: string[];
  netHost?: boolean;
  hostname?: string;
  memoryLimit?: number;
  cpus?: number;
}

/** KEY=VALUE entries replace an existing KEY, as containerd's WithEnv does. */
export function mergeEnv(base: string[], extra: string[]): string[] {
  const out = [...base];
  for (const entry of extra) {
    const key = entry.split('=', 1)[0];
    const index = out.findIndex((e) => e.split('=', 1)[0] === key);
    if (index === -1) out.push(entry);
    else out[index] = entry;
  }
  return out;
}

/** `type=bind,src=/a,dst=/b,options=rbind:ro`, containerd ctr's --mount syntax. */
export function parseMount(text: string): OciMount {
  const mount: Partial<OciMount> = { type: 'bind', options: [] };
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq === -1)
      throw new UsageError(
        `--mount "${text}": expected KEY=VALUE pairs, e.g. type=bind,src=/a,dst=/b,options=rbind:ro`,
      );
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (key === 'type') mount.type = value;
    else if (key === 'source' || key === 'src') mount.source = value;
    else if (key === 'destination' || key === 'dst' || key === 'target') mount.destination = value;
    else if (key === 'options') mount.options = value.split(':').filter((o) => o !== '');
    else throw new UsageError(`--mount "${text}": unknown key "${key}" (type, src, dst, options)`);
  }
  if (!mount.destination) throw new UsageError(`--mount "${text}": dst is required`);
  if (!mount.source) mount.source = mount.type === 'bind' ? '' : (mount.type as string);
  if (mount.type === 'bind' && !mount.source)
    throw new UsageError(`--mount "${text}": src is required for a bind mount`);
  return mount as OciMount;
}

function lookupId(file: string, name: string): { id: number; gid?: number } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields[2] !== undefined) {
      const gid = fields[3] === undefined ? undefined : Number(fields[3]);
      return { id: Number(fields[2]), ...(gid === undefined || Number.isNaN(gid) ? {} : { gid }) };
    }
  }
  return undefined;
}

/** `uid[:gid]` or `name[:group]`, names looked up in the rootfs's /etc/passwd and /etc/group. */
export function resolveUser(user: string, rootfs: string): { uid: number; gid: number } {
  const [who = '', group] = user.split(':', 2);
  let uid: number;
  let gid = 0;
  if (/^\d+$/.test(who)) {
    uid = Number(who);
  } else {
    const entry = lookupId(join(rootfs, 'etc/passwd'), who);
    if (!entry) throw new UsageError(`--user "${user}": no user "${who}" in ${join(rootfs, 'etc/passwd')}`);
    uid = entry.id;
    gid = entry.gid ?? 0;
  }
  if (group !== undefined && group !== '') {
    if (/^\d+$/.test(group)) gid = Number(group);
    else {
      const entry = lookupId(join(rootfs, 'etc/group'), group);
      if (!entry)
        throw new UsageError(`--user "${user}": no group "${group}" in ${join(rootfs, 'etc/group')}`);
      gid = entry.id;
    }
  }
  return { uid, gid };
}

const CPU_PERIOD = 100_000;

export function buildSpec(namespace: string, id: string, options: SpecOptions): OciSpec {
  const spec = defaultSpec(namespace, id);
  spec.root.path = options.rootfs;
  spec.process.args = options.args;
  if (options.env?.length) spec.process.env = mergeEnv(spec.process.env, options.env);
  if (options.cwd) spec.process.cwd = options.cwd;
  if (options.user) spec.process.user = resolveUser(options.user, options.rootfs);
  if (options.tty) spec.process.terminal = true;
  for (const text of options.mounts ?? []) spec.mounts.push(parseMount(text));
  if (options.netHost) {
    spec.linux.namespaces = spec.linux.namespaces.filter((ns) => ns.type !== 'network');
    for (const file of ['/etc/hosts', '/etc/resolv.conf']) {
      spec.mounts.push({ destination: file, type: 'bind', source: file, options: ['rbind', 'ro'] });
    }
    if (options.hostname) spec.process.env = mergeEnv(spec.process.env, [`HOSTNAME=${options.hostname}`]);
  }
  if (options.memoryLimit !== undefined && options.memoryLimit > 0) {
    spec.linux.resources.memory = { limit: options.memoryLimit };
  }
  if (options.cpus !== undefined && options.cpus > 0) {
    spec.linux.resources.cpu = { quota: Math.round(options.cpus * CPU_PERIOD), period: CPU_PERIOD };
  }
  return spec;
}
