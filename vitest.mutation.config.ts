import { defineConfig } from 'vitest/config';

// The unit tests behind mutation testing (stryker.config.mjs, npm run test:mutation): the ones that
// cover the mutated pure modules and run in milliseconds to seconds, so that each mutant is judged by
// the tests a user's bug would meet first.
export default defineConfig({
  test: {
    include: [
      'test/models/shaping.test.ts',
      'test/models/progress.test.ts',
      'test/models/window.test.ts',
      'test/models/parity.test.ts',
      'test/models/engine.test.ts',
      'test/offline/rabc/weights.test.ts',
      'test/offline/eval/metrics.test.ts',
      'test/datasets/labels.test.ts',
      'test/datasets/label-vectors.test.ts',
      'test/datasets/label-checks.test.ts',
      'test/server/codec.test.ts',
      'test/server/msgpack.test.ts',
      'test/server/ndarray.test.ts',
      'test/server/observations.test.ts',
      'test/server/native-session.test.ts',
      'test/server/openpi-session.test.ts',
    ],
    testTimeout: 60_000,
  },
});
