import { InvalidArgument } from '../errors.js';
import type { Platform } from './types.js';

// Platforms as containerd's `platforms` package treats them: names normalized (x86_64 → amd64,
// aarch64 → arm64, armhf → arm/v7), and a host that runs one platform also runs the older ones it
// is compatible with (arm/v7 runs v6 and v5 images, arm64 runs 32-bit arm, amd64 runs 386), best
// match first.

const KNOWN_OS = new Set([
  'aix',
  'android',
  'darwin',
  'dragonfly',
  'freebsd',
  'hurd',
  'illumos',
  'ios',
  'js',
  'linux',
  'nacl',
  'netbsd',
  'openbsd',
  'plan9',
  'solaris',
  'windows',
  'zos',
]);

const NODE_ARCH: Readonly<Record<string, string>> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

function normalizeOs(os: string): string {
  const lower = os.toLowerCase();
  return lower === 'macos' ? 'darwin' : lower;
}

function normalizeArch(arch: string, variant: string): { architecture: string; variant: string } {
  const a = arch.toLowerCase();
  const v = variant.toLowerCase();
  switch (a) {
    case 'i386':
      return { architecture: '386', variant: '' };
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return { architecture: 'amd64', variant: v === 'v1' ? '' : v };
    case 'aarch64':
    case 'arm64':
      return { architecture: 'arm64', variant: v === '8' || v === 'v8' ? '' : v };
    case 'armhf':
      return { architecture: 'arm', variant: 'v7' };
    case 'armel':
      return { architecture: 'arm', variant: 'v6' };
    case 'arm':
      if (v === '' || v === '7') return { architecture: 'arm', variant: 'v7' };
      if (v === '5' || v === '6' || v === '8') return { architecture: 'arm', variant: `v${v}` };
      return { architecture: 'arm', variant: v };
    default:
      return { architecture: a, variant: v };
  }
}

/** The platform with containerd's normalized names; `variant` is omitted when empty. */
export function normalizePlatform(p: Platform): Platform {
  const { architecture, variant } = normalizeArch(p.architecture ?? '', p.variant ?? '');
  const out: Platform = { os: normalizeOs(p.os ?? ''), architecture };
  if (variant) out.variant = variant;
  if (p['os.version']) out['os.version'] = p['os.version'];
  return out;
}

/** The platform this process runs on, e.g. `{os: 'linux', architecture: 'amd64'}`. */
export function defaultPlatform(): Platform {
  const architecture = NODE_ARCH[process.arch] ?? process.arch;
  let variant = '';
  if (architecture === 'arm') {
    const armVersion = (process.config.variables as Record<string, unknown>).arm_version;
    variant = typeof armVersion === 'string' || typeof armVersion === 'number' ? String(armVersion) : '7';
  }
  return normalizePlatform({
    os: process.platform === 'win32' ? 'windows' : process.platform,
    architecture,
    variant,
  });
}

/**
 * Parses `os[/arch[/variant]]` (also a bare architecture, which gets this host's OS, and a bare OS,
 * which gets this host's architecture), as `--platform` takes it.
 */
export function parsePlatform(spec: string): Platform {
  if (spec === '' || spec.length > 100)
    throw new InvalidArgument(`platform "${spec.slice(0, 100)}": invalid platform`);
  const parts = spec.split('/');
  if (parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p))) {
    throw new InvalidArgument(`platform "${spec}": invalid platform: want os[/arch[/variant]]`);
  }
  const host = defaultPlatform();
  if (parts.length === 1) {
    const one = parts[0]!;
    if (KNOWN_OS.has(normalizeOs(one))) {
      return normalizePlatform({ os: one, architecture: host.architecture, variant: host.variant ?? '' });
    }
    return normalizePlatform({ os: host.os, architecture: one });
  }
  if (!KNOWN_OS.has(normalizeOs(parts[0]!)))
    throw new InvalidArgument(`platform "${spec}": unknown operating system "${parts[0]}"`);
  return normalizePlatform({ os: parts[0]!, architecture: parts[1]!, variant: parts[2] ?? '' });
}

/** `linux/arm/v7`. */
export function formatPlatform(p: Platform): string {
  const n = normalizePlatform(p);
  return n.variant ? `${n.os}/${n.architecture}/${n.variant}` : `${n.os}/${n.architecture}`;
}

/** The platforms a host of `want` can run, best first (containerd's platforms.Only). */
export function compatiblePlatforms(want: Platform): Platform[] {
  const w = normalizePlatform(want);
  const out: Platform[] = [w];
  const arm = (from: number) => {
    for (let v = from; v >= 5; v--) out.push({ os: w.os, architecture: 'arm', variant: `v${v}` });
  };
  if (w.architecture === 'amd64') out.push({ os: w.os, architecture: '386' });
  if (w.architecture === 'arm64' && (w.variant ?? '') === '') arm(8);
  if (w.architecture === 'arm') {
    const n = /^v([5-8])$/.exec(w.variant ?? '');
    if (n) arm(Number(n[1]) - 1);
  }
  return out;
}

/**
 * How well `have` suits a host of `want`: 0 is an exact match, higher is a fallback, -1 is no
 * match. Use it to pick the best manifest of an index.
 */
export function platformRank(want: Platform, have: Platform): number {
  const h = normalizePlatform(have);
  const candidates = compatiblePlatforms(want);
  return candidates.findIndex(
    (c) => c.os === h.os && c.architecture === h.architecture && (c.variant ?? '') === (h.variant ?? ''),
  );
}

/** True when a host of `want` runs images built for `have`. */
export function platformMatches(want: Platform, have: Platform): boolean {
  return platformRank(want, have) >= 0;
}
