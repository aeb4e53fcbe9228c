// The files in deploy/ are examples a user copies; these checks keep them true to the server they
// deploy (setting names, routes, ports, timeouts), without nginx or a cluster. `npm run test:nginx`
// runs deploy/nginx.conf in a real nginx.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { adaptNginxConf, NGINX_CONF } from '../../bench/nginx.ts';
import { REPO_ROOT } from '../../core/paths.ts';
import { configEnvNames, loadConfig } from '../../server/config.ts';

const DEPLOY = join(REPO_ROOT, 'deploy');
const nginxConf = readFileSync(NGINX_CONF, 'utf8');
const defaults = loadConfig();

function yamlDocs(file: string): any[] {
  const docs = parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8'));
  for (const d of docs) expect(d.errors, file).toEqual([]);
  return docs.map((d) => d.toJS());
}

const seconds = (v: string) => Number(/^(\d+)s$/.exec(v)![1]);

describe('deploy/nginx.conf', () => {
  it('points at the test ports by its listen and upstream lines only, keeping every server parameter', () => {
    const out = adaptNginxConf(nginxConf, 18000, [18001, 18002]);
    expect(out).toContain('listen 127.0.0.1:18000;');
    expect(out.match(/^\s*server 127\.0\.0\.1:\d+.*;$/gm)).toEqual([
      '    server 127.0.0.1:18001 max_fails=1 fail_timeout=10s;',
      '    server 127.0.0.1:18002 max_fails=1 fail_timeout=10s;',
    ]);
    // Everything else is untouched.
    const strip = (t: string) => t.replace(/^\s*(listen|server 127\.0\.0\.1:)[^\n]*\n/gm, '');
    expect(strip(out)).toBe(strip(nginxConf));
    expect(() => adaptNginxConf(nginxConf.replace(/listen 8000;/, ''), 1, [2])).toThrow('listen');
    expect(() => adaptNginxConf(nginxConf.replace(/server 127\.0\.0\.1:/g, 'server 10.0.0.1:'), 1, [2])).toThrow('upstream');
  });

  it('upgrades WebSocket connections, retries a draining replica, and outwaits the replica idle timeout', () => {
    expect(nginxConf).toMatch(/proxy_http_version 1\.1;/);
    expect(nginxConf).toMatch(/proxy_set_header Upgrade \$http_upgrade;/);
    expect(nginxConf).toMatch(/proxy_set_header Connection \$stageward_connection;/);
    // A replica answers upgrades with 503 while it drains: nginx must try the next one.
    expect(nginxConf).toMatch(/proxy_next_upstream [^;]*\bhttp_503\b/);
    // The replica's own idle close (with its code) comes before nginx cuts the connection.
    const read = seconds(/proxy_read_timeout (\d+s);/.exec(nginxConf)![1]!);
    expect(read * 1000).toBeGreaterThan(defaults.limits.idleTimeoutMs);
  });
});

describe('deploy/k8s/serve.yaml', () => {
  const [deployment, service] = yamlDocs('k8s/serve.yaml');
  const pod = deployment.spec.template;
  const container = pod.spec.containers[0];

  it('sets only settings the server reads, with values it accepts', () => {
    const known = configEnvNames();
    const env: Record<string, string> = {};
    for (const e of container.env) {
      expect(known, e.name).toContain(e.name);
      env[e.name] = e.value ?? 'from-the-cluster-0123456789';
    }
    // The same values pass the server's own checks (the key and the pod name come from the cluster).
    const config = loadConfig({ env: { ...env, STAGEWARD_REPLICA: 'stageward-7d9f-abcde' } });
    expect(config.host).toBe('0.0.0.0');
    expect(config.port).toBe(container.ports[0].containerPort);
    expect(container.env.find((e: any) => e.name === 'STAGEWARD_REPLICA').valueFrom.fieldRef.fieldPath).toBe('metadata.name');
  });

  it('takes a draining pod out of the Service by /healthz, without restarting it, and lets the drain finish', () => {
    expect(container.readinessProbe.httpGet).toEqual({ path: '/healthz', port: 'ws' });
    expect(container.livenessProbe.httpGet).toBeUndefined(); // /healthz is 503 while draining, by design
    expect(container.livenessProbe.tcpSocket).toEqual({ port: 'ws' });
    const preStopS = Number(container.lifecycle.preStop.exec.command[1]);
    const drainMs = defaults.limits.shutdownGraceMs + defaults.limits.drainQuietMs + preStopS * 1000;
    expect(pod.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(drainMs);
  });

  it('has a Service that selects the pods and reaches the named port', () => {
    expect(service.kind).toBe('Service');
    expect(pod.metadata.labels).toMatchObject(service.spec.selector);
    expect(deployment.spec.selector.matchLabels).toEqual(service.spec.selector);
    expect(service.spec.ports[0].targetPort).toBe(container.ports[0].name);
  });
});

describe('deploy/prometheus.yml', () => {
  const [prom] = yamlDocs('prometheus.yml');

  it('scrapes each replica behind deploy/nginx.conf directly, with the key header the server takes', () => {
    const upstream = [...nginxConf.matchAll(/^\s*server (127\.0\.0\.1:\d+)/gm)].map((m) => m[1]);
    const local = prom.scrape_configs.find((c: any) => c.job_name === 'stageward');
    expect(local.static_configs[0].targets).toEqual(upstream);
    for (const job of prom.scrape_configs) {
      expect(job.metrics_path).toBe('/metrics');
      expect(job.authorization.type).toBe('Api-Key'); // sent as `Authorization: Api-Key <key>`
    }
  });
});

describe('deploy/k8s/score-indexed-job.yaml', () => {
  it('parses, and its shard count agrees with completions and parallelism', () => {
    const [shards] = yamlDocs('k8s/score-indexed-job.yaml');
    const n = Number(shards.spec.template.spec.containers[0].env.find((e: any) => e.name === 'SHARDS').value);
    expect(shards.spec.completions).toBe(n);
    expect(shards.spec.parallelism).toBe(n);
  });
});
