import { posix } from 'node:path';
import { InvalidArgument, NotFound } from '@ctrd/api-proto/client';
import { cloneImageConfig, type ImageConfig } from '@ctrd/api-proto/oci';
import { readFileInRoot } from './temp-mount.js';

// What a container made from an image starts with, as containerd's oci.WithImageConfigArgs and
// WithUser/WithAdditionalGIDs decide it: the process runs Entrypoint followed by the user's command
// (or the image's Cmd), with the image's environment overlaid by the user's, in the image's
// working directory, as the image's user unless one is given. Every container gets its own copies
// of the image's arrays (CVE-2021-21334 shared them between containers).

/** containerd's label for the image's stop signal, read by `ctr tasks kill`. */
export const STOP_SIGNAL_LABEL = 'io.containerd.image.config.stop-signal';
export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Largest /etc/passwd or /etc/group read from an image. */
export const MAX_ID_FILE_BYTES = 4 * 1024 * 1024;
/** Ids above int32 wrap in some runtimes (CVE-2024-40635): refused. */
export const MAX_ID = 2 ** 31 - 1;

export interface ImageProcessInput {
  /** The user's command: replaces the image's Cmd (Entrypoint stays). */
  args?: string[];
  env?: string[];
  cwd?: string;
  user?: string;
}

export interface ImageProcess {
  args: string[];
  env: string[];
  cwd: string;
  /** The user to resolve (uid[:gid] or name[:group]); '' means the image gave none (root). */
  user: string;
}

/** KEY=VALUE entries replace an existing KEY; a bare KEY (no '=') is kept as given. */
function overlayEnv(base: readonly string[], extra: readonly string[]): string[] {
  const out = [...base];
  for (const entry of extra) {
    const key = entry.split('=', 1)[0];
    const at = out.findIndex((e) => e.split('=', 1)[0] === key);
    if (at === -1) out.push(entry);
    else out[at] = entry;
  }
  return out;
}

/**
 * A working directory from an image or the user: absolute, normalized (so `..` cannot climb above
 * the container's root), and not one of the /proc fd directories a leaked descriptor could reach
 * the host through (CVE-2024-21626).
 */
export function validateCwd(cwd: string, what = 'working directory'): string {
  if (cwd.includes('\0')) throw new InvalidArgument(`${what} ${JSON.stringify(cwd)}: contains a NUL byte`);
  if (!cwd.startsWith('/'))
    throw new InvalidArgument(`${what} ${JSON.stringify(cwd)}: must be an absolute path`);
  const clean = posix.normalize(cwd);
  const resolved = clean.length > 1 && clean.endsWith('/') ? clean.slice(0, -1) : clean;
  if (/^\/proc\/(self|thread-self|\d+)(\/task\/\d+)?\/fd(\/|$)/.test(resolved)) {
    throw new InvalidArgument(`${what} ${JSON.stringify(cwd)}: a /proc fd directory is not allowed`);
  }
  return resolved;
}

/** The process a container of this image runs, before the user is resolved. */
export function imageProcess(config: ImageConfig, input: ImageProcessInput, imageName: string): ImageProcess {
  const own = cloneImageConfig(config).config ?? {};
  const entrypoint = own.Entrypoint ?? [];
  const cmd = input.args && input.args.length > 0 ? [...input.args] : (own.Cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) {
    throw new InvalidArgument(
      `image "${imageName}" has no command (no Entrypoint or Cmd): give one after the container id`,
    );
  }
  const base = own.Env && own.Env.length > 0 ? own.Env : [DEFAULT_PATH_ENV];
  const env = overlayEnv(base, input.env ?? []);
  let cwd = '/';
  if (input.cwd) cwd = validateCwd(input.cwd, '--cwd');
  else if (own.WorkingDir) cwd = validateCwd(own.WorkingDir, `image "${imageName}" WorkingDir`);
  return { args, env, cwd, user: input.user ?? own.User ?? '' };
}

/** The container labels an image implies: its stop signal, as containerd's WithImageStopSignal sets it. */
export function imageLabels(config: ImageConfig): Record<string, string> {
  const stop = config.config?.StopSignal;
  return stop ? { [STOP_SIGNAL_LABEL]: stop } : {};
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

function parseId(text: string, what: string): number {
  if (!/^\d{1,10}$/.test(text)) throw new InvalidArgument(`${what} "${text}": not a valid id`);
  const n = Number(text);
  if (n > MAX_ID) throw new InvalidArgument(`${what} ${n}: above the maximum id ${MAX_ID}`);
  return n;
}

const isNumeric = (s: string) => /^\d+$/.test(s);

/** True when the user spec can be resolved without reading the image's files (`uid:gid`). */
export function userIsNumeric(user: string): boolean {
  const [who = '', group] = user.split(':', 2);
  return isNumeric(who) && group !== undefined && isNumeric(group);
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4 || !isNumeric(f[2]!) || !isNumeric(f[3]!)) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (uid > MAX_ID || gid > MAX_ID) continue;
    out.push({ name: f[0]!, uid, gid });
  }
  return out;
}

function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3 || !isNumeric(f[2]!)) continue;
    const gid = Number(f[2]);
    if (gid > MAX_ID) continue;
    out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').filter((m) => m !== '') });
  }
  return out;
}

/**
 * Resolves `user` (uid, uid:gid, name, name:group, ...) against the image root mounted at `root`:
 * a uid alone takes its gid from /etc/passwd (0 when absent), names must exist, and the supplementary
 * groups are the /etc/group entries listing the user, always including the primary gid.
 */
export async function resolveUserInRoot(user: string, root: string | undefined): Promise<ResolvedUser> {
  const [who = '', group] = user === '' ? ['0'] : user.split(':', 2);
  if (who === '') throw new InvalidArgument(`user "${user}": empty user name`);
  let passwd: PasswdEntry[] | undefined;
  let groups: GroupEntry[] | undefined;
  const loadPasswd = async () => {
    if (passwd) return passwd;
    const text = root ? await readFileInRoot(root, '/etc/passwd', MAX_ID_FILE_BYTES) : undefined;
    passwd = text === undefined ? [] : parsePasswd(text);
    return passwd;
  };
  const loadGroups = async () => {
    if (groups) return groups;
    const text = root ? await readFileInRoot(root, '/etc/group', MAX_ID_FILE_BYTES) : undefined;
    groups = text === undefined ? [] : parseGroup(text);
    return groups;
  };
  let uid: number;
  let gid = 0;
  let name: string | undefined;
  if (isNumeric(who)) {
    uid = parseId(who, 'uid');
    const entry = (await loadPasswd()).find((e) => e.uid === uid);
    if (entry) {
      gid = entry.gid;
      name = entry.name;
    }
  } else {
    const entry = (await loadPasswd()).find((e) => e.name === who);
    if (!entry) throw new NotFound(`user "${who}": no such user in the image's /etc/passwd`);
    uid = entry.uid;
    gid = entry.gid;
    name = entry.name;
  }
  if (group !== undefined && group !== '') {
    if (isNumeric(group)) gid = parseId(group, 'gid');
    else {
      const entry = (await loadGroups()).find((g) => g.name === group);
      if (!entry) throw new NotFound(`group "${group}": no such group in the image's /etc/group`);
      gid = entry.gid;
    }
  }
  const extra = new Set<number>([gid]);
  if (name !== undefined && root !== undefined) {
    for (const g of await loadGroups()) if (g.members.includes(name)) extra.add(g.gid);
  }
  return { uid, gid, additionalGids: [...extra].sort((a, b) => a - b) };
}
