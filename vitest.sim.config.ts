import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// The simulator-in-the-loop suites (`*.sim.test.ts`: RL learning, the reward bridge, expert and
// rollout episodes, recording): Node alone, like `npm test`, but minutes of simulation, so they run
// from `npm run test:sim` (and `.ci/run`) to keep `npm test` fast.
//   vitest run --config vitest.sim.config.ts
export default defineConfig({
  test: {
    include: ['test/**/*.sim.test.ts'],
    testTimeout: 120_000,
    pool: 'forks',
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
