import { defineConfig } from 'vitest/config';

// Tests of AV1 through dav1d: they need an ffmpeg with libdav1d among the ones stageward finds
// (Debian: apt-get install -y ffmpeg). Each FAILS with that hint when there is none. `npm test`
// covers the choice of decoder with Node alone (a stand-in ffmpeg that lists libdav1d).
//   vitest run --config vitest.dav1d.config.ts
export default defineConfig({
  test: {
    include: ['test/**/*.dav1d.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
  },
});
