import { Args } from '@oclif/core';
import { TasksService } from '@ctrd/api-proto/tasks';
import { aliasesOf } from '../../aliases.js';
import { CtrCommand } from '../../base-command.js';
import { jsonFlag } from '../../flags.js';
import { formatTable } from '../../table.js';
import { metricRows, metricsJson } from '../../metrics-format.js';

export default class TasksMetrics extends CtrCommand<typeof TasksMetrics> {
  static override summary = "one sample of a task's cgroup metrics";
  static override hiddenAliases = aliasesOf('tasks', ['metrics', 'metric']);
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = { json: jsonFlag };

  async run(): Promise<void> {
    const id = this.args.id;
    const res = await this.clients.get(TasksService).metrics({ filters: [`id==${id}`] });
    const metric = res.metrics[0];
    if (!metric) throw new Error(`task "${id}": no metrics (is it running?)`);
    const json = metricsJson(metric);
    if (this.flags.json) return this.printJson(json);
    const rows = metricRows(json);
    if (!rows) throw new Error(`task "${id}": metrics of type ${json.type} are not known to ctr: use --json`);
    this.out(
      `${formatTable(['ID', 'TIMESTAMP'], [[json.id, json.timestamp ?? '-']])}\n${formatTable(['METRIC', 'VALUE'], rows)}`,
    );
  }
}
