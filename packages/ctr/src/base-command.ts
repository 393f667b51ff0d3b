import { Command, Config, Errors, type Interfaces } from '@oclif/core';
import { type Resolved, resolveAddress, resolveNamespace } from './address.js';
import { Clients } from './clients.js';
import { describeError, UsageError } from './errors.js';
import { globalFlags } from './flags.js';
import { type CtrIo, processIo } from './io.js';
import { formatTable } from './table.js';

export type CtrFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof CtrCommand)['baseFlags'] & T['flags']
>;
export type CtrArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/**
 * The base of every ctr command: global flags, the API clients, output helpers and the one error
 * handler (`ctr: <message>` on stderr, exit 1; usage errors exit 2).
 */
export abstract class CtrCommand<T extends typeof Command> extends Command {
  static override baseFlags = globalFlags;

  /**
   * Like containerd's ctr (urfave/cli): flags end at the first positional argument, so
   * `ctr run ID sh -c 'echo hi'` passes `-c` to the container, not to ctr.
   */
  static stopAtFirstArg = false;

  io: CtrIo = processIo();
  protected flags!: CtrFlags<T>;
  protected args!: CtrArgs<T>;
  /** Positional arguments beyond the declared ones (commands with `strict = false`). */
  protected rest: string[] = [];
  /** `--` came before any positional argument (commands with stopAtFirstArg): no ID was given. */
  protected dashDashFirst = false;
  protected address: Resolved = resolveAddress(undefined, {});
  protected namespace: Resolved = resolveNamespace(undefined, {});
  #clients: Clients | undefined;

  /**
   * oclif's run() loads a fresh Config even when handed a loaded one (it re-reads the user's and
   * the CLI's settings: milliseconds on every call); bin/run.js always hands one over.
   */
  static override async run<T extends Command>(
    this: new (
      argv: string[],
      config: Config,
    ) => T,
    argv: string[] = process.argv.slice(2),
    opts?: Interfaces.LoadOptions,
  ): Promise<ReturnType<T['run']>> {
    // `this` is the command class being run (a subclass), as in oclif's own run().
    // biome-ignore lint/complexity/noThisInStatic: the subclass, see above
    if (!(opts instanceof Config)) return Command.run.call(this, argv, opts) as Promise<ReturnType<T['run']>>;
    const cmd = new this(argv, opts) as unknown as CtrCommand<typeof Command>;
    // biome-ignore lint/complexity/noThisInStatic: the subclass, see above
    cmd.id ??= (this as unknown as typeof Command).id;
    return cmd._run();
  }

  /** Runs the command with the given streams and transport and resolves to its exit code. */
  async execute(io: Partial<CtrIo> = {}): Promise<number> {
    this.io = { ...processIo(), ...io };
    try {
      await this._run();
      return 0;
    } catch (err) {
      if (err instanceof Errors.ExitError) return err.oclif.exit ?? 1;
      throw err;
    }
  }

  protected override async init(): Promise<void> {
    await super.init();
    this.address = resolveAddress(undefined, this.io.env);
    this.namespace = resolveNamespace(undefined, this.io.env);
    const ctor = this.ctor as typeof Command & { stopAtFirstArg?: boolean };
    const flagDefs = { ...ctor.baseFlags, ...ctor.flags };
    let argv = this.argv;
    if (ctor.stopAtFirstArg) {
      const split = endFlagsAtFirstArg(this.argv, flagDefs);
      argv = split.argv;
      this.dashDashFirst = split.dashDashFirst;
    }
    // Arguments never come from stdin: `echo x | ctr run ...` feeds the container, not the parser.
    const args = Object.fromEntries(
      Object.entries(ctor.args ?? {}).map(([k, a]) => [k, { ...a, ignoreStdin: true }]),
    );
    const parsed = await this.parse(
      { flags: ctor.flags, baseFlags: ctor.baseFlags, args, strict: ctor.strict, enableJsonFlag: false },
      argv,
    );
    // oclif lets unknown flags through as arguments when a command takes a variable number of them.
    const unknown = (parsed as { nonExistentFlags?: string[] }).nonExistentFlags ?? [];
    if (unknown.length > 0) {
      const id = this.id ?? ctor.id;
      const hint = id ? `\nsee '${this.config?.bin ?? 'ctr'} ${id.replaceAll(':', ' ')} --help'` : '';
      throw new UsageError(`nonexistent flag${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}${hint}`);
    }
    this.flags = parsed.flags as CtrFlags<T>;
    this.args = parsed.args as CtrArgs<T>;
    const declared = Object.keys(ctor.args ?? {}).length;
    this.rest = (parsed.argv as string[]).slice(declared);
    const global = parsed.flags as { address?: string; namespace?: string };
    this.address = resolveAddress(global.address, this.io.env);
    this.namespace = resolveNamespace(global.namespace, this.io.env);
  }

  /** Every positional argument in order, declared ones first (for commands whose args shift, like run). */
  protected get positionals(): string[] {
    const ctor = this.ctor as typeof Command;
    const declared = Object.keys(ctor.args ?? {}).map((k) => (this.args as Record<string, unknown>)[k]);
    return [...declared, ...this.rest].filter((a): a is string => typeof a === 'string');
  }

  /** The API clients, built on first use. */
  protected get clients(): Clients {
    const global = (this.flags ?? {}) as { timeout?: number; debug?: boolean };
    this.#clients ??= new Clients({
      address: this.address.value,
      namespace: this.namespace.value,
      timeoutMs: global.timeout,
      transport: this.io.transport,
      trace: global.debug ? (line) => this.io.stderr.write(`ctr: debug: ${line}\n`) : undefined,
    });
    return this.#clients;
  }

  /** Running as the real CLI (not under test): signal handlers and terminal modes are ours to set. */
  protected get interactive(): boolean {
    return this.io.stdin === process.stdin;
  }

  /** Data: stdout. */
  protected out(text: string): void {
    this.io.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
  }

  /** Progress and warnings: stderr. */
  protected note(text: string): void {
    this.io.stderr.write(`ctr: ${text}\n`);
  }

  protected printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
    this.out(formatTable(header, rows));
  }

  protected printJson(value: unknown): void {
    this.out(JSON.stringify(value, null, 2));
  }

  /** A mistake in how the command was called: `ctr: <message>`, exit 2. */
  protected usageError(message: string): never {
    throw new UsageError(message);
  }

  /** Ends the command with an exit code and no message (e.g. `run` passing on the container's status). */
  protected exitWith(code: number): never {
    throw new Errors.ExitError(code);
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    this.#clients?.close();
    await super.finally(err);
  }

  protected override async catch(err: Interfaces.CommandError): Promise<never> {
    if (err instanceof Errors.ExitError) throw err;
    const id = this.id ?? this.ctor.id;
    const command = id ? `${this.config?.bin ?? 'ctr'} ${id.replaceAll(':', ' ')}` : undefined;
    const { message, exitCode } = describeError(err, {
      address: this.address,
      timeoutMs: (this.flags as { timeout?: number } | undefined)?.timeout,
      command,
    });
    this.io.stderr.write(`ctr: ${message}\n`);
    if ((this.flags as { debug?: boolean } | undefined)?.debug && err instanceof Error && err.stack) {
      this.io.stderr.write(`${err.stack}\n`);
    }
    throw new Errors.ExitError(exitCode);
  }
}

interface FlagShape {
  type: string;
  char?: string;
}

/**
 * Inserts `--` before the first positional argument, skipping flag values. `dashDashFirst` tells
 * whether the user wrote `--` before any positional argument themselves.
 */
export function endFlagsAtFirstArg(
  argv: readonly string[],
  defs: Record<string, FlagShape>,
): { argv: string[]; dashDashFirst: boolean } {
  const takesValue = new Map<string, boolean>();
  for (const [name, def] of Object.entries(defs)) {
    const option = def.type !== 'boolean';
    takesValue.set(`--${name}`, option);
    if (def.char) takesValue.set(`-${def.char}`, option);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === '--') return { argv: [...out, ...argv.slice(i)], dashDashFirst: true };
    if (token.startsWith('-') && token !== '-') {
      out.push(token);
      if (token.includes('=')) continue;
      // `-tq` style bundles and `-n5` inline values: only a bare known option flag consumes the next token.
      if (takesValue.get(token) && i + 1 < argv.length) out.push(argv[++i] as string);
      continue;
    }
    return { argv: [...out, '--', ...argv.slice(i)], dashDashFirst: false };
  }
  return { argv: out, dashDashFirst: false };
}
