import { join } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { ContainersService } from '@ctrd/api-proto/containers';
import { CtrCommand } from '../base-command.js';
import { fileId, LOG_FILE_NAME, type LogRecord, readFrom } from '../log-reader.js';
import { findTask, isLive } from '../tasks-api.js';
import { parseSince } from '../time.js';
import { checkId } from '../identifiers.js';

export const DEFAULT_STATE_DIR = '/run/ctrd';

export default class Logs extends CtrCommand<typeof Logs> {
  static override summary = "print a container's output from the shim's log file";
  static override description =
    "stdout lines go to stdout and stderr lines to stderr. The log lives in the bundle under ctrd's state " +
    "dir (<state>/bundles/<namespace>/<id>/container.log), so ctr must run on the daemon's host.";
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = {
    follow: Flags.boolean({
      char: 'f',
      summary: 'keep printing new output until the task stops (or Ctrl-C)',
    }),
    tail: Flags.integer({ summary: 'only the last N lines', min: 0, helpValue: 'N' }),
    since: Flags.string({
      summary: 'only lines since TIME (RFC 3339, Unix seconds, or a duration ago like 10m)',
      helpValue: 'TIME',
    }),
    timestamps: Flags.boolean({ summary: 'prefix each line with its time' }),
    json: Flags.boolean({ summary: 'print the log records as JSON lines: { time, stream, log }' }),
    'state-dir': Flags.string({
      summary: `ctrd's state directory [env: CTRD_STATE_DIR] [default: ${DEFAULT_STATE_DIR}]`,
      helpValue: 'DIR',
    }),
  };

  async run(): Promise<void> {
    const id = checkId(this.args.id, 'container');
    checkId(this.clients.namespace, 'namespace');
    const stateDir = this.flags['state-dir'] ?? this.io.env.CTRD_STATE_DIR ?? DEFAULT_STATE_DIR;
    const path = join(stateDir, 'bundles', this.clients.namespace, id, LOG_FILE_NAME);
    const since = this.flags.since === undefined ? undefined : parseSince(this.flags.since).getTime();
    const keep = (r: LogRecord) => since === undefined || Date.parse(r.time) >= since;

    const rotated = await readFrom(`${path}.1`, 0);
    const current = await readFrom(path, 0);
    if (!(await fileId(path)) && !(await fileId(`${path}.1`))) {
      // Distinguish "no such container" from "no output yet".
      await this.clients.get(ContainersService).get({ id });
      if (!this.flags.follow) {
        this.note(`container "${id}" has no log yet at ${path} (has its task run? is --state-dir right?)`);
        return;
      }
    }
    let records = [...rotated.records, ...current.records].filter(keep);
    if (this.flags.tail !== undefined) records = this.flags.tail === 0 ? [] : records.slice(-this.flags.tail);
    for (const r of records) this.print(r);
    if (this.flags.follow) await this.follow(path, current.offset, keep);
  }

  private print(r: LogRecord): void {
    if (this.flags.json) {
      this.io.stdout.write(`${JSON.stringify(r)}\n`);
      return;
    }
    const text = this.flags.timestamps ? `${r.time} ${r.log}` : r.log;
    (r.stream === 'stderr' ? this.io.stderr : this.io.stdout).write(text);
  }

  private async follow(path: string, start: number, keep: (r: LogRecord) => boolean): Promise<void> {
    let offset = start;
    let ino = (await fileId(path))?.ino;
    let stop = false;
    const onSignal = () => {
      stop = true;
    };
    process.once('SIGINT', onSignal);
    let quiet = 0;
    try {
      while (!stop) {
        const id = await fileId(path);
        if (id && ino !== undefined && id.ino !== ino) {
          // Rotated: finish what was appended to the old file (now `.1`) before starting the new one.
          const old = await fileId(`${path}.1`);
          if (old?.ino === ino) {
            const rest = await readFrom(`${path}.1`, offset);
            for (const r of rest.records) if (keep(r)) this.print(r);
          }
          offset = 0;
        }
        if (id) ino = id.ino;
        const next = await readFrom(path, offset);
        offset = next.offset;
        for (const r of next.records) if (keep(r)) this.print(r);
        quiet = next.records.length > 0 ? 0 : quiet + 1;
        // After a quiet second, see whether there is still a task to wait for.
        if (quiet >= 4) {
          quiet = 0;
          const task = await findTask(this.clients, this.args.id);
          if (!task || !isLive(task.status)) {
            const last = await readFrom(path, offset);
            for (const r of last.records) if (keep(r)) this.print(r);
            return;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    } finally {
      process.off('SIGINT', onSignal);
    }
  }
}
