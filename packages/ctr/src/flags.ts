import { Flags } from '@oclif/core';
import { DEFAULT_ADDRESS, DEFAULT_NAMESPACE } from './address.js';
import { parseDuration } from './duration.js';

const GLOBAL = 'GLOBAL';

export const duration = Flags.custom<number>({
  parse: async (input) => parseDuration(input),
});

/** On every command, as in containerd's ctr; defaults come from the environment, resolved in the base command. */
export const globalFlags = {
  address: Flags.string({
    char: 'a',
    summary: `address of the daemon's socket [env: CTRD_ADDRESS, CONTAINERD_ADDRESS] [default: ${DEFAULT_ADDRESS}]`,
    helpGroup: GLOBAL,
    helpValue: 'PATH',
  }),
  namespace: Flags.string({
    char: 'n',
    summary: `namespace to work in [env: CTRD_NAMESPACE, CONTAINERD_NAMESPACE] [default: ${DEFAULT_NAMESPACE}]`,
    helpGroup: GLOBAL,
    helpValue: 'NAME',
  }),
  timeout: duration({
    summary: 'deadline for each call to the daemon, e.g. 10s, 500ms (none by default)',
    helpGroup: GLOBAL,
    helpValue: 'DURATION',
  }),
  debug: Flags.boolean({
    summary: 'print each API call and its outcome on stderr',
    helpGroup: GLOBAL,
  }),
};

export const jsonFlag = Flags.boolean({ summary: 'print the result as JSON (shapes in the README)' });
/** On commands whose output is JSON anyway: accepted, so that --json can go on every data command. */
export const jsonAnywayFlag = Flags.boolean({ summary: 'print the result as JSON (it always is here)' });
export const quietFlag = Flags.boolean({ char: 'q', summary: 'print only ids, one per line' });
export const allNamespacesFlag = Flags.boolean({
  char: 'A',
  summary: 'list across every namespace (adds a NAMESPACE column)',
});
