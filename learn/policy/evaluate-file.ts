// A saved policy's success rate over seeded held-out simulator episodes, with a Wilson 95% interval and
// where the failures stop: what `stageward sim eval-policy` runs. Episode i uses simulator seed
// seed * SEEDS_PER_RUN + i, as `sim record` does, so a seed no recording used is held out.
//
//   const ev = await evaluatePolicyFile({ policy: 'runs/rabc.json', episodes: 100, seed: 22 });

import { resolve } from 'node:path';
import { writeFileAtomic } from '../../core/files.ts';
import { runSeeds, SEEDS_PER_RUN } from '../../sim/record.ts';
import { DEFAULT_EVAL_SEED, evaluatePolicy, failureBreakdown, type EpisodeOutcome, type PolicyEvaluation } from './evaluate.ts';
import { GatedLinearPolicy } from './linear-policy.ts';

/** Default number of evaluation episodes of `evaluatePolicyFile`. */
export const DEFAULT_POLICY_EVAL_EPISODES = 100;

export interface EvaluatePolicyFileOptions {
  /** Policy file (trainBcFromDataset or `stageward rl` write one). */
  policy: string;
  /** Default DEFAULT_POLICY_EVAL_EPISODES. */
  episodes?: number;
  /** Run seed: episode i uses simulator seed seed * SEEDS_PER_RUN + i (sim record's scheme); default DEFAULT_EVAL_SEED. */
  seed?: number;
  /** Episode length limit; default the task's. */
  maxSteps?: number;
  /** Also write the full result (per-episode outcomes included) to this JSON file. */
  json?: string;
}

export interface PolicyEvalSetup {
  /** The policy file, absolute. */
  path: string;
  policy: GatedLinearPolicy;
  provenance: Record<string, unknown>;
  /** The simulator seeds, first and last. */
  seeds: [number, number];
  /** The training data's seed range, when the evaluation seeds overlap it (not a held-out evaluation). */
  overlap: [unknown, unknown] | null;
}

export interface PolicyEvalHooks {
  /** The policy is loaded, before any episode runs. */
  onLoaded?: (setup: PolicyEvalSetup) => void;
  /** After each episode. */
  onEpisode?: (done: number, outcome: EpisodeOutcome) => void;
  /** The episodes are done (or failed). */
  onEvaluationEnd?: () => void;
}

/** The last stdout line of `stageward sim eval-policy`, and the head of its --json document. */
export interface PolicyEvalSummary {
  success_rate: number;
  ci95_low: number;
  ci95_high: number;
  episodes: number;
  successes: number;
  mean_steps: number;
  seed: number;
  failures_by_stage: Record<string, number>;
}

export interface PolicyEvalResult extends PolicyEvalSetup {
  result: PolicyEvaluation;
  /** Failed episodes by the stage they ended in, in the task's stage order. */
  failures: Record<string, number>;
  /** Mean highest true progress of the failed episodes, or null when none failed. */
  failedMeanMaxProgress: number | null;
  summary: PolicyEvalSummary;
  /** The --json file written, absolute, if any. */
  json: string | null;
}

/** Load a policy file and run it on seeded held-out episodes. */
export async function evaluatePolicyFile(o: EvaluatePolicyFileOptions, hooks: PolicyEvalHooks = {}): Promise<PolicyEvalResult> {
  const episodes = o.episodes ?? DEFAULT_POLICY_EVAL_EPISODES;
  const seed = o.seed ?? DEFAULT_EVAL_SEED;
  const { policy, provenance } = await GatedLinearPolicy.load(o.policy);
  const seeds = runSeeds(seed, episodes);
  const base = seed * SEEDS_PER_RUN;
  const range = provenance.dataset_seed_range;
  const overlaps = Array.isArray(range) && range.length === 2 && base <= Number(range[1]) && base + episodes - 1 >= Number(range[0]);
  const overlap = overlaps ? ([range[0], range[1]] as [unknown, unknown]) : null;
  const setup: PolicyEvalSetup = { path: resolve(o.policy), policy, provenance, seeds: [base, base + episodes - 1], overlap };
  hooks.onLoaded?.(setup);
  let result: PolicyEvaluation;
  try {
    result = await evaluatePolicy(policy, {
      task: policy.task.id,
      seeds,
      ...(o.maxSteps ? { maxSteps: o.maxSteps } : {}),
      ...(hooks.onEpisode ? { onEpisode: hooks.onEpisode } : {}),
    });
  } finally {
    hooks.onEvaluationEnd?.();
  }
  const failures = failureBreakdown(result, policy.task.stageNames);
  const [lo, hi] = result.ci95;
  const failed = result.episodes - result.successes;
  const failedMeanMaxProgress =
    failed > 0 ? result.outcomes.filter((x) => !x.success).reduce((a, x) => a + x.maxProgress, 0) / failed : null;
  const summary: PolicyEvalSummary = {
    success_rate: result.successRate,
    ci95_low: lo,
    ci95_high: hi,
    episodes: result.episodes,
    successes: result.successes,
    mean_steps: result.meanSteps,
    seed,
    failures_by_stage: failures,
  };
  let json: string | null = null;
  if (o.json !== undefined) {
    json = resolve(o.json);
    await writeFileAtomic(
      json,
      `${JSON.stringify({ ...summary, policy: setup.path, task: policy.task.id, seeds: setup.seeds, max_steps: o.maxSteps ?? null, provenance, outcomes: result.outcomes }, null, 2)}\n`,
    );
  }
  return { ...setup, result, failures, failedMeanMaxProgress, summary, json };
}
