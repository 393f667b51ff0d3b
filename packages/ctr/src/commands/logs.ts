import { Args, Flags } from '@oclif/core';
import { fromTimestamp, isCanceled, isNotImplemented, toTimestamp } from '@ctrd/api-proto/client';
import { type LogEntry, LogStream, LogsService } from '@ctrd/api-proto/logs';
import { CtrCommand } from '../base-command.js';
import { checkId } from '../identifiers.js';
import { parseSince } from '../time.js';

const STREAMS = { stdout: LogStream.STDOUT, stderr: LogStream.STDERR } as const;

export default class Logs extends CtrCommand<typeof Logs> {
  static override summary = "print a container's output: stdout to stdout, stderr to stderr";
  static override description =
    'The output comes from the daemon (its Logs service), so ctr can run anywhere the socket reaches, ' +
    'and it is there for tasks started by any client, stock ctr included. It is kept while the task exists: ' +
    "'ctr tasks rm' (or 'run --rm') deletes it. A stock containerd keeps no output.";
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = {
    follow: Flags.boolean({
      char: 'f',
      summary: 'keep printing new output until the task has exited (or Ctrl-C)',
    }),
    tail: Flags.integer({ summary: 'only the last N lines', min: 0, helpValue: 'N' }),
    since: Flags.string({
      summary: 'only lines since TIME (RFC 3339, Unix seconds, or a duration ago like 10m)',
      helpValue: 'TIME',
    }),
    stream: Flags.string({ summary: 'only this stream', options: ['stdout', 'stderr'] }),
    timestamps: Flags.boolean({ summary: 'prefix each line with its time' }),
    json: Flags.boolean({ summary: 'print the lines as JSON, one per line: { time, stream, log }' }),
    // Earlier versions read the log file under the state dir; accepted so that scripts keep working.
    'state-dir': Flags.string({ hidden: true }),
  };

  async run(): Promise<void> {
    const id = checkId(this.args.id, 'container');
    if (this.flags['state-dir'] !== undefined) {
      this.note('--state-dir is ignored: the output comes from the daemon now');
    }
    const since = this.flags.since === undefined ? undefined : parseSince(this.flags.since);
    const stream = this.flags.stream as keyof typeof STREAMS | undefined;
    const abort = new AbortController();
    const stop = () => abort.abort();
    if (this.flags.follow) {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    }
    try {
      const answers = this.clients.get(LogsService).read(
        {
          containerId: id,
          since: toTimestamp(since),
          tail: this.flags.tail,
          follow: this.flags.follow,
          streams: stream ? [STREAMS[stream]] : [],
        },
        { signal: abort.signal },
      );
      for await (const answer of answers) for (const entry of answer.entries) this.print(entry);
    } catch (err) {
      if (abort.signal.aborted || isCanceled(err)) return;
      // grpc-go's answer for a service it does not serve (a stock containerd).
      if (isNotImplemented(err) && /unknown service/i.test((err as Error).message)) {
        throw new Error(
          `the daemon at ${this.address.value} keeps no container output (it serves no ctrd.services.logs.v1.Logs): ` +
            'a stock containerd keeps none; read the output when the task runs (ctr run, ctr tasks start)',
          { cause: err },
        );
      }
      throw err;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  }

  private print(entry: LogEntry): void {
    const stream = entry.stream === LogStream.STDERR ? 'stderr' : 'stdout';
    const time = fromTimestamp(entry.time)?.toISOString() ?? '';
    if (this.flags.json) {
      this.io.stdout.write(`${JSON.stringify({ time, stream, log: entry.line })}\n`);
      return;
    }
    const text = this.flags.timestamps ? `${time} ${entry.line}` : entry.line;
    (stream === 'stderr' ? this.io.stderr : this.io.stdout).write(text);
  }
}
