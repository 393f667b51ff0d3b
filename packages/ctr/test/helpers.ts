import { Writable } from 'node:stream';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type ConnectRouter, createRouterTransport } from '@connectrpc/connect';
import { type Command, Config } from '@oclif/core';
import type { CtrCommand } from '../src/base-command.js';

export const packageRoot = fileURLToPath(new URL('..', import.meta.url));

let config: Promise<Config> | undefined;

export class Capture extends Writable {
  chunks: string[] = [];
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.chunks.push(chunk.toString());
    done();
  }
  get text(): string {
    return this.chunks.join('');
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Fake services, served in memory. */
  routes?: (router: ConnectRouter) => void;
  env?: Record<string, string | undefined>;
  stdin?: string;
  /** Gives stdout a terminal size, as a tty would have. */
  size?: { columns: number; rows: number };
  /** Captures to write to, for a test that watches output while the command runs. */
  stdout?: Capture;
  stderr?: Capture;
}

interface CommandClass {
  new (argv: string[], config: Config): CtrCommand<typeof Command>;
  id: string;
}

/**
 * Runs `ctr <words...>` the way bin/run.js would: the command is found through oclif's manifest (so
 * aliases such as `c ls` are exercised), but its class is loaded from src so tests need no rebuild of
 * the command itself. Streams are captured; services are fakes served in memory.
 */
export async function runCtr(words: string[], options: RunOptions = {}): Promise<RunResult> {
  config ??= Config.load({ root: packageRoot });
  const cfg = await config;
  let found: Command.Loadable | undefined;
  let used = 0;
  for (let k = words.length; k > 0 && !found; k--) {
    found = cfg.findCommand(words.slice(0, k).join(':'));
    if (found) used = k;
  }
  if (!found) throw new Error(`no command for ${words.join(' ')}: is the manifest built (npm run build)?`);
  const relative = (found.relativePath ?? [])
    .join('/')
    .replace(/^dist\/(bundle\/)?/, '')
    .replace(/\.js$/, '.ts');
  const module = (await import(`../src/${relative}`)) as { default: CommandClass };
  const Cmd = module.default;
  Cmd.id = found.id;
  const stdout = options.stdout ?? new Capture();
  const stderr = options.stderr ?? new Capture();
  if (options.size) Object.assign(stdout, options.size);
  const cmd = new Cmd(words.slice(used), cfg);
  const code = await cmd.execute({
    stdout,
    stderr,
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    env: options.env ?? {},
    transport: createRouterTransport(options.routes ?? (() => {})),
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}
