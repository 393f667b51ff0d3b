// How one snapshot Mount becomes a mount(8) command line. The kernel takes at most a page of mount
// data; an overlay over a long chain can pass that with absolute lowerdirs, so, as containerd's
// mount package does, the lowerdirs are then made relative to their common directory and mount(8)
// runs there. Whoever mounts snapshots (the daemon's helpers, the shim, tests) uses this:
// @ctrd/api-proto/mount.

export const PAGE_SIZE = 4096;
/** Options this long get their lowerdirs compacted: within 512 bytes of the page, as containerd (mount_linux.go). */
export const COMPACT_AT = PAGE_SIZE - 512;

/** The parts of a containerd Mount (or anything shaped like one) that make the command line. */
export interface MountLike {
  type: string;
  source: string;
  options: readonly string[];
}

export interface MountCommand {
  /** Arguments for mount(8). */
  args: string[];
  /** Directory to run mount(8) in, when the options hold relative lowerdirs. */
  cwd?: string | undefined;
}

/** The overlay options with lowerdir relative to the lowerdirs' common directory, if they have one. */
export function compactLowerdir(options: readonly string[]): { dir: string; options: string[] } | undefined {
  const at = options.findIndex((o) => o.startsWith('lowerdir='));
  if (at < 0) return undefined;
  const dirs = options[at]!.slice('lowerdir='.length).split(':');
  if (dirs.length < 2 || !dirs.every((d) => d.startsWith('/'))) return undefined;
  let prefix = dirs[0]!;
  for (const d of dirs) {
    let i = 0;
    while (i < prefix.length && i < d.length && prefix[i] === d[i]) i++;
    prefix = prefix.slice(0, i);
  }
  const dir = prefix.slice(0, prefix.lastIndexOf('/'));
  if (dir === '') return undefined;
  const out = [...options];
  out[at] = `lowerdir=${dirs.map((d) => d.slice(dir.length + 1)).join(':')}`;
  return { dir, options: out };
}

/** Length of the mount data the kernel sees for these options (after compaction when it applies). */
export function mountDataLength(options: readonly string[]): number {
  const plain = options.join(',').length;
  if (plain < COMPACT_AT) return plain;
  return (compactLowerdir(options)?.options ?? options).join(',').length;
}

export function mountCommand(m: MountLike, target: string): MountCommand {
  let options = [...m.options];
  let cwd: string | undefined;
  if (m.type === 'overlay' && options.join(',').length >= COMPACT_AT) {
    const c = compactLowerdir(options);
    if (c) {
      options = c.options;
      cwd = c.dir;
    }
  }
  const args: string[] = [];
  if (m.type === 'bind') {
    if (!options.includes('bind') && !options.includes('rbind')) options.unshift('bind');
  } else {
    args.push('-t', m.type === '' ? 'none' : m.type);
  }
  if (options.length > 0) args.push('-o', options.join(','));
  args.push('--', m.source, target);
  return { args, cwd };
}
