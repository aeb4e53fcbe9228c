// A real nginx on loopback in front of stageward replicas, for `bench scale` and `npm run test:nginx`.
// It runs deploy/nginx.conf as shipped: the only edits are the `listen` port and the upstream's
// `server` lines (each replica's port, with the file's own parameters), and each edit must match,
// so the file cannot drift from what is tested. A small main config around it keeps everything
// (pid, logs, temp files) in a temporary folder, so no root and no /etc/nginx are needed.
//
//   const nginx = await startNginx([8101, 8102, 8103]);   // nginx.url: http://127.0.0.1:<port>
//   await nginx.stop();
//
// nginx is found at NGINX_PATH, else `nginx` on PATH, else /usr/sbin/nginx (Debian: apt-get install nginx).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../core/paths.ts';

export const NGINX_CONF = join(REPO_ROOT, 'deploy', 'nginx.conf');
const START_TIMEOUT_MS = 15_000;

/** The nginx binary, or an error that says how to install it. */
export function findNginx(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [env.NGINX_PATH, 'nginx', '/usr/sbin/nginx'].filter((c): c is string => c !== undefined && c !== '');
  for (const c of candidates) {
    if (c.includes('/') && !existsSync(c)) continue;
    const r = spawnSync(c, ['-v'], { stdio: 'ignore', timeout: 10_000 });
    if (r.status === 0) return c;
  }
  throw new Error('nginx not found: install it (Debian: apt-get install -y nginx) or set NGINX_PATH to its binary');
}

/** deploy/nginx.conf with `listen` on `port` and one upstream `server` line per replica port. */
export function adaptNginxConf(text: string, port: number, upstreams: readonly number[]): string {
  if (upstreams.length === 0) throw new Error('adaptNginxConf: no upstream ports');
  const listen = /^(\s*)listen\s+\d+;/m;
  if (!listen.test(text)) throw new Error('deploy/nginx.conf: no `listen <port>;` line to point at the test port');
  const servers = [...text.matchAll(/^(\s*)server\s+127\.0\.0\.1:\d+(\s[^;]*)?;\n/gm)];
  if (servers.length === 0) throw new Error('deploy/nginx.conf: no `server 127.0.0.1:<port> ...;` upstream lines to replace');
  const [indent, params] = [servers[0]![1]!, servers[0]![2] ?? ''];
  const lines = upstreams.map((p) => `${indent}server 127.0.0.1:${p}${params};\n`).join('');
  const first = servers[0]!.index;
  const last = servers.at(-1)!;
  const between = text.slice(first, last.index + last[0].length);
  if (between.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#') && !/^\s*server\s/.test(l)).length > 0)
    throw new Error('deploy/nginx.conf: the upstream `server` lines must stand together');
  return (text.slice(0, first) + lines + text.slice(last.index + last[0].length)).replace(listen, `$1listen 127.0.0.1:${port};`);
}

/** A free TCP port on 127.0.0.1 (closed again before nginx binds it; a clash is retried by startNginx). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function mainConf(dir: string, site: string): string {
  // Running as root (CI containers), the master would hand the workers to `nobody`; keep root so they
  // can use the temporary folder. As another user the directive is ignored, so leave it out.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path ${join(dir, 'body')};
    proxy_temp_path ${join(dir, 'proxy')};
    fastcgi_temp_path ${join(dir, 'fastcgi')};
    uwsgi_temp_path ${join(dir, 'uwsgi')};
    scgi_temp_path ${join(dir, 'scgi')};
    include ${site};
}
`;
}

/** Write the main config and the site file into `dir`; returns the main config's path. */
export async function writeNginxConfig(dir: string, port: number, upstreams: readonly number[]): Promise<string> {
  const site = join(dir, 'stageward.conf');
  await writeFile(site, adaptNginxConf(await readFile(NGINX_CONF, 'utf8'), port, upstreams));
  const main = join(dir, 'nginx.conf');
  await writeFile(main, mainConf(dir, site));
  return main;
}

/** `nginx -t` on deploy/nginx.conf as shipped (its own ports; nothing is bound): '' when valid, else nginx's message. */
export async function checkShippedConf(bin: string = findNginx()): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stageward-nginx-t-'));
  try {
    const main = join(dir, 'nginx.conf');
    await writeFile(main, mainConf(dir, NGINX_CONF));
    const r = spawnSync(bin, ['-t', '-q', '-p', dir, '-e', join(dir, 'error.log'), '-c', main], { encoding: 'utf8', timeout: 20_000 });
    return r.status === 0 ? '' : `${r.stderr}${r.stdout}`.trim() || `nginx -t exited ${r.status}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface Nginx {
  /** http://127.0.0.1:<port>; robots connect to ws://127.0.0.1:<port>. */
  url: string;
  port: number;
  stop(): Promise<void>;
  /** The last lines of nginx's error log (for failures). */
  errorLog(): Promise<string>;
}

/** Start nginx on a free loopback port in front of `upstreams` (replica ports); resolves once /healthz answers through it. */
export async function startNginx(upstreams: readonly number[], bin: string = findNginx()): Promise<Nginx> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'stageward-nginx-'));
    for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(dir, sub));
    const port = await freePort();
    const main = await writeNginxConfig(dir, port, upstreams);
    const child = spawn(bin, ['-p', dir, '-e', join(dir, 'error.log'), '-c', main], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const errorLog = async () =>
      `${stderr}${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`.split('\n').slice(-30).join('\n');
    const up = await Promise.race([waitHealthy(`http://127.0.0.1:${port}/healthz`), exited.then(() => false)]);
    if (up) return { url: `http://127.0.0.1:${port}`, port, stop: () => stopNginx(child, exited, dir), errorLog };
    lastError = await errorLog();
    await stopNginx(child, exited, dir);
    if (!/Address already in use/.test(lastError)) break;
  }
  throw new Error(`nginx did not start:\n${lastError}`);
}

async function waitHealthy(url: string): Promise<boolean> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function stopNginx(child: ChildProcess, exited: Promise<number | null>, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM'); // fast shutdown: robots are done (or are meant to be cut)
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  await rm(dir, { recursive: true, force: true });
}
