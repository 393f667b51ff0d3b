// Time budgets for every package's vitest suite (each package's vitest.config.mjs calls testBudgets).
//
// Tests that drive real processes (runc, containers, daemons, shims, registries, sh, tar, mount(8)…)
// or move bulk data through real sockets take whatever the machine gives them: on a busy 2-core
// machine a call that takes 50 ms alone can take seconds. They get a budget that fits a slow machine,
// and wait for what they need (an event, or a poll with a deadline) rather than for a fixed time.
// Pure unit tests keep a short budget, so a hung one still fails quickly.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Per test and per hook, for tests in memory. A file's first test also pays for importing what it
 * tests (ctr's commands through oclif took 2.7 s at load 8 on 2 cores).
 */
export const UNIT_BUDGET_MS = 20_000;
/** Per test and per hook, for test files that drive real processes. */
export const REAL_PROCESS_BUDGET_MS = 60_000;
/** Per test and per hook for e2e/, whose tests chain many processes (a daemon, ctr runs, shims, runc). */
export const E2E_BUDGET_MS = 120_000;

/** Timeouts for one kind of test; expect.poll waits up to half of the test's budget by default. */
function budget(ms) {
  return { testTimeout: ms, hookTimeout: ms, expect: { poll: { timeout: ms / 2, interval: 50 } } };
}

/**
 * The vitest config of a package whose test files are `test/**\/*.test.ts`: `realProcess` lists
 * (relative to the package) the files that drive real processes, which run as the `real-process`
 * project with REAL_PROCESS_BUDGET_MS; the rest run as the `unit` project with UNIT_BUDGET_MS.
 * `realProcess: 'all'` gives every file `allMs` (default REAL_PROCESS_BUDGET_MS) and no projects.
 */
export function testBudgets({ realProcess, allMs = REAL_PROCESS_BUDGET_MS }) {
  if (realProcess === 'all') return defineConfig({ test: budget(allMs) });
  for (const f of realProcess) {
    // A renamed file would silently fall back to the unit budget.
    if (!existsSync(resolve(f)))
      throw new Error(`vitest config: ${f} (listed as a real-process test) is missing`);
  }
  const include = ['test/**/*.test.ts'];
  const unit = {
    name: 'unit',
    include,
    exclude: [...configDefaults.exclude, ...realProcess],
    ...budget(UNIT_BUDGET_MS),
  };
  if (realProcess.length === 0) return defineConfig({ test: unit });
  return defineConfig({
    test: {
      projects: [
        { extends: true, test: unit },
        {
          extends: true,
          test: { name: 'real-process', include: realProcess, ...budget(REAL_PROCESS_BUDGET_MS) },
        },
      ],
    },
  });
}
