// The Python side of the wire, against the real server on 127.0.0.1 serving the fixture model:
// stageward_client (clients/python) on /v1/stream, and an openpi-style client (plain msgpack +
// websockets, as openpi-client is written) on /openpi. The scripts live in test/clients/scripts.
//
// Python needs numpy, msgpack and websockets (CI installs python3-numpy, python3-msgpack,
// python3-websockets). Without them these tests FAIL, saying so; they are never skipped. They run
// from `npm run test:client`, not `npm test` (which needs Node alone).

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromFlags, startServer } from '../../server/run.ts';
import { REPO_ROOT } from '../../core/paths.ts';
import type { StagewardServer } from '../../server/server.ts';
import { FIXTURE_MODEL_DIR } from '../helpers.ts';
import { CLIENT_DIR, findClientPython } from './python.ts';

const run = promisify(execFile);
const SCRIPTS = join(REPO_ROOT, 'test', 'clients', 'scripts');

async function runScript(python: string, script: string, url: string): Promise<any> {
  const { stdout } = await run(python, [join(SCRIPTS, script), url], {
    cwd: REPO_ROOT,
    env: { ...process.env, PYTHONPATH: CLIENT_DIR, PYTHONDONTWRITEBYTECODE: '1' },
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

describe('Python clients against the live server (fixture model)', () => {
  let python: string;
  let server: StagewardServer;
  let native: Promise<any> | undefined;
  const nativeRun = () => (native ??= runScript(python, 'native_episode.py', server.url)); // one run, two tests

  beforeAll(async () => {
    python = findClientPython(); // throws: every test below fails with the install hint
    const config = configFromFlags({ model: FIXTURE_MODEL_DIR, host: '127.0.0.1', port: 0 }, {});
    ({ server } = await startServer(config, () => {}));
  }, 60_000);

  afterAll(async () => {
    await server?.shutdown();
  });

  it('stageward_client streams an episode on /v1/stream: one reply per step, in order, progress in [0, 1]', async () => {
    const out = await nativeRun();
    expect(out.ready.type).toBe('ready');
    expect(out.ready.model.views).toEqual(['front', 'side', 'wrist']);
    expect(out.episode.type).toBe('episode');

    expect(out.steps).toHaveLength(10);
    out.steps.forEach((r: any, i: number) => {
      expect(r.type).toBe('reward');
      expect(r.seq).toBe(i);
      expect(r.step).toBe(i);
      expect(r.progress).toBeGreaterThanOrEqual(0);
      expect(r.progress).toBeLessThanOrEqual(1);
      expect(typeof r.stage.name).toBe('string');
      expect(Number.isFinite(r.shaped)).toBe(true);
    });
    expect(out.steps[0].shaped).toBe(0); // step 0 only sets Phi(s_0)
    expect(out.steps[9].done).toBe(true);
    expect(out.summary).toMatchObject({ type: 'summary', steps: 10, truncated: true });

    expect(out.pipelined.map((r: any) => r.seq)).toEqual([10, 11, 12, 13, 14, 15]);
    expect(out.pipelined.map((r: any) => r.step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(out.missing_view_error).toMatchObject({ code: 'SW_ERR_VIEW_MISSING', seq: 16 });
    expect(out.after_error).toMatchObject({ type: 'reward', seq: 17 });
    expect(out.end.type).toBe('summary');
  });

  it('StagewardRewardWrapper gives the learner the PBRS reward and zeroes the potential at termination', async () => {
    const { wrapper } = await nativeRun();
    const steps = wrapper.steps as any[];
    expect(steps).toHaveLength(6); // reset (step 0) + 5 env steps
    for (let i = 1; i < steps.length; i++) {
      const s = steps[i];
      const next = s.terminated ? 0 : s.progress;
      // add mode: r + gamma * Phi(s') * (1 - terminated) - Phi(s), gamma = 0.9, scale 1
      expect(s.reward).toBeCloseTo(s.env_reward + 0.9 * next - steps[i - 1].progress, 6);
      expect(s.reward).toBeCloseTo(s.shaped, 12);
    }
    expect(steps[5]).toMatchObject({ terminated: true, env_reward: 1 });
    expect(wrapper.summary).toMatchObject({ type: 'summary', steps: 6, terminated: true, success: true });
  });

  it('an openpi-style client on /openpi gets the metadata map first and a reward dict per observation', async () => {
    const out = await runScript(python, 'openpi_episode.py', `${server.url}/openpi`);
    expect(out.metadata.model.name).toBe('tiny-fixture');
    expect(Object.values(out.metadata.observation_keys).sort()).toEqual(['front', 'side', 'wrist']);

    expect(out.replies).toHaveLength(10);
    out.replies.forEach((r: any, i: number) => {
      expect(r.step).toBe(i);
      expect(r.progress).toBeGreaterThanOrEqual(0);
      expect(r.progress).toBeLessThanOrEqual(1);
      expect(Number.isFinite(r.shaped)).toBe(true);
      expect(typeof r.stage.name).toBe('string');
    });
    expect(out.replies[0].new_episode).toBe(true);
    expect(out.replies[9].done).toBe(true);

    // Errors travel as a text frame (openpi-client raises on one) and the connection stays open.
    expect(out.error_is_text).toBe(true);
    expect(out.error).toMatchObject({ type: 'error', code: 'SW_ERR_VIEW_MISSING' });
    expect(out.after_error).toMatchObject({ step: 0, new_episode: true }); // after terminated: a new episode
  });
});
