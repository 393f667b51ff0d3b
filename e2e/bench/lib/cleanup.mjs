// One stack of undo steps per bench: each resource registers its removal as it is made, the bench
// pops them when done with a stage, and Ctrl-C (SIGINT) or SIGTERM runs what is left before exiting.

const stack = [];
const aborter = new AbortController();

/** Aborted on Ctrl-C: loops that start containers stop taking new work. */
export const benchSignal = aborter.signal;
let running;

/** Registers `fn`; returns a function that runs it now and unregisters it. */
export function defer(label, fn) {
  const entry = { label, fn };
  stack.push(entry);
  return async () => {
    const i = stack.indexOf(entry);
    // Already taken by cleanupAll (Ctrl-C): wait for it instead of racing it.
    if (i === -1) return running;
    stack.splice(i, 1);
    await fn();
  };
}

/** Runs every registered step, newest first; a failing step is reported and the rest still run. */
export function cleanupAll() {
  running ??= (async () => {
    while (stack.length > 0) {
      const { label, fn } = stack.pop();
      try {
        await fn();
      } catch (e) {
        process.stderr.write(`cleanup ${label}: ${e?.message ?? e}\n`);
      }
    }
    running = undefined;
  })();
  return running;
}

export function installSignalHandlers() {
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: removing what the bench started…\n`);
      aborter.abort(new Error(`${sig}: bench interrupted`));
      // A second Ctrl-C while cleaning up exits at once.
      process.once(sig, () => process.exit(130));
      void cleanupAll().finally(() => process.exit(130));
    });
  }
}

/**
 * A bench's main: Ctrl-C handling, `body`, then everything it started removed; an error is printed
 * under `name` and the process exits 1, else 0.
 */
export async function runBench(name, body) {
  installSignalHandlers();
  let failed = false;
  try {
    await body();
  } catch (e) {
    failed = true;
    process.stderr.write(`${name}: ${e?.stack ?? e}\n`);
  } finally {
    await cleanupAll();
  }
  process.exit(failed ? 1 : 0);
}
