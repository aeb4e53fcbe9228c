// Mutation testing (npm run test:mutation): Stryker changes the pure modules below one small edit at
// a time (a flipped comparison, a dropped term, a constant) and runs the unit tests that cover each
// change; a change no test notices is a surviving mutant. Equivalent mutants (changes that cannot
// alter behaviour) are listed with their reasons in test/mutation/equivalent.json (scripts/mutation.ts scores the report).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts' },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  // Module-level initialisers (a TextDecoder's label, the encoder's options) run once at import, so
  // Stryker cannot switch them per test; they are not scored. Their behaviour is tested directly.
  ignoreStatic: true,
  mutate: [
    'models/shaping.ts',
    'models/progress.ts',
    'models/window.ts',
    'offline/rabc/weights.ts',
    'offline/eval/metrics.ts',
    'datasets/labels.ts',
    'server/msgpack.ts',
    'server/ndarray.ts',
    'server/native-session.ts',
    'server/openpi-session.ts',
  ],
  concurrency: 2,
  timeoutMS: 5000,
  reporters: ['clear-text', 'json', 'html', 'progress'],
  jsonReporter: { fileName: 'runs/mutation/mutation.json' },
  htmlReporter: { fileName: 'runs/mutation/mutation.html' },
  tempDirName: 'runs/mutation/.stryker-tmp',
  // Other runs' output and sandboxes are not part of the project copied into the sandbox.
  ignorePatterns: ['/runs/**'],
  incremental: true,
  incrementalFile: 'runs/mutation/stryker-incremental.json',
  thresholds: { high: 95, low: 90, break: null },
  cleanTempDir: 'always',
};
