import { defineConfig } from 'vitest/config';

// Tests that need a real nginx (Debian: apt-get install -y nginx; or NGINX_PATH): replicas behind
// deploy/nginx.conf. Each FAILS with the install hint when nginx is missing.
//   vitest run --config vitest.nginx.config.ts
export default defineConfig({
  test: {
    include: ['test/**/*.nginx.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
  },
});
