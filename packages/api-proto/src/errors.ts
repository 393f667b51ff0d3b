import { Code, ConnectError } from '@connectrpc/connect';

// One set of error classes for every ctrd package. They become gRPC codes only at a server
// boundary (toConnectError) and turn back into classes in clients (fromConnectError), the way
// containerd's errdefs do.

// Symbol.for makes the brand shared by every copy of this package loaded in one process, so
// `e instanceof NotFound` holds even when two installs of @ctrd/api-proto meet.
const BRAND: unique symbol = Symbol.for('@ctrd/api-proto/error-kind');

export type ErrorKind =
  | 'NotFound'
  | 'AlreadyExists'
  | 'InvalidArgument'
  | 'FailedPrecondition'
  | 'Unavailable'
  | 'NotImplemented'
  | 'ResourceExhausted'
  | 'Canceled'
  | 'DeadlineExceeded'
  | 'Unknown';

interface KindInfo {
  code: Code;
  // The text containerd's errdefs class prints; FromGRPC strips it from the end of a message.
  text: string;
}

const KINDS: Record<ErrorKind, KindInfo> = {
  NotFound: { code: Code.NotFound, text: 'not found' },
  AlreadyExists: { code: Code.AlreadyExists, text: 'already exists' },
  InvalidArgument: { code: Code.InvalidArgument, text: 'invalid argument' },
  FailedPrecondition: { code: Code.FailedPrecondition, text: 'failed precondition' },
  Unavailable: { code: Code.Unavailable, text: 'unavailable' },
  NotImplemented: { code: Code.Unimplemented, text: 'not implemented' },
  ResourceExhausted: { code: Code.ResourceExhausted, text: 'resource exhausted' },
  Canceled: { code: Code.Canceled, text: 'context canceled' },
  DeadlineExceeded: { code: Code.DeadlineExceeded, text: 'context deadline exceeded' },
  Unknown: { code: Code.Unknown, text: 'unknown' },
};

/** Base of all ctrd error classes. `instanceof CtrdError` is true for any of them. */
export class CtrdError extends Error {
  /** Set by each subclass; undefined on the base so the base matches every kind. */
  static readonly kind: ErrorKind | undefined = undefined;
  declare readonly [BRAND]: ErrorKind;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    Object.defineProperty(this, BRAND, { value: kind, enumerable: false });
    this.name = kind;
  }

  /** The error class, e.g. `NotFound`. */
  get kind(): ErrorKind {
    return this[BRAND];
  }

  /** The gRPC/Connect code this class maps to at a server boundary. */
  get code(): Code {
    return KINDS[this[BRAND]].code;
  }

  static override [Symbol.hasInstance](this: { kind?: ErrorKind | undefined }, value: unknown): boolean {
    const kind = errorKind(value);
    if (kind === undefined) return false;
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass `instanceof` was asked about
    return this.kind === undefined || this.kind === kind;
  }
}

type Options = { cause?: unknown };

export class NotFound extends CtrdError {
  static override readonly kind = 'NotFound' as const;
  constructor(message: string, options?: Options) {
    super('NotFound', message, options);
  }
}
export class AlreadyExists extends CtrdError {
  static override readonly kind = 'AlreadyExists' as const;
  constructor(message: string, options?: Options) {
    super('AlreadyExists', message, options);
  }
}
export class InvalidArgument extends CtrdError {
  static override readonly kind = 'InvalidArgument' as const;
  constructor(message: string, options?: Options) {
    super('InvalidArgument', message, options);
  }
}
export class FailedPrecondition extends CtrdError {
  static override readonly kind = 'FailedPrecondition' as const;
  constructor(message: string, options?: Options) {
    super('FailedPrecondition', message, options);
  }
}
export class Unavailable extends CtrdError {
  static override readonly kind = 'Unavailable' as const;
  constructor(message: string, options?: Options) {
    super('Unavailable', message, options);
  }
}
export class NotImplemented extends CtrdError {
  static override readonly kind = 'NotImplemented' as const;
  constructor(message: string, options?: Options) {
    super('NotImplemented', message, options);
  }
}
export class ResourceExhausted extends CtrdError {
  static override readonly kind = 'ResourceExhausted' as const;
  constructor(message: string, options?: Options) {
    super('ResourceExhausted', message, options);
  }
}
export class Canceled extends CtrdError {
  static override readonly kind = 'Canceled' as const;
  constructor(message: string, options?: Options) {
    super('Canceled', message, options);
  }
}
export class DeadlineExceeded extends CtrdError {
  static override readonly kind = 'DeadlineExceeded' as const;
  constructor(message: string, options?: Options) {
    super('DeadlineExceeded', message, options);
  }
}
export class Unknown extends CtrdError {
  static override readonly kind = 'Unknown' as const;
  constructor(message: string, options?: Options) {
    super('Unknown', message, options);
  }
}

const CLASSES: Record<ErrorKind, new (message: string, options?: Options) => CtrdError> = {
  NotFound,
  AlreadyExists,
  InvalidArgument,
  FailedPrecondition,
  Unavailable,
  NotImplemented,
  ResourceExhausted,
  Canceled,
  DeadlineExceeded,
  Unknown,
};

/** The class of a ctrd error (from any copy of this package), or undefined for other values. */
export function errorKind(value: unknown): ErrorKind | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const kind = (value as { [BRAND]?: unknown })[BRAND];
  return typeof kind === 'string' && kind in KINDS ? (kind as ErrorKind) : undefined;
}

/** Builds the error class for `kind`. */
export function newError(kind: ErrorKind, message: string, options?: Options): CtrdError {
  return new CLASSES[kind](message, options);
}

// Predicates look at the class only. A ConnectError that was not converted yet is also
// recognised by its code, so callers need not care whether the client interceptor ran.
function is(kind: ErrorKind, e: unknown): boolean {
  if (errorKind(e) === kind) return true;
  if (e instanceof ConnectError) {
    const inner = errorKind(e.cause);
    return (inner ?? kindFromCode(e.code)) === kind;
  }
  return false;
}
export const isNotFound = (e: unknown): boolean => is('NotFound', e);
export const isAlreadyExists = (e: unknown): boolean => is('AlreadyExists', e);
export const isInvalidArgument = (e: unknown): boolean => is('InvalidArgument', e);
export const isFailedPrecondition = (e: unknown): boolean => is('FailedPrecondition', e);
export const isUnavailable = (e: unknown): boolean => is('Unavailable', e);
export const isNotImplemented = (e: unknown): boolean => is('NotImplemented', e);
export const isResourceExhausted = (e: unknown): boolean => is('ResourceExhausted', e);
export const isCanceled = (e: unknown): boolean => is('Canceled', e) || isAbortError(e);
export const isDeadlineExceeded = (e: unknown): boolean => is('DeadlineExceeded', e) || isTimeoutError(e);
export const isUnknown = (e: unknown): boolean => is('Unknown', e);

function isAbortError(e: unknown): boolean {
  return e instanceof Error && e.name === 'AbortError';
}
function isTimeoutError(e: unknown): boolean {
  return e instanceof Error && e.name === 'TimeoutError';
}

/** gRPC code → class, containerd's errdefs mapping plus ResourceExhausted. */
export function kindFromCode(code: Code): ErrorKind {
  switch (code) {
    case Code.InvalidArgument:
    case Code.OutOfRange:
      return 'InvalidArgument';
    case Code.NotFound:
      return 'NotFound';
    case Code.AlreadyExists:
      return 'AlreadyExists';
    case Code.FailedPrecondition:
      return 'FailedPrecondition';
    case Code.Unavailable:
      return 'Unavailable';
    case Code.Unimplemented:
      return 'NotImplemented';
    case Code.ResourceExhausted:
      return 'ResourceExhausted';
    case Code.Canceled:
      return 'Canceled';
    case Code.DeadlineExceeded:
      return 'DeadlineExceeded';
    default:
      return 'Unknown';
  }
}

/** The gRPC code for a class. */
export function codeFromKind(kind: ErrorKind): Code {
  return KINDS[kind].code;
}

/** The class of any thrown value as a server would report it (unknown values are Unknown). */
export function classify(e: unknown): ErrorKind {
  const kind = errorKind(e);
  if (kind) return kind;
  if (e instanceof ConnectError) return kindFromCode(e.code);
  if (isAbortError(e)) return 'Canceled';
  if (isTimeoutError(e)) return 'DeadlineExceeded';
  return 'Unknown';
}

/**
 * Server boundary: any thrown value → ConnectError with the class's code. The message goes out
 * as written (containerd's messages often already end in ": not found"); the class stays the
 * cause for logging.
 */
export function toConnectError(e: unknown): ConnectError {
  if (e instanceof ConnectError && errorKind(e) === undefined) return e;
  const kind = classify(e);
  const message = e instanceof Error ? e.message : String(e);
  return new ConnectError(message, KINDS[kind].code, undefined, undefined, e);
}

/**
 * Client boundary: ConnectError → class. Like containerd's FromGRPC, a trailing ": <class>" is
 * removed and then said once, so the message reads `<what>: not found` however the server
 * phrased it.
 */
export function fromConnectError(e: ConnectError): CtrdError {
  const kind = kindFromCode(e.code);
  return newError(kind, rebaseMessage(kind, e.rawMessage), { cause: e });
}

/** Turns any thrown value into a ctrd error class (ConnectErrors by code; others Unknown). */
export function toCtrdError(e: unknown): CtrdError {
  if (errorKind(e)) return e as CtrdError;
  if (e instanceof ConnectError && errorKind(e.cause)) return e.cause as CtrdError;
  if (e instanceof ConnectError) return fromConnectError(e);
  const kind = classify(e);
  return newError(kind, e instanceof Error ? e.message : String(e), { cause: e });
}

function rebaseMessage(kind: ErrorKind, message: string): string {
  const text = KINDS[kind].text;
  if (message === '' || message === text) return text;
  let base = message;
  while (base.endsWith(`: ${text}`)) base = base.slice(0, -(text.length + 2));
  return `${base}: ${text}`;
}
