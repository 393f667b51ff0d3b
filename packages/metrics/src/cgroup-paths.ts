import { isAbsolute, join, normalize, relative, sep } from 'node:path';
import { readText } from './cgroup-files.js';

export interface CgroupV1Mount {
  mountPoint: string;
  /** The hierarchy path mounted there: '/' on the host, a sub-path inside a cgroup namespace. */
  root: string;
}

export interface CgroupMounts {
  /** v1 hierarchies by controller ("memory", "cpuacct", "name=systemd"...). */
  v1: Map<string, CgroupV1Mount>;
  /** The cgroup2 mount point: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid one. */
  unified: CgroupV1Mount | undefined;
}

/** Octal escapes (\040 for space) used by the kernel in mountinfo fields. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** The cgroup mounts listed in a /proc/<pid>/mountinfo text; the first mount of each controller wins. */
export function parseCgroupMounts(mountinfo: string): CgroupMounts {
  const v1 = new Map<string, CgroupV1Mount>();
  let unified: CgroupV1Mount | undefined;
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6 || fields.length < dash + 4) continue;
    const fstype = fields[dash + 1];
    const root = unescapeMountField(fields[3]!);
    const mountPoint = unescapeMountField(fields[4]!);
    if (fstype === 'cgroup2') {
      unified ??= { mountPoint, root };
    } else if (fstype === 'cgroup') {
      for (const opt of fields[dash + 3]!.split(',')) {
        if (
          opt === 'rw' ||
          opt === 'ro' ||
          opt.startsWith('release_agent=') ||
          opt.includes('clone_children')
        ) {
          continue;
        }
        if (!v1.has(opt)) v1.set(opt, { mountPoint, root });
      }
    }
  }
  return { v1, unified };
}

export interface ProcOptions {
  /** Default /proc; tests point it at a fake tree. */
  procRoot?: string;
  signal?: AbortSignal;
}

export async function readCgroupMounts(options: ProcOptions = {}): Promise<CgroupMounts> {
  const path = join(options.procRoot ?? '/proc', 'self', 'mountinfo');
  const text = await readText(path, options.signal);
  if (text === undefined) throw new Error(`cgroup mounts: ${path} is missing: is /proc mounted?`);
  return parseCgroupMounts(text);
}

export interface ProcessCgroup {
  /** v1 hierarchy paths by controller; "cpu,cpuacct" lines give both names the same path. */
  v1: Map<string, string>;
  /** The "0::" line: the process's cgroup v2 path. */
  unified: string | undefined;
}

/** A /proc/<pid>/cgroup text. */
export function parseProcCgroup(text: string): ProcessCgroup {
  const v1 = new Map<string, string>();
  let unified: string | undefined;
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (line.slice(0, first) === '0' && controllers === '') {
      unified = path;
      continue;
    }
    for (const c of controllers.split(',')) if (c) v1.set(c, path);
  }
  return { v1, unified };
}

/** The cgroups of a process, from /proc/<pid>/cgroup. */
export async function readProcessCgroup(
  pid: number | 'self',
  options: ProcOptions = {},
): Promise<ProcessCgroup> {
  if (pid !== 'self' && !(Number.isInteger(pid) && pid > 0)) {
    throw new Error(`process cgroup: pid ${pid} is not a positive integer`);
  }
  const path = join(options.procRoot ?? '/proc', String(pid), 'cgroup');
  const text = await readText(path, options.signal);
  if (text === undefined) throw new Error(`process ${pid}: ${path} is missing: has the process exited?`);
  return parseProcCgroup(text);
}

/**
 * The directory of `cgroupPath` under a mount. A path from /proc/<pid>/cgroup is relative to the
 * hierarchy's root, so a mount of a sub-tree (inside a cgroup namespace) has that prefix removed. The
 * result stays inside the mount whatever the path says, since container specs are user input.
 */
export function cgroupDir(mount: CgroupV1Mount, cgroupPath: string): string {
  let p = cgroupPath.startsWith('/') ? cgroupPath : `/${cgroupPath}`;
  p = normalize(p);
  if (mount.root !== '/' && (p === mount.root || p.startsWith(`${mount.root}/`))) {
    p = p.slice(mount.root.length) || '/';
  }
  const dir = join(mount.mountPoint, p);
  const rel = relative(mount.mountPoint, dir);
  if (rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
    throw new Error(
      `cgroup path "${cgroupPath}": escapes ${mount.mountPoint}: give a path inside the hierarchy`,
    );
  }
  return dir;
}
