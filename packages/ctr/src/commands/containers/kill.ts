import { Args, Flags } from '@oclif/core';
import { anyIs, unpackAnyAs } from '@ctrd/api-proto/client';
import { ProcessDetailsSchema } from '@ctrd/api-proto/runc-options';
import { TasksService } from '@ctrd/api-proto/tasks';
import { CtrCommand } from '../../base-command.js';
import { parseSignal } from '../../signals.js';

/** containerd 0.x's `ctr containers kill [--pid/-p PID] [--signal/-s 15] ID`. */
export default class ContainersKill extends CtrCommand<typeof ContainersKill> {
  static override summary =
    "signal a container's process (containerd 0.x style): the init process, or the one with --pid";
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = {
    pid: Flags.integer({
      char: 'p',
      summary: 'process to signal; 0 is the init process',
      default: 0,
      min: 0,
    }),
    signal: Flags.string({ char: 's', summary: 'signal name or number', default: '15', helpValue: 'SIGNAL' }),
  };

  async run(): Promise<void> {
    const tasks = this.clients.get(TasksService);
    const containerId = this.args.id;
    let execId = '';
    if (this.flags.pid !== 0) {
      // v1 names processes by exec id; containerd 0.x named them by pid.
      const res = await tasks.listPids({ containerId });
      const proc = res.processes.find((p) => p.pid === this.flags.pid);
      if (!proc) throw new Error(`container "${containerId}": no process with pid ${this.flags.pid}`);
      if (anyIs(proc.info, ProcessDetailsSchema))
        execId = unpackAnyAs(proc.info, ProcessDetailsSchema).execId;
    }
    await tasks.kill({ containerId, execId, signal: parseSignal(this.flags.signal), all: false });
  }
}
