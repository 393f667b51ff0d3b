import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// A container's cgroups are found from its init process's /proc/<pid>/cgroup rather than rebuilt from
// config.json: runc's defaults, systemd slices and nested hierarchies all end up there.

export interface CgroupLocation {
  version: 1 | 2;
  /** The memory controller's directory (v1) or the unified directory (v2). */
  memoryDir: string;
  /** The path inside the hierarchy, e.g. `/default/web`. */
  path: string;
}

export function findCgroup(pid: number, root = '/sys/fs/cgroup'): CgroupLocation | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  let unified: string | undefined;
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first === -1 || second === -1) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (controllers.split(',').includes('memory')) {
      return { version: 1, memoryDir: join(root, 'memory', path), path };
    }
    if (line.startsWith('0::')) unified = path;
  }
  if (unified === undefined) return undefined;
  // Pure v2 mounts the hierarchy at the root; a hybrid host has it at unified/.
  const base = existsSync(join(root, 'cgroup.controllers')) ? root : join(root, 'unified');
  return { version: 2, memoryDir: join(base, unified), path: unified };
}
