/** The names containerd's ctr accepts for each topic. */
export const TOPIC_NAMES = {
  containers: ['containers', 'container', 'c'],
  tasks: ['tasks', 'task', 't'],
  namespaces: ['namespaces', 'namespace', 'ns'],
  leases: ['leases', 'lease'],
  checkpoints: ['checkpoints', 'checkpoint'],
  images: ['images', 'image', 'i'],
  content: ['content'],
  snapshots: ['snapshots', 'snapshot'],
} as const;

export type Topic = keyof typeof TOPIC_NAMES;

/**
 * Every spelling of `topic verb` except the canonical one (oclif registers that from the file path):
 * `aliasesOf('containers', ['ls', 'list'])` gives `c:ls`, `container:list`, ... as oclif ids.
 */
export function aliasesOf(topic: Topic, verbs: readonly string[]): string[] {
  const canonical = `${topic}:${verbs[0]}`;
  const out: string[] = [];
  for (const t of TOPIC_NAMES[topic]) {
    for (const v of verbs) {
      const id = `${t}:${v}`;
      if (id !== canonical) out.push(id);
    }
  }
  return out;
}

/** Aliases of a topic's own command (`ctr c`, `ctr container`). */
export function topicAliases(topic: Topic): string[] {
  return TOPIC_NAMES[topic].filter((name) => name !== topic);
}
