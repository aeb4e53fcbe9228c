// Success rate of a state-based policy over seeded simulator episodes, with a Wilson 95% interval.
// No frames are rendered (the policy reads observation.state only), so hundreds of episodes take
// seconds.

import { SimEnv } from '../../sim/env.ts';
import type { TaskId } from '../../sim/tasks/task.ts';

export interface StatePolicy {
  act(state: Float32Array): Float32Array;
}

export interface EpisodeOutcome {
  seed: number;
  success: boolean;
  steps: number;
  /** The annotator's final stage name and progress. */
  finalStage: string;
  finalProgress: number;
  /** Highest true progress reached during the episode. */
  maxProgress: number;
}

export interface PolicyEvaluation {
  episodes: number;
  successes: number;
  successRate: number;
  /** Wilson score interval at 95%. */
  ci95: [number, number];
  meanSteps: number;
  outcomes: EpisodeOutcome[];
}

/** Wilson score interval for k successes out of n (z = 1.96 for 95%). */
export function wilsonInterval(k: number, n: number, z = 1.96): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  // At k = 0 or k = n the bound is exactly 0 or 1; rounding would otherwise leave 1e-16 or 0.9999999999999999.
  return [k === 0 ? 0 : Math.max(0, centre - half), k === n ? 1 : Math.min(1, centre + half)];
}

export interface EvaluateOptions {
  task: TaskId;
  seeds: readonly number[];
  maxSteps?: number;
  onEpisode?: (done: number, outcome: EpisodeOutcome) => void;
}

export async function evaluatePolicy(policy: StatePolicy, opts: EvaluateOptions): Promise<PolicyEvaluation> {
  const env = await SimEnv.create({ task: opts.task, seed: opts.seeds[0] ?? 0, maxSteps: opts.maxSteps });
  const outcomes: EpisodeOutcome[] = [];
  try {
    for (const seed of opts.seeds) {
      let obs = env.reset(seed);
      let success = false;
      let steps = 0;
      let maxProgress = env.info().trueProgress;
      for (;;) {
        const r = env.step(policy.act(obs.state));
        steps++;
        obs = r.observation;
        maxProgress = Math.max(maxProgress, r.info.trueProgress);
        success ||= r.info.success;
        if (r.terminated || r.truncated) {
          const o = { seed, success, steps, finalStage: r.info.stageName, finalProgress: r.info.trueProgress, maxProgress };
          outcomes.push(o);
          opts.onEpisode?.(outcomes.length, o);
          break;
        }
      }
    }
  } finally {
    env.close();
  }
  const successes = outcomes.filter((o) => o.success).length;
  const n = outcomes.length;
  return {
    episodes: n,
    successes,
    successRate: n ? successes / n : 0,
    ci95: wilsonInterval(successes, n),
    meanSteps: n ? outcomes.reduce((a, o) => a + o.steps, 0) / n : 0,
    outcomes,
  };
}

/** eval-policy's default run seed: far from `sim record`'s default (0) and the small seeds people pick. */
export const DEFAULT_EVAL_SEED = 40_000;

/** Failures by the stage they ended in, in the task's stage order. */
export function failureBreakdown(result: PolicyEvaluation, stageNames: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of result.outcomes) if (!o.success) out[o.finalStage] = (out[o.finalStage] ?? 0) + 1;
  const order = (s: string) => (stageNames.includes(s) ? stageNames.indexOf(s) : stageNames.length);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => order(a) - order(b)));
}
