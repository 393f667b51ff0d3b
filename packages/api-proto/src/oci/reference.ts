import { InvalidArgument } from '../errors.js';
import { parseDigest } from './digest.js';

// Image references as Docker writes them, normalized the way distribution/reference's
// ParseDockerRef does: `busybox` is `docker.io/library/busybox:latest`, `index.docker.io` is
// `docker.io`, a first component with a dot, a colon or `localhost` is a registry host, and a
// reference with a digest keeps the digest and drops the tag.

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
/** distribution/reference's NameTotalLengthMax. */
export const MAX_NAME_LENGTH = 255;

const ALPHANUMERIC = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|${IPV6})`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const REFERENCE = new RegExp(
  `^((?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`,
);
const DOMAIN_ONLY = new RegExp(`^${DOMAIN}$`);
const IDENTIFIER = /^[a-f0-9]{64}$/;

export interface Reference {
  /** The repository with its registry host: `docker.io/library/busybox`. */
  name: string;
  /** The registry host (and port): `docker.io`, `localhost:5000`. */
  domain: string;
  /** The repository path inside the registry: `library/busybox`. */
  path: string;
  tag?: string;
  digest?: string;
  /** The whole normalized reference: `docker.io/library/busybox:latest`, `name@digest`. */
  reference: string;
}

export interface NormalizeOptions {
  /** Add `:latest` when the reference has neither a tag nor a digest (default true). */
  defaultTag?: boolean;
}

function shown(ref: string): string {
  return JSON.stringify(ref.length > 100 ? `${ref.slice(0, 100)}...` : ref);
}

function splitDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  let domain: string;
  let remainder: string;
  const first = slash === -1 ? '' : name.slice(0, slash);
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(slash + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/**
 * Normalizes a Docker-style image reference; InvalidArgument naming the reference and the rule it
 * breaks otherwise.
 */
export function normalizeReference(ref: string, opts: NormalizeOptions = {}): Reference {
  if (typeof ref !== 'string' || ref === '') throw new InvalidArgument('image reference: must not be empty');
  if (IDENTIFIER.test(ref)) {
    throw new InvalidArgument(
      `image reference ${shown(ref)}: invalid repository name, cannot specify 64-byte hexadecimal strings`,
    );
  }
  const { domain, remainder } = splitDomain(ref);
  const remoteEnd = remainder.search(/[:@]/);
  const remote = remoteEnd === -1 ? remainder : remainder.slice(0, remoteEnd);
  if (remote.toLowerCase() !== remote) {
    throw new InvalidArgument(
      `image reference ${shown(ref)}: invalid reference format: repository name must be lowercase`,
    );
  }
  const m = REFERENCE.exec(`${domain}/${remainder}`);
  if (!m) throw new InvalidArgument(`image reference ${shown(ref)}: invalid reference format`);
  const name = m[1]!;
  if (name.length > MAX_NAME_LENGTH) {
    throw new InvalidArgument(
      `image reference ${shown(ref)}: invalid reference format: repository name longer than ${MAX_NAME_LENGTH} characters`,
    );
  }
  if (!DOMAIN_ONLY.test(domain))
    throw new InvalidArgument(
      `image reference ${shown(ref)}: invalid reference format: invalid registry host`,
    );
  let tag = m[2];
  const digest = m[3];
  if (digest !== undefined) {
    parseDigest(digest, `image reference ${shown(ref)}: digest`);
    tag = undefined;
  } else if (tag === undefined && opts.defaultTag !== false) {
    tag = DEFAULT_TAG;
  }
  const out: Reference = {
    name,
    domain,
    path: name.slice(domain.length + 1),
    reference: name + (tag !== undefined ? `:${tag}` : '') + (digest !== undefined ? `@${digest}` : ''),
  };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** True when the string is a valid image reference. */
export function isValidReference(ref: string): boolean {
  try {
    normalizeReference(ref);
    return true;
  } catch {
    return false;
  }
}

/** `docker.io/library/busybox:latest` → `busybox:latest`, the short form Docker prints. */
export function familiarName(ref: Reference): string {
  let path = ref.name;
  if (ref.domain === DEFAULT_DOMAIN) {
    const rest = ref.path.slice(OFFICIAL_REPO_PREFIX.length);
    path = ref.path.startsWith(OFFICIAL_REPO_PREFIX) && !rest.includes('/') ? rest : ref.path;
  }
  return (
    path + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '')
  );
}
