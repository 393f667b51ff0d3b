import { NamespacesService } from '@ctrd/api-proto/namespaces';
import type { Clients } from './clients.js';

export interface Scoped<T> {
  namespace: string;
  item: T;
}

export interface ScopeOptions<T> {
  clients: Clients;
  /** Plural noun for messages: "containers", "tasks", "leases". */
  noun: string;
  /** -A: every namespace. */
  all: boolean;
  /** Skips the "showing ... in namespace" line (for -q and --json, whose readers are scripts). */
  quiet: boolean;
  list: (clients: Clients) => Promise<T[]>;
  note: (text: string) => void;
}

export async function namespaceNames(clients: Clients): Promise<string[]> {
  const res = await clients.get(NamespacesService).list({});
  return res.namespaces.map((ns) => ns.name).sort();
}

/**
 * Lists objects in the current namespace (or all, with -A) and says on stderr which namespace was
 * shown. An empty result names the namespaces that do hold such objects, because "nothing here"
 * is most often "wrong -n".
 */
export async function listInScope<T>(options: ScopeOptions<T>): Promise<Scoped<T>[]> {
  const { clients, noun, note } = options;
  if (options.all) {
    const out: Scoped<T>[] = [];
    for (const namespace of await namespaceNames(clients)) {
      for (const item of await options.list(clients.inNamespace(namespace))) out.push({ namespace, item });
    }
    if (out.length === 0) note(`no ${noun} in any namespace`);
    return out;
  }
  const namespace = clients.namespace;
  const items = await options.list(clients);
  if (items.length > 0) {
    if (!options.quiet) note(`showing ${noun} in namespace "${namespace}"; -n NAME or -A for others`);
    return items.map((item) => ({ namespace, item }));
  }
  const elsewhere: string[] = [];
  try {
    for (const other of await namespaceNames(clients)) {
      if (other === namespace) continue;
      const count = (await options.list(clients.inNamespace(other))).length;
      if (count > 0) elsewhere.push(`"${other}" (${count})`);
    }
  } catch {
    // The hint is a courtesy; a daemon that cannot list namespaces still gets the plain message.
  }
  note(
    elsewhere.length > 0
      ? `no ${noun} in namespace "${namespace}"; there are some in ${elsewhere.join(', ')}: use -n NAME or -A`
      : `no ${noun} in namespace "${namespace}" (nor in any other)`,
  );
  return [];
}
