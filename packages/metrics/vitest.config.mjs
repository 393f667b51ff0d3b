import { testBudgets } from '../../scripts/vitest-budgets.mjs';

export default testBudgets({ realProcess: [] });
