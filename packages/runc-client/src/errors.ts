// runc reports failures as log lines: JSON ({"level":"error","msg":...}) with --log-format json, or
// logfmt (level=error msg="...") with text. Its last error line is the message worth showing.

const RUNC_ERROR = Symbol.for('@ctrd/runc-client/RuncError');
const VALIDATION_ERROR = Symbol.for('@ctrd/runc-client/RuncValidationError');

export interface RuncErrorInit {
  argv: string[];
  exitCode: number | null;
  signal?: NodeJS.Signals | null;
  runcMessage: string;
  stderr?: string;
  /** The tail of CRIU's own log, when checkpoint/restore failed in CRIU. */
  criuLog?: string;
  cause?: unknown;
}

/** runc ran and failed. */
export class RuncError extends Error {
  readonly argv: string[];
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** runc's own message (its last error log line), or its stderr when it logged none. */
  readonly runcMessage: string;
  readonly stderr: string;
  /** The tail of CRIU's log (dump.log/restore.log) when CRIU failed; empty otherwise. */
  readonly criuLog: string;

  constructor(verb: string, init: RuncErrorInit) {
    const why =
      init.runcMessage || (init.signal ? `killed by ${init.signal}` : `exit status ${init.exitCode}`);
    super(`runc ${verb}: ${why}`, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'RuncError';
    this.argv = init.argv;
    this.exitCode = init.exitCode;
    this.signal = init.signal ?? null;
    this.runcMessage = init.runcMessage;
    this.stderr = init.stderr ?? '';
    this.criuLog = init.criuLog ?? '';
    Object.defineProperty(this, RUNC_ERROR, { value: true });
  }

  /** Works across duplicated installs of this package. */
  static override [Symbol.hasInstance](v: unknown): boolean {
    return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[RUNC_ERROR] === true;
  }

  isNotFound(): boolean {
    return /does not exist|container not found|no such file or directory: .*state\.json/i.test(
      this.runcMessage,
    );
  }

  isAlreadyExists(): boolean {
    return /already exists/i.test(this.runcMessage);
  }
}

/** A call was refused before runc ran: the message says what to fix. */
export class RuncValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuncValidationError';
    Object.defineProperty(this, VALIDATION_ERROR, { value: true });
  }

  static override [Symbol.hasInstance](v: unknown): boolean {
    return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[VALIDATION_ERROR] === true;
  }
}

export interface LogEntry {
  level: string;
  msg: string;
}

const LOGFMT = /(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g;

/** Parses one runc log line (JSON or logfmt); undefined when it is neither. */
export function parseLogLine(line: string): LogEntry | undefined {
  const t = line.trim();
  if (t.startsWith('{')) {
    try {
      const o = JSON.parse(t) as { level?: unknown; msg?: unknown };
      if (typeof o.level === 'string' && typeof o.msg === 'string') return { level: o.level, msg: o.msg };
    } catch {
      return undefined;
    }
    return undefined;
  }
  if (!/\blevel=/.test(t)) return undefined;
  const fields: Record<string, string> = {};
  for (const m of t.matchAll(LOGFMT)) {
    const raw = m[2] ?? '';
    fields[m[1] as string] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
  }
  if (fields.level === undefined || fields.msg === undefined) return undefined;
  return { level: fields.level, msg: fields.msg };
}

/**
 * The message to report from runc's output: the last error/fatal log line, else the last non-empty
 * line that is not a log line of a lower level.
 */
export function runcMessageFrom(output: string): string {
  let lastError: string | undefined;
  let lastPlain: string | undefined;
  for (const line of output.split('\n')) {
    if (!line.trim()) continue;
    const e = parseLogLine(line);
    if (e) {
      if (e.level === 'error' || e.level === 'fatal' || e.level === 'panic') lastError = e.msg;
    } else {
      lastPlain = line.trim();
    }
  }
  return lastError ?? lastPlain ?? '';
}
