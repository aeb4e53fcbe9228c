import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../core/paths.ts';
import { fixtureCopy } from '../helpers.ts';

const BIN = join(REPO_ROOT, 'bin', 'stageward.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI; `onLine` may act on stdout lines (e.g. send a signal once the server is up). */
function run(args: string[], onLine?: (line: string, child: ReturnType<typeof spawn>) => void, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      const text = d.toString();
      stdout += text;
      for (const line of text.split('\n')) if (line) onLine?.(line, child);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('stageward serve / start', () => {
  it('a model that cannot load stops start-up with its error code and a non-zero exit', async () => {
    const broken = await fixtureCopy((card) => {
      card.feature_dim = 'many';
    });
    const [missing, bad, config] = await Promise.all([
      run(['serve', '--model', '/nonexistent/model', '--port', '0']),
      run(['serve', '--model', broken, '--port', '0']),
      run(['serve', '--port', '0'], undefined, { STAGEWARD_MAX_BATCH: '0' }),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('SW_ERR_MODEL_NOT_FOUND');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/SW_ERR_MODEL_CARD: model.json: `feature_dim`/);
    expect(config.code).toBe(2);
    expect(config.stderr).toContain('SW_ERR_CONFIG: `batching.maxBatch` (env STAGEWARD_MAX_BATCH)');
  });

  it('serve answers /healthz and shuts down cleanly on SIGTERM', async () => {
    let checked = false;
    const r = await run(['serve', '--port', '0'], (line, child) => {
      const m = /http\s+(http:\/\/127\.0\.0\.1:\d+)\/healthz/.exec(line);
      if (!m) return;
      void fetch(`${m[1]}/healthz`).then(async (res) => {
        checked = res.status === 200 && (await res.json()).status === 'ok';
        child.kill('SIGTERM');
      });
    });
    expect(checked).toBe(true);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('SIGTERM, shutting down');
    expect(r.stdout).toContain('stageward: stopped');
  });

  it('start runs the simulated robot over WebSocket and prints one line per episode', async () => {
    const r = await run(['start', '--episodes', '2', '--port', '0', '--size', '64']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const episodes = r.stdout.split('\n').filter((l) => l.startsWith('episode'));
    expect(episodes).toHaveLength(2);
    expect(episodes[0]).toMatch(
      /episode\s+0\s+expert .* steps\s+progress \d\.\d{3}\s+success yes\s+shaped return\s+-?\d\.\d{3}\s+latency p50 [\d.]+ ms p99 [\d.]+ ms/,
    );
    expect(episodes[1]).toMatch(/episode\s+1\s+failed .*success no/);
    expect(r.stdout).toMatch(/native\s+ws:\/\/127\.0\.0\.1:\d+\/v1\/stream/);
  });

  it('start (npm start) stops cleanly on Ctrl-C: the server drains, the robot stops, exit status 0', async () => {
    let episodes = 0;
    const r = await run(['start', '--port', '0', '--size', '64'], (line, child) => {
      if (line.startsWith('episode') && ++episodes === 1) child.kill('SIGINT');
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(episodes).toBeGreaterThanOrEqual(1);
    expect(r.stdout).toContain('stageward: SIGINT, shutting down');
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('stageward: stopped');
  });
});
