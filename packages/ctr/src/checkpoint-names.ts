/** Checkpoints are images named containerd.io/checkpoint/<container>:<name>, as containerd stores them. */
export const CHECKPOINT_LABEL = 'containerd.io/checkpoint';
export const CHECKPOINT_PREFIX = 'containerd.io/checkpoint/';
/** What containerd 0.x's ctr showed per checkpoint, kept as labels on the image. */
export const OPTION_LABELS = {
  tcp: 'ctrd.io/checkpoint.tcp',
  unixSockets: 'ctrd.io/checkpoint.unix-sockets',
  shell: 'ctrd.io/checkpoint.shell',
  exit: 'ctrd.io/checkpoint.exit',
} as const;

export function checkpointImage(containerId: string, name: string): string {
  return `${CHECKPOINT_PREFIX}${containerId}:${name}`;
}
