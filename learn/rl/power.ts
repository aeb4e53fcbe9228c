// Online RL: reward-weighted exploration regression over the gated-linear policy, in the family of
// PoWER (Kober & Peters 2009, "Policy search for motor primitives in robotics") with PI2-style
// exponentiated, normalised returns (Theodorou, Buchli & Schaal 2010).
//
// Each iteration runs `episodesPerIteration` episodes of the current policy with Gaussian exploration
// on every action, a_t = pi(s_t) + eps_t (seeded per episode). The noise is temporally correlated, an
// AR(1) process with the same std at every step (the Ornstein-Uhlenbeck-like exploration of DDPG,
// Lillicrap et al. 2016, and of the colored-noise work of Eberhard et al. 2023):
//   eps_t = rho * eps_(t-1) + sqrt(1 - rho^2) * u_t,   u_t ~ N(0, noiseStd^2),
// so a deviation lasts long enough (about 1 / (1 - rho) steps) to move the arm measurably. Each step gets
// the short-horizon return of the learner's rewards, Q_t = sum_k (gamma * horizonDecay)^k r_(t+k); the
// weights are w_t = exp((Q_t - mean Q) / (temperature * std Q)) (capped); the update is the weighted
// least-squares regression of the step's innovation u_t on the features,
//   dW = argmin sum_t w_t |u_t - dW^T phi(s_t)|^2 + ridge * (sum w) |dW|^2,   W += dW,
// solved with mathjs (the same normal equations as behaviour cloning, learn/policy/bc.ts). Noise that
// earned more than average pulls the policy its way, in the states where it did.
//
// Why the innovation and not eps_t: the carried-over part rho * eps_(t-1) has already moved the state, so
// it is correlated with phi(s_t); regressing it would teach the policy to keep going wherever the noise
// pushed it, whatever the reward (measured: with rho 0.8 or 0.95 and eps_t as the target, every run drifted
// to 0% success). u_t is independent of s_t, so with equal weights the update is zero in expectation.
// With rho = 0 and temperature 0.2 this is the first version of the learner.
//
// Why this learner: the policy is linear in its parameters, so the update is closed form and needs
// no step size, no critic and no backpropagation; it uses every step's reward (per-step credit, which
// is what a dense shaped reward offers), where episode-return methods such as ARS only see the sum.
// With potential-based shaping the short-horizon return is about gamma^h Phi(s_(t+h)) - Phi(s_t): the
// progress an action's consequences made, centred per state. Under `sparse` it is zero until a success
// happens; under `progress` (r + Phi(s')) it favours steps spent in high-progress states.
// The same learner sees each reward mode; nothing else changes. Seeded and deterministic.

import { StagewardError } from '../../core/errors.ts';
import type { SimBridge } from '../../sim/bridge/index.ts';
import type { EpisodeResult, Policy } from '../../sim/bridge/types.ts';
import { GATED_FEATURE_DIM, gatedFeatures } from '../policy/features.ts';
import { ACTION_DIM, type GatedLinearPolicy } from '../policy/linear-policy.ts';
import { solveNormalEquations } from '../policy/solve.ts';
import { SeededRandom } from '../../core/random.ts';

export interface RlOptions {
  /** Training episodes in all (the rollout budget). */
  rollouts: number;
  /** Seed of the exploration noise and of the training episodes' simulator seeds. */
  seed: number;
  /** Episodes per update; default 16. */
  episodesPerIteration?: number;
  /** Std of the Gaussian exploration on each action component; default 0.3. */
  noiseStd?: number;
  /**
   * Correlation of the exploration noise from one step to the next, in [0, 1): eps_t = rho eps_(t-1) +
   * sqrt(1 - rho^2) N(0, noiseStd^2) (an AR(1), Ornstein-Uhlenbeck-like process with the same std at every
   * step); 0 is white noise.
   */
  noiseCorrelation?: number;
  /** Temperature of the exponentiated weights, in units of the returns' std; default 0.2. */
  temperature?: number;
  /** Extra decay of the short-horizon return beyond gamma; default 0.9 (about 10 steps = 1 s). */
  horizonDecay?: number;
  /** Ridge strength relative to the total weight; default 1e-3. */
  ridge?: number;
  /** Discount of the learner; default the bridge's. */
  gamma?: number;
}

/** The learner's defaults, tuned on the pbrs-true and sparse rewards only (learn/rl/README.md, Tuning). */
export const RL_DEFAULTS = {
  episodesPerIteration: 16,
  noiseStd: 0.3,
  noiseCorrelation: 0.5,
  temperature: 0.15,
  horizonDecay: 0.9,
  ridge: 1e-3,
} as const;
/** Cap on a step's weight (exp of at most ~4 std / temperature), so one lucky step cannot dominate. */
const MAX_WEIGHT = 50;
/** True progress from which an unfinished episode counts as hovering near the goal. */
export const HOVER_PROGRESS = 0.7;

export interface RlIteration {
  iteration: number;
  /** Training episodes run so far. */
  rollouts: number;
  /** Over this iteration's (exploring) episodes. */
  successRate: number;
  /** Mean discounted return of the learner's reward. */
  meanReturn: number;
  meanEnvReturn: number;
  meanLength: number;
  meanFinalTrueProgress: number;
  /** Share of episodes that hit the time limit with true progress >= HOVER_PROGRESS (near the goal, not finished). */
  hoverShare: number;
  /** The policy after this iteration's update. */
  policy: GatedLinearPolicy;
}

export function resolveRlOptions(opts: RlOptions): Required<Omit<RlOptions, 'gamma'>> & { gamma?: number } {
  const o = { ...RL_DEFAULTS, ...opts };
  const bad = (msg: string): never => {
    throw new StagewardError('SW_ERR_POLICY', msg);
  };
  if (!Number.isInteger(o.episodesPerIteration) || o.episodesPerIteration < 2)
    bad(`episodes per iteration must be a whole number >= 2, got ${o.episodesPerIteration}`);
  if (!Number.isInteger(o.rollouts) || o.rollouts < o.episodesPerIteration)
    bad(`a rollout budget of ${o.rollouts} is less than one iteration (${o.episodesPerIteration} episodes)`);
  if (!(o.noiseStd > 0) || !(o.temperature > 0) || !(o.ridge > 0)) bad('noise std, temperature and ridge must be > 0');
  if (!(o.noiseCorrelation >= 0 && o.noiseCorrelation < 1)) bad(`noise correlation must be in [0, 1), got ${o.noiseCorrelation}`);
  if (!(o.horizonDecay >= 0 && o.horizonDecay <= 1)) bad(`horizon decay must be in [0, 1], got ${o.horizonDecay}`);
  if (!Number.isInteger(o.seed) || o.seed < 0) bad(`seed must be a whole number >= 0, got ${o.seed}`);
  return o;
}

/**
 * One episode's exploration noise: each call gives the next step's eps_t = rho eps_(t-1) + sqrt(1 - rho^2) u_t
 * (eps_0 = u_0, so every step has std `std`) and its innovation u_t ~ N(0, std^2), one per action component.
 */
export function correlatedNoise(rng: SeededRandom, rho: number, std: number): () => { eps: Float64Array; innovation: Float64Array } {
  const fresh = Math.sqrt(1 - rho * rho);
  let prev: Float64Array | null = null;
  return () => {
    const p = prev;
    const innovation = Float64Array.from({ length: ACTION_DIM }, () => rng.normal(std));
    const eps = p ? Float64Array.from(innovation, (u, k) => rho * p[k]! + fresh * u) : innovation;
    prev = eps;
    return { eps, innovation };
  };
}

/** Train from `start`; `onIteration` sees each update (learning curves, progress bars). */
export async function trainRl(
  bridge: SimBridge,
  start: GatedLinearPolicy,
  options: RlOptions,
  onIteration?: (it: RlIteration) => void | Promise<void>,
): Promise<GatedLinearPolicy> {
  const o = resolveRlOptions(options);
  const gamma = o.gamma ?? bridge.options.gamma;
  let policy = start;
  let used = 0;
  let iteration = 0;
  // Training episodes use seeds of their own, away from recording (seed * 100000 + i) and evaluation seeds.
  let nextSeed = 3_000_000_000 + (o.seed % 1000) * 1_000_000;
  while (used + o.episodesPerIteration <= o.rollouts) {
    const seeds = Array.from({ length: o.episodesPerIteration }, () => nextSeed++);
    const noise: Float64Array[][] = seeds.map(() => []);
    const current = policy;
    const policies: Policy[] = seeds.map((seed, i) => {
      const next = correlatedNoise(new SeededRandom(seed ^ (o.seed * 2654435761)).fork(31), o.noiseCorrelation, o.noiseStd);
      return (state) => {
        const { eps, innovation } = next();
        // The regression target is the step's innovation, not eps: the carried-over part rho * eps_(t-1) has
        // moved the state already, so it is correlated with phi(s_t) and would bias the regression.
        noise[i]!.push(innovation);
        return Float32Array.from(current.act(state), (m, k) => m + eps[k]!);
      };
    });
    const results = await bridge.runEpisodes(seeds, policies);
    used += results.length;
    iteration++;
    policy = update(current, results, noise, { ...o, gamma });
    await onIteration?.({ iteration, rollouts: used, ...summarize(results), policy });
  }
  return policy;
}

/** One reward-weighted regression of the exploration noise on the features (pure but for mathjs). */
export function update(
  policy: GatedLinearPolicy,
  results: readonly EpisodeResult[],
  noise: readonly (readonly Float64Array[])[],
  o: { gamma: number; horizonDecay: number; temperature: number; ridge: number },
): GatedLinearPolicy {
  const q: number[] = [];
  const phis: Float64Array[] = [];
  const eps: Float64Array[] = [];
  results.forEach((r, i) => {
    const qs = new Float64Array(r.steps.length);
    let acc = 0;
    for (let t = r.steps.length - 1; t >= 0; t--) {
      acc = r.steps[t]!.shaped + o.gamma * o.horizonDecay * acc;
      qs[t] = acc;
    }
    r.steps.forEach((s, t) => {
      q.push(qs[t]!);
      phis.push(gatedFeatures(policy.task, s.state));
      eps.push(noise[i]![t]!);
    });
  });
  const n = q.length;
  const mean = q.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(q.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  if (!(std > 1e-12)) return policy; // every step earned the same: nothing to learn from
  const F = GATED_FEATURE_DIM;
  const gram = Array.from({ length: F }, () => new Array<number>(F).fill(0));
  const rhs = Array.from({ length: ACTION_DIM }, () => new Array<number>(F).fill(0));
  let weightSum = 0;
  for (let j = 0; j < n; j++) {
    const w = Math.min(MAX_WEIGHT, Math.exp((q[j]! - mean) / (o.temperature * std)));
    weightSum += w;
    const phi = phis[j]!;
    for (let a = 0; a < F; a++) {
      const fa = phi[a]! * w;
      if (fa === 0) continue;
      const row = gram[a]!;
      for (let b = a; b < F; b++) row[b]! += fa * phi[b]!;
      for (let k = 0; k < ACTION_DIM; k++) rhs[k]![a]! += fa * eps[j]![k]!;
    }
  }
  for (let a = 0; a < F; a++) {
    for (let b = 0; b < a; b++) gram[a]![b] = gram[b]![a]!;
    gram[a]![a]! += o.ridge * weightSum + 1e-9;
  }
  const cols = solveNormalEquations(gram, rhs);
  const theta = policy.params();
  for (let k = 0; k < ACTION_DIM; k++) {
    for (let a = 0; a < F; a++) theta[a * ACTION_DIM + k]! += cols[k]![a]!;
  }
  return policy.withParams(theta);
}

function summarize(results: readonly EpisodeResult[]): Omit<RlIteration, 'iteration' | 'rollouts' | 'policy'> {
  const k = results.length;
  const mean = (f: (r: EpisodeResult) => number): number => results.reduce((a, r) => a + f(r), 0) / k;
  return {
    successRate: mean((r) => (r.success ? 1 : 0)),
    meanReturn: mean((r) => r.shapedReturn),
    meanEnvReturn: mean((r) => r.envReturn),
    meanLength: mean((r) => r.length),
    meanFinalTrueProgress: mean((r) => r.finalTrueProgress),
    hoverShare: mean((r) => (!r.success && r.truncated && r.finalTrueProgress >= HOVER_PROGRESS ? 1 : 0)),
  };
}
