import { Args, Flags } from '@oclif/core';
import { isCanceled, isNotImplemented, toTimestamp } from '@ctrd/api-proto/client';
import { EventHistoryService } from '@ctrd/api-proto/eventhistory';
import { type Envelope, EventsService } from '@ctrd/api-proto/events';
import { CtrCommand } from '../base-command.js';
import { eventJson, eventRow } from '../event-format.js';
import { allNamespacesFlag } from '../flags.js';
import { parseSince } from '../time.js';

export default class Events extends CtrCommand<typeof Events> {
  static override summary = 'print events as they happen: TYPE  ID  PID  STATUS';
  static override description =
    'Filters use containerd\'s syntax (topic=="/tasks/exit", event.container_id==web, topic~="/tasks/"); several are ORed. ' +
    'Only the current namespace is shown unless -A. --since replays recorded events first (ctrd only).';
  static override hiddenAliases = ['event'];
  static override strict = false;
  static override args = { filter: Args.string({ description: 'event filter' }) };
  static override usage = '<%= command.id %> [--since TIME] [FILTER...]';
  static override flags = {
    json: Flags.boolean({ summary: 'one JSON object per line (shape in the README)' }),
    'all-namespaces': allNamespacesFlag,
    since: Flags.string({
      summary: 'replay events since TIME (RFC 3339, Unix seconds or a duration ago like 10m), then follow',
      helpValue: 'TIME',
    }),
    follow: Flags.boolean({
      summary: 'with --since: keep printing live events after the replay',
      default: true,
      allowNo: true,
    }),
  };

  async run(): Promise<void> {
    const all = this.flags['all-namespaces'];
    const user = [this.args.filter, ...this.rest].filter((f): f is string => f !== undefined && f !== '');
    const scope = all ? '' : `namespace==${this.clients.namespace}`;
    // Filters are ORed strings of ANDed selectors, so the namespace goes into each one.
    const filters = scope === '' ? user : user.length === 0 ? [scope] : user.map((f) => `${scope},${f}`);
    if (!this.flags.json) {
      this.note(
        all ? 'events in all namespaces' : `events in namespace "${this.clients.namespace}"; -A for all`,
      );
      this.out(eventRow([...(all ? ['NAMESPACE'] : []), 'TYPE', 'ID', 'PID', 'STATUS']));
    }
    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const stream: AsyncIterable<Envelope> =
        this.flags.since === undefined
          ? this.clients.get(EventsService).subscribe({ filters }, { signal: abort.signal })
          : this.clients
              .get(EventHistoryService)
              .replay(
                { since: toTimestamp(parseSince(this.flags.since)), filters, follow: this.flags.follow },
                { signal: abort.signal },
              );
      for await (const env of stream) this.print(env, all);
    } catch (err) {
      if (abort.signal.aborted || isCanceled(err)) return;
      if (this.flags.since !== undefined && isNotImplemented(err)) {
        throw new Error(
          '--since: this daemon keeps no event history (ctrd serves EventHistory; containerd does not): drop --since',
          { cause: err },
        );
      }
      throw err;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  }

  private print(env: Envelope, all: boolean): void {
    const event = eventJson(env);
    if (this.flags.json) {
      this.out(JSON.stringify(event));
      return;
    }
    this.out(
      eventRow([
        ...(all ? [event.namespace] : []),
        event.type,
        event.id,
        event.pid === undefined ? '' : String(event.pid),
        event.status === undefined ? '' : String(event.status),
      ]),
    );
  }
}
