import { Args } from '@oclif/core';
import { TasksService } from '@ctrd/api-proto/tasks';
import { CtrCommand } from '../../base-command.js';
import { jsonAnywayFlag } from '../../flags.js';
import { metricsJson } from '../../metrics-format.js';

/** containerd 0.x's `ctr containers stats ID`: the cgroup stats as JSON (same shape as `tasks metrics --json`). */
export default class ContainersStats extends CtrCommand<typeof ContainersStats> {
  static override summary = "print a container's cgroup stats as JSON (containerd 0.x style)";
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = { json: jsonAnywayFlag };

  async run(): Promise<void> {
    const res = await this.clients.get(TasksService).metrics({ filters: [`id==${this.args.id}`] });
    const metric = res.metrics[0];
    if (!metric) throw new Error(`task "${this.args.id}": no stats (is it running?)`);
    this.printJson(metricsJson(metric));
  }
}
