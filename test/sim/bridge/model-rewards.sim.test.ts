// The simulator bridge with the bundled pick_place reward model: rewards through the engine in this
// process and through the reward server over a real WebSocket are identical (exactly: replies carry
// float64), as are frames rendered on render threads and on the main thread; PBRS over the model's
// progress telescopes on real episodes; 8 parallel environments (one batch per step) give every seed
// the same result as 1 environment; a bridge whose server connections were closed for idling between
// runs reconnects.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../../server/run.ts';
import { loadConfig } from '../../../server/config.ts';
import { ZOO_DIR } from '../../../core/paths.ts';
import { SimBridge, expertPolicies, hoverPolicies, type EpisodeResult } from '../../../sim/bridge/index.ts';

const MODEL = join(ZOO_DIR, 'pick_place');
const GAMMA = 0.99;
const MAX_STEPS = 80;

if (!existsSync(join(MODEL, 'model.json'))) throw new Error(`the bundled model is missing at ${MODEL} (these tests need it)`);

/** Every step's rewards and potentials, and the episode figures, compared with ===. */
function expectIdentical(a: EpisodeResult[], b: EpisodeResult[]): void {
  expect(b.length).toBe(a.length);
  a.forEach((ea, i) => {
    const eb = b[i]!;
    expect(eb.length).toBe(ea.length);
    const pairs: [number, number][] = [
      [ea.phi0, eb.phi0],
      [ea.shapedReturn, eb.shapedReturn],
      [ea.finalProgress, eb.finalProgress],
    ];
    ea.steps.forEach((s, t) => {
      pairs.push([s.shaped, eb.steps[t]!.shaped], [s.progress, eb.steps[t]!.progress]);
    });
    const differing = pairs.filter(([x, y]) => !(x === y));
    expect(differing, `episode ${i}: values that differ`).toEqual([]);
  });
}

describe('SimBridge with the reward model', () => {
  let inprocess: SimBridge;
  beforeAll(async () => {
    inprocess = await SimBridge.create({ task: 'pick_place', reward: 'pbrs', gamma: GAMMA, envs: 8, maxSteps: MAX_STEPS });
  });
  afterAll(async () => {
    await inprocess?.close();
  });

  it("renders the model's views at its resolution", () => {
    expect(inprocess.views).toEqual(['front', 'side', 'wrist']);
    expect(inprocess.image).toEqual({ height: 96, width: 96 });
  });

  it('gives the same rewards over WebSocket (main-thread rendering) as in process (render threads)', async () => {
    const seeds = [21, 22];
    const ws = await SimBridge.create({
      task: 'pick_place',
      reward: 'pbrs',
      gamma: GAMMA,
      envs: 2,
      maxSteps: 40,
      transport: 'ws',
      renderThreads: 0,
    });
    let overWs: EpisodeResult[];
    try {
      overWs = await ws.runEpisodes(seeds, expertPolicies(ws, seeds, 'mixed'));
    } finally {
      await ws.close();
    }
    const local = await SimBridge.create({ task: 'pick_place', reward: 'pbrs', gamma: GAMMA, envs: 1, maxSteps: 40, renderThreads: 1 });
    try {
      const inProcess = await local.runEpisodes(seeds, expertPolicies(local, seeds, 'mixed'));
      expectIdentical(inProcess, overWs);
      expect(inProcess.every((e) => e.steps.every((s) => Number.isFinite(s.shaped) && s.progress >= 0 && s.progress <= 1))).toBe(true);
    } finally {
      await local.close();
    }
  });

  it('reconnects to a server that closed its connections for idling between two runs', async () => {
    const config = loadConfig({ flags: { model: MODEL, port: 0 }, overrides: { 'limits.idleTimeoutMs': 1000 } });
    const { server } = await startServer(config, () => {});
    try {
      const bridge = await SimBridge.create({
        task: 'pick_place',
        reward: 'pbrs',
        gamma: GAMMA,
        envs: 2,
        maxSteps: 10,
        transport: 'ws',
        url: server.url,
      });
      try {
        const before = await bridge.runEpisodes([1, 2], expertPolicies(bridge, [1, 2], 'expert'));
        await new Promise((resolve) => setTimeout(resolve, 1600));
        const after = await bridge.runEpisodes([1, 2], expertPolicies(bridge, [1, 2], 'expert'));
        expectIdentical(before, after);
      } finally {
        await bridge.close();
      }
    } finally {
      await server.shutdown();
    }
  });

  it("telescopes PBRS over the model's progress on a terminated and on a truncated episode", async () => {
    const [finish, hover] = await inprocess.runEpisodes(
      [7, 7],
      [...expertPolicies(inprocess, [7], 'expert'), ...hoverPolicies(inprocess, [7])],
    );
    expect(finish!.terminated).toBe(true);
    expect(hover!.truncated && hover!.length === MAX_STEPS).toBe(true);
    for (const e of [finish!, hover!]) {
      let sum = 0;
      e.steps.forEach((s, t) => {
        sum += GAMMA ** t * (s.shaped - s.envReward);
      });
      const last = e.steps[e.length - 1]!;
      const expected = GAMMA ** e.length * last.progress * (last.terminated ? 0 : 1) - e.phi0;
      expect(Math.abs(sum - expected)).toBeLessThan(1e-5);
    }
    expect(hover!.finalProgress).toBeGreaterThan(0.3);
  });

  it('gives every seed the same result with 8 parallel environments as with 1', async () => {
    const seeds = [40, 41, 42, 43, 44, 45, 46, 47];
    const single = await SimBridge.create({ task: 'pick_place', reward: 'pbrs', gamma: GAMMA, envs: 1, maxSteps: 30 });
    let alone: EpisodeResult[];
    try {
      alone = await single.runEpisodes(seeds, expertPolicies(single, seeds, 'mixed'));
    } finally {
      await single.close();
    }
    const eight = await SimBridge.create({ task: 'pick_place', reward: 'pbrs', gamma: GAMMA, envs: 8, maxSteps: 30 });
    try {
      const together = await eight.runEpisodes(seeds, expertPolicies(eight, seeds, 'mixed'));
      expectIdentical(alone, together);
      expect(together).toEqual(alone);
    } finally {
      await eight.close();
    }
  });
});
