import { E2E_BUDGET_MS, testBudgets } from '../scripts/vitest-budgets.mjs';

// Every e2e test drives real processes: a daemon, ctr runs, shims, runc, registries, containerd.
export default testBudgets({ realProcess: 'all', allMs: E2E_BUDGET_MS });
