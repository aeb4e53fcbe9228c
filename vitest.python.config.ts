import { defineConfig } from 'vitest/config';

// Tests that need a Python interpreter with packages (torch for the trainer; numpy, msgpack and
// websockets for the Python clients). Each FAILS with an install hint when its Python is missing.
//   vitest run --config vitest.python.config.ts [file filter]
export default defineConfig({
  test: {
    include: ['test/**/*.python.test.ts'],
    testTimeout: 120_000,
    pool: 'forks',
  },
});
