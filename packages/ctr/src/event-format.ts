import type { Envelope } from '@ctrd/api-proto/events';
import { anyToJson } from './container-json.js';
import { isoTime } from './time.js';

/** containerd 0.x's event type names, where a v1 topic has one. */
const V0_TYPES: Record<string, string> = {
  '/tasks/start': 'start-container',
  '/tasks/exit': 'exit',
  '/tasks/exec-started': 'start-process',
  '/tasks/paused': 'pause',
  '/tasks/resumed': 'resume',
  '/tasks/oom': 'oom',
};

export interface EventJson {
  timestamp?: string;
  namespace: string;
  topic: string;
  /** containerd 0.x's name (exit, start-container, ...) or the topic without its leading slash. */
  type: string;
  /** The object the event is about: container id, or namespace/image name, snapshot key, digest. */
  id: string;
  pid?: number;
  /** Exit status, for /tasks/exit and /tasks/delete. */
  status?: number;
  /** The payload in proto3 JSON (camelCase); `{ typeUrl }` when ctr does not know its type. */
  event?: unknown;
}

export function eventJson(env: Envelope): EventJson {
  let payload: unknown;
  try {
    payload = anyToJson(env.event);
  } catch {
    payload = env.event ? { typeUrl: env.event.typeUrl } : undefined;
  }
  const fields = (payload ?? {}) as Record<string, unknown>;
  const str = (key: string) => (typeof fields[key] === 'string' ? (fields[key] as string) : '');
  const id = str('containerId') || str('id') || str('name') || str('key') || str('digest');
  const out: EventJson = {
    namespace: env.namespace,
    topic: env.topic,
    type: V0_TYPES[env.topic] ?? env.topic.replace(/^\//, ''),
    id,
  };
  const ts = isoTime(env.timestamp);
  if (ts) out.timestamp = ts;
  if (typeof fields.pid === 'number' && fields.pid > 0) out.pid = fields.pid;
  if (env.topic === '/tasks/exit' || env.topic === '/tasks/delete') {
    out.status = typeof fields.exitStatus === 'number' ? fields.exitStatus : 0;
  }
  if (payload !== undefined) out.event = payload;
  return { timestamp: out.timestamp, ...out };
}

const WIDTHS = [20, 24, 10];

/** One aligned line; widths are fixed because rows arrive one at a time. */
export function eventRow(cells: string[]): string {
  return `${cells
    .map((cell, i) =>
      i === cells.length - 1 ? cell : cell.padEnd(Math.max((WIDTHS[i] ?? 16) - 1, cell.length) + 1),
    )
    .join('')
    .trimEnd()}\n`;
}
