import { defineConfig } from 'vitest/config';

// `npm test`: everything that needs Node alone. Tests that need a Python (`*.python.test.ts`) run
// under vitest.python.config.ts from `npm run test:python` / `npm run test:client`; those that need
// nginx (`*.nginx.test.ts`) under vitest.nginx.config.ts from `npm run test:nginx`; those of the
// native JPEG decoder (`*.native.test.ts`) under vitest.native.config.ts from `npm run test:native`.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/**/*.python.test.ts', 'test/**/*.nginx.test.ts', 'test/**/*.native.test.ts', 'node_modules/**'],
    testTimeout: 30_000,
    pool: 'forks',
  },
});
