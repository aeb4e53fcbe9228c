// The learner's exploration: correlated (AR(1)) action noise with the configured std and step-to-step
// correlation, and an update that regresses each step's innovation, not the correlated noise itself.
// The carried-over part of the noise has already moved the arm, so it is correlated with the features
// of the state it is applied in; regressing it would teach the policy to keep going wherever the noise
// pushed it even when the reward says nothing. The bridge here is a stand-in that runs real simulator
// episodes with a reward the test chooses (seeded noise that ignores the actions).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../../core/random.ts';
import { GATED_FEATURE_DIM, gatedFeatures } from '../../../learn/policy/features.ts';
import { ACTION_DIM, type GatedLinearPolicy } from '../../../learn/policy/linear-policy.ts';
import { RL_DEFAULTS, trainRl, update } from '../../../learn/rl/power.ts';
import { weakStartPolicy } from '../../../learn/rl/start.ts';
import { summarizeEpisode } from '../../../sim/bridge/returns.ts';
import type { EpisodeResult, Policy, SimBridge, StepRecord } from '../../../sim/bridge/index.ts';
import { SimEnv } from '../../../sim/env.ts';

const STEPS = 40;
const GAMMA = 0.99;
let env: SimEnv;
let start: GatedLinearPolicy;

beforeAll(async () => {
  env = await SimEnv.create({ task: 'pick_place', seed: 0 });
  start = await weakStartPolicy('pick_place', 0);
}, 60_000);

afterAll(() => env?.close());

/** A bridge that runs real episodes of STEPS steps, rewarding each step with seeded noise that ignores the action. */
function noiseRewardBridge(rewardSeed: number): { bridge: SimBridge; runs: { results: EpisodeResult[]; actions: Float32Array[][] }[] } {
  const runs: { results: EpisodeResult[]; actions: Float32Array[][] }[] = [];
  const bridge = {
    options: { gamma: GAMMA },
    async runEpisodes(seeds: number[], policies: Policy[]): Promise<EpisodeResult[]> {
      const rng = new SeededRandom(rewardSeed + runs.length);
      const actions: Float32Array[][] = [];
      const results = seeds.map((seed, i) => {
        let obs = env.reset(seed);
        const steps: StepRecord[] = [];
        const taken: Float32Array[] = [];
        for (let t = 0; t < STEPS; t++) {
          const action = policies[i]!(obs.state, 0, i);
          taken.push(action);
          const out = env.step(action);
          steps.push({
            state: obs.state,
            action,
            envReward: 0,
            shaped: rng.normal(1),
            progress: NaN,
            trueProgress: out.info.trueProgress,
            terminated: out.terminated,
            truncated: out.truncated || t === STEPS - 1,
          });
          obs = out.observation;
          if (out.terminated) break;
        }
        actions.push(taken);
        return summarizeEpisode(seed, steps, NaN, false, GAMMA);
      });
      runs.push({ results, actions });
      return results;
    },
  };
  return { bridge: bridge as unknown as SimBridge, runs };
}

/** The exploration noise of each step: the action taken minus the policy's own action. */
function deviations(policy: GatedLinearPolicy, results: EpisodeResult[], actions: Float32Array[][]): Float64Array[][] {
  return results.map((r, i) => r.steps.map((s, t) => Float64Array.from(policy.act(s.state), (m, k) => actions[i]![t]![k]! - m)));
}

/** RMS change of the action, over the states of `results`, between two policies (before the clip). */
function rmsChange(a: GatedLinearPolicy, b: GatedLinearPolicy, results: EpisodeResult[]): number {
  const wa = a.params();
  const wb = b.params();
  let ss = 0;
  let n = 0;
  for (const r of results) {
    for (const s of r.steps) {
      const phi = gatedFeatures(a.task, s.state);
      for (let k = 0; k < ACTION_DIM; k++) {
        let d = 0;
        for (let f = 0; f < GATED_FEATURE_DIM; f++) d += phi[f]! * (wb[f * ACTION_DIM + k]! - wa[f * ACTION_DIM + k]!);
        ss += d * d;
        n++;
      }
    }
  }
  return Math.sqrt(ss / n);
}

function lag1(series: Float64Array[][]): { std: number; corr: number } {
  let ss = 0;
  let n = 0;
  let cross = 0;
  let m = 0;
  for (const ep of series) {
    ep.forEach((e, t) => {
      for (let k = 0; k < ACTION_DIM; k++) {
        ss += e[k]! ** 2;
        n++;
        if (t > 0) {
          cross += e[k]! * ep[t - 1]![k]!;
          m++;
        }
      }
    });
  }
  const v = ss / n;
  return { std: Math.sqrt(v), corr: cross / m / v };
}

describe('RL exploration noise', () => {
  it('has the configured std and step-to-step correlation (white noise at 0)', async () => {
    for (const rho of [0, 0.5]) {
      const { bridge, runs } = noiseRewardBridge(7);
      await trainRl(bridge, start, { rollouts: 16, seed: 3, episodesPerIteration: 16, noiseStd: 0.3, noiseCorrelation: rho });
      const { std, corr } = lag1(deviations(start, runs[0]!.results, runs[0]!.actions));
      console.log(`noise correlation ${rho}: measured std ${std.toFixed(3)}, lag-1 correlation ${corr.toFixed(3)}`);
      expect(std).toBeGreaterThan(0.27);
      expect(std).toBeLessThan(0.33);
      expect(Math.abs(corr - rho)).toBeLessThan(0.08);
    }
  }, 60_000);

  it('regresses the innovations, so a reward that ignores the actions moves the policy little', async () => {
    const rho = 0.9;
    const o = { ...RL_DEFAULTS, gamma: GAMMA };
    const { bridge, runs } = noiseRewardBridge(11);
    const trained = await trainRl(bridge, start, { rollouts: 16, seed: 5, episodesPerIteration: 16, noiseCorrelation: rho });
    const { results, actions } = runs[0]!;
    const eps = deviations(start, results, actions);
    const fresh = Math.sqrt(1 - rho * rho);
    const innovations = eps.map((ep) => ep.map((e, t) => (t === 0 ? e : e.map((x, k) => (x - rho * ep[t - 1]![k]!) / fresh))));
    const fromInnovations = update(start, results, innovations, o);
    const fromEps = update(start, results, eps, o);
    // trainRl's update is the one on the innovations (up to the float32 of the recorded actions)
    expect(rmsChange(trained, fromInnovations, results)).toBeLessThan(1e-4);
    const moved = rmsChange(start, trained, results);
    const biased = rmsChange(start, fromEps, results);
    console.log(
      `rewards that ignore the actions, rho ${rho}: RMS action change ${moved.toFixed(3)} (regressing eps instead: ${biased.toFixed(3)})`,
    );
    expect(moved).toBeLessThan(0.5 * biased);
  }, 60_000);
});
