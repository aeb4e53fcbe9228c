import { defineConfig } from 'vitest/config';

// Tests of the live dashboard in a real browser (Debian: apt-get install -y chromium; or
// CHROMIUM_PATH), driven by playwright-core against `stageward start` child processes. Each FAILS
// with the install hint when chromium is missing. Screenshots go to runs/browser/.
//   vitest run --config vitest.browser.config.ts
export default defineConfig({
  test: {
    include: ['test/browser/**/*.browser.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 150_000,
    pool: 'forks',
  },
});
