#!/usr/bin/env node
// `postinstall` (and `npm run build:native`): build the optional native JPEG decoder
// (native/jpeg, libjpeg-turbo) with node-gyp. It only accelerates: without libturbojpeg's headers,
// or when the build fails, it prints one line and exits 0, and stageward decodes with sharp.
// Node's headers come from the running Node's own install when they are there (no download, so it
// works offline); otherwise node-gyp fetches them as usual. STAGEWARD_NATIVE_JPEG=0 skips the build.
// Plain JavaScript: it runs before anything is installed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'native', 'jpeg');
const say = (line) => console.error(`stageward: ${line}`);
const off = (process.env.STAGEWARD_NATIVE_JPEG ?? '').trim().toLowerCase();

if (off === '0' || off === 'off' || off === 'false') process.exit(0);
const headers = ['/usr/include/turbojpeg.h', '/usr/local/include/turbojpeg.h', '/opt/homebrew/include/turbojpeg.h'];
if (!headers.some((h) => existsSync(h))) {
  say('native JPEG decoder not built (no turbojpeg.h; Debian: apt-get install libturbojpeg0-dev); JPEG frames decode with sharp');
  process.exit(0);
}
const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter((p) => p && existsSync(p));
if (candidates.length === 0) {
  say('native JPEG decoder not built (node-gyp not found); JPEG frames decode with sharp');
  process.exit(0);
}
const prefix = resolve(dirname(process.execPath), '..');
const args = [candidates[0], 'rebuild', '--directory', dir];
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000 });
if (r.status !== 0) {
  const last =
    `${r.stderr ?? ''}${r.stdout ?? ''}`
      .trim()
      .split('\n')
      .filter((l) => /error/i.test(l))
      .at(-1) ?? `exit ${r.status}`;
  say(`native JPEG decoder not built (${last.trim().slice(0, 200)}); JPEG frames decode with sharp`);
  process.exit(0);
}
say('built the native JPEG decoder (libjpeg-turbo)');
