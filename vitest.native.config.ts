import { defineConfig } from 'vitest/config';

// Tests of the native JPEG decoder (native/jpeg, libjpeg-turbo): they need it built (Debian:
// apt-get install -y libturbojpeg0-dev, then npm run build:native). Each FAILS with that hint when it
// is not. `npm test` covers the sharp fallback with Node alone.
//   vitest run --config vitest.native.config.ts
export default defineConfig({
  test: {
    include: ['test/**/*.native.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
  },
});
