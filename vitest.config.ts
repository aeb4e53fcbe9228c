import { defineConfig } from 'vitest/config';

// `npm test`: everything that needs Node alone. Tests that need a Python (`*.python.test.ts`) run
// under vitest.python.config.ts from `npm run test:python` / `npm run test:client`.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/**/*.python.test.ts', 'node_modules/**'],
    testTimeout: 30_000,
    pool: 'forks',
  },
});
