// The semantic trap, shown on the simulator with the bundled reward model: a policy that carries the
// cube over the bowl and holds it there (never finishing) earns a larger discounted return than the
// finishing expert under the `progress` reward (r + Phi(s')), while under policy-invariant PBRS, over the
// model's progress and over the true progress alike, the finishing expert earns more.

import { describe, expect, it } from 'vitest';
import { SimBridge, expertPolicies, hoverPolicies, type RewardMode } from '../../../sim/bridge/index.ts';

const SEED = 3;

async function finishVersusHover(reward: RewardMode) {
  const bridge = await SimBridge.create({ task: 'pick_place', reward, gamma: 0.99, envs: 2, maxSteps: 80 });
  try {
    const [finish, hover] = await bridge.runEpisodes(
      [SEED, SEED],
      [...expertPolicies(bridge, [SEED], 'expert'), ...hoverPolicies(bridge, [SEED])],
    );
    expect(finish!.success && finish!.terminated).toBe(true);
    expect(!hover!.success && hover!.truncated).toBe(true);
    return { finish: finish!.shapedReturn, hover: hover!.shapedReturn };
  } finally {
    await bridge.close();
  }
}

describe('the semantic trap on the simulator', () => {
  it('progress reward: hovering over the bowl out-earns finishing the task', async () => {
    const r = await finishVersusHover('progress');
    expect(r.hover).toBeGreaterThan(r.finish + 1);
  });

  it("PBRS over the model's progress: finishing out-earns hovering", async () => {
    const r = await finishVersusHover('pbrs');
    expect(r.finish).toBeGreaterThan(r.hover + 0.05);
  });

  it('PBRS over the true progress: finishing out-earns hovering', async () => {
    const r = await finishVersusHover('pbrs-true');
    expect(r.finish).toBeGreaterThan(r.hover + 0.05);
  });
});
