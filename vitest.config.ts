import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// `npm test`: everything that needs Node alone. Tests that need a Python (`*.python.test.ts`) run
// under vitest.python.config.ts from `npm run test:python` / `npm run test:client`; those that need
// nginx (`*.nginx.test.ts`) under vitest.nginx.config.ts from `npm run test:nginx`; those of the
// native JPEG decoder (`*.native.test.ts`) under vitest.native.config.ts from `npm run test:native`;
// those of AV1 through a system ffmpeg with dav1d (`*.dav1d.test.ts`) under vitest.dav1d.config.ts
// from `npm run test:dav1d`; the simulator-in-the-loop suites (`*.sim.test.ts`, Node alone but slow)
// from `npm run test:sim`.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [
      'test/**/*.python.test.ts',
      'test/**/*.nginx.test.ts',
      'test/**/*.native.test.ts',
      'test/**/*.dav1d.test.ts',
      'test/**/*.sim.test.ts',
      'test/**/*.browser.test.ts',
      'node_modules/**',
    ],
    testTimeout: 30_000,
    pool: 'forks',
    // vitest's default leaves a core free, which on a 2-core machine is one worker: half the speed.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
