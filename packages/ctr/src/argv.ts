const VALUE_FLAGS = new Set(['-a', '--address', '-n', '--namespace', '--timeout']);
// --json is not on every command, only on those whose result is data; hoisted like the others.
const BOOLEAN_FLAGS = new Set(['--debug', '--json']);

/**
 * containerd's ctr takes its global flags before the command (`ctr -n k8s.io c ls`); oclif finds the
 * command first. This moves leading global flags to just after the command's words, so both orders
 * work. `isCommand` tells whether words joined by ':' name a command (oclif's findCommand).
 */
export function hoistGlobalFlags(argv: readonly string[], isCommand: (id: string) => boolean): string[] {
  const globals: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const token = argv[i] as string;
    const name = token.includes('=') ? token.slice(0, token.indexOf('=')) : token;
    if (BOOLEAN_FLAGS.has(token)) {
      globals.push(token);
      i += 1;
    } else if (VALUE_FLAGS.has(name)) {
      if (token.includes('=')) {
        globals.push(token);
        i += 1;
      } else if (i + 1 < argv.length) {
        globals.push(token, argv[i + 1] as string);
        i += 2;
      } else break;
    } else break;
  }
  if (globals.length === 0) return [...argv];
  const rest = argv.slice(i);
  let words = 0;
  for (let k = 1; k <= rest.length; k++) {
    const word = rest[k - 1] as string;
    if (word.startsWith('-')) break;
    if (isCommand(rest.slice(0, k).join(':'))) words = k;
  }
  // No command given: `ctr -a X` alone shows the help, as containerd's ctr does.
  if (rest.length === 0) return [];
  // Not a command: keep the words first so oclif reports the unknown command, not the flag.
  if (words === 0) return [...rest, ...globals];
  return [...rest.slice(0, words), ...globals, ...rest.slice(words)];
}
