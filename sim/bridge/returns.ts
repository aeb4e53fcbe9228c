// Pure bookkeeping of one bridge episode: the true-progress shaping (pbrs-true, through the engine's
// own shaping function, so the same terminal and truncation rules hold) and the episode's returns.

import { shapedReward, type ShapingConfig, type ShapingMode } from '../../models/shaping.ts';
import { REWARD_MODE_SPEC, type EpisodeResult, type ModelFreeRewardMode, type StepRecord } from './types.ts';

/** The engine's shaping config for the bridge's settings (identity potential). */
export function shapingConfig(mode: ShapingMode, gamma: number, scale: number): ShapingConfig {
  return { mode, gamma, scale, transform: { kind: 'identity' } };
}

/**
 * The learner's reward and the Phi(s') used, for the modes that need no model: without a potential
 * (sparse) r alone and Phi NaN; with the simulator's true progress as the potential (pbrs-true) the
 * mode's shaping over it.
 */
export function modelFreeReward(
  mode: ModelFreeRewardMode,
  t: { phiBefore: number; trueProgressAfter: number; reward: number; terminated: boolean },
  gamma: number,
  scale: number,
): { shaped: number; progress: number } {
  const spec = REWARD_MODE_SPEC[mode];
  if (spec.potential === null) return { shaped: t.reward, progress: NaN };
  const shaped = shapedReward(
    { phiBefore: t.phiBefore, phiAfter: t.trueProgressAfter, reward: t.reward, terminated: t.terminated },
    shapingConfig(spec.shaping, gamma, scale),
  );
  return { shaped, progress: t.trueProgressAfter };
}

/** An episode's result from its steps (all rewards filled in). */
export function summarizeEpisode(seed: number, steps: StepRecord[], phi0: number, success: boolean, gamma: number): EpisodeResult {
  let shapedReturn = 0;
  let undiscountedShaped = 0;
  let envReturn = 0;
  let discount = 1;
  for (const s of steps) {
    shapedReturn += discount * s.shaped;
    undiscountedShaped += s.shaped;
    envReturn += s.envReward;
    discount *= gamma;
  }
  const last = steps[steps.length - 1];
  return {
    seed,
    steps,
    success,
    shapedReturn,
    undiscountedShaped,
    envReturn,
    phi0,
    finalProgress: last === undefined ? phi0 : last.progress,
    finalTrueProgress: last === undefined ? NaN : last.trueProgress,
    length: steps.length,
    terminated: last?.terminated ?? false,
    truncated: last?.truncated ?? false,
  };
}
