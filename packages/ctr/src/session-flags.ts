import { Flags } from '@oclif/core';
import { DEFAULT_FIFO_DIR } from './fifo-io.js';

/** How a started process's stdio is wired (containerd ctr's names). */
export const sessionFlags = {
  detach: Flags.boolean({
    char: 'd',
    summary: 'start and return; output goes to the task log (ctr logs)',
  }),
  'null-io': Flags.boolean({
    summary: 'send the process no input and discard nothing to ctr: no fifos at all',
  }),
  'fifo-dir': Flags.string({
    summary: `directory for the stdio fifos [default: ${DEFAULT_FIFO_DIR}, or the temp dir when not root]`,
    helpValue: 'DIR',
  }),
};
