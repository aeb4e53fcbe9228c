// Progress composition, pure: SARM stage + in-stage tau with priors -> Phi, Robo-Dopamine GRM hops
// from three perspectives -> Phi (the formulas: models/SHAPING.md, "The potential"), and the causal,
// confidence-weighted smoothing of Phi over an episode ("Smoothing"). No I/O, no state beyond the
// arguments: the engine carries the smoothed value from one step to the next.

export type Composition = 'argmax' | 'expected';

/** Softmax over the first `count` logits (a task's own stages); numerically stable. */
export function stageProbabilities(logits: ArrayLike<number>, count: number): number[] {
  let max = -Infinity;
  for (let k = 0; k < count; k++) max = Math.max(max, logits[k]!);
  const exps: number[] = [];
  let sum = 0;
  for (let k = 0; k < count; k++) {
    const e = Math.exp(logits[k]! - max);
    exps.push(e);
    sum += e;
  }
  return exps.map((e) => e / sum);
}

/** Index of the largest value; the first one wins a tie, so the result is deterministic. */
export function argmax(values: ArrayLike<number>, count = values.length): number {
  let best = 0;
  for (let k = 1; k < count; k++) if (values[k]! > values[best]!) best = k;
  return best;
}

/** P_k: the cumulative priors before each stage (P_0 = 0). */
export function cumulativePriors(priors: readonly number[]): number[] {
  const out: number[] = [];
  let acc = 0;
  for (const a of priors) {
    out.push(acc);
    acc += a;
  }
  return out;
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/**
 * SARM progress `Phi = P_k + a_k * tau` for stage k (argmax), or the probability-weighted mean of
 * each stage's value (expected). `priors` are the task's own; `probs` has the same length.
 */
export function sarmProgress(probs: readonly number[], tau: number, priors: readonly number[], composition: Composition): number {
  const cum = cumulativePriors(priors);
  const t = clamp01(tau);
  if (composition === 'argmax') {
    const k = argmax(probs);
    return clamp01(cum[k]! + priors[k]! * t);
  }
  let phi = 0;
  for (let k = 0; k < priors.length; k++) phi += probs[k]! * (cum[k]! + priors[k]! * t);
  return clamp01(phi);
}

/**
 * One incremental GRM update: a hop h in [-1, 1] is normalised by what remained, so
 * `Phi + (1 - Phi) h` going forward and `Phi + Phi h` going back. Stays in [0, 1] for Phi in [0, 1].
 */
export function applyHop(previous: number, hop: number): number {
  const p = clamp01(previous);
  const h = Math.max(-1, Math.min(1, hop));
  return clamp01(h >= 0 ? p + (1 - p) * h : p + p * h);
}

export interface GrmHops {
  /** hop(previous frame -> current) */
  incremental: number;
  /** hop(start -> current) */
  forward: number;
  /** hop(goal -> current); absent when the episode has no goal frames */
  backward?: number;
}

export interface GrmProgress {
  /** Fused Phi in [0, 1]. */
  progress: number;
  /** The incremental perspective's running value, carried to the next step. */
  incremental: number;
}

/**
 * Fuse the three GRM perspectives (models/PACKAGE.md, "GRM perspectives"): incremental chains on its
 * own previous value,
 * forward-anchored is `h(start, current)`, backward-anchored is `1 + h(goal, current)`; the result is
 * the mean, clipped to [0, 1].
 */
export function fuseGrm(previousIncremental: number, hops: GrmHops): GrmProgress {
  const incremental = applyHop(previousIncremental, hops.incremental);
  const views = [incremental, hops.forward];
  if (hops.backward !== undefined) views.push(1 + hops.backward);
  const mean = views.reduce((a, b) => a + b, 0) / views.length;
  return { progress: clamp01(mean), incremental };
}

/**
 * Robo-Dopamine's hop between true progress values (models/PACKAGE.md): the label a GRM learns, and the
 * inverse of `applyHop`. 0 when the denominator is 0.
 */
export function hopBetween(from: number, to: number): number {
  if (to >= from) return from >= 1 ? 0 : (to - from) / (1 - from);
  return from <= 0 ? 0 : (to - from) / from;
}

/** Causal smoothing of Phi over an episode (models/SHAPING.md, "Smoothing"); off by default. */
export type ProgressSmoothing = { kind: 'none' } | { kind: 'ema'; alpha: number; u0: number };
export const SMOOTHING_KINDS: readonly ProgressSmoothing['kind'][] = ['none', 'ema'];

/**
 * Defaults of the `ema` smoothing. alpha 0.5: a step moves halfway to the new value, so a jump is
 * followed within a few steps. u0 0.05: the uncertainty (a std of progress) at which the weight
 * halves; an ensemble's spread is a few hundredths where it agrees, so only real disagreement slows it.
 */
export const DEFAULT_EMA = { alpha: 0.5, u0: 0.05 } as const;

/**
 * The weight of step t's new value, `alpha / (1 + u / u0)`: alpha where the model is sure (u = 0, or
 * a model without uncertainty: a plain EMA), falling towards 0 as the uncertainty grows, so a
 * doubtful frame moves the smoothed value less.
 */
export function smoothingWeight(s: { alpha: number; u0: number }, uncertainty: number): number {
  return s.alpha / (1 + Math.max(0, uncertainty) / s.u0);
}

/**
 * One causal smoothing step: `Phi_s(t) = Phi_s(t-1) + w_t * (Phi(t) - Phi_s(t-1))`. `previous` is
 * Phi_s(t-1), undefined at step 0, where the smoothed value starts at Phi(0) (starting from 0 would
 * understate every episode's first steps). A convex combination of values in [0, 1] stays in [0, 1].
 */
export function smoothProgress(previous: number | undefined, phi: number, uncertainty: number, s: ProgressSmoothing): number {
  if (s.kind === 'none' || previous === undefined) return phi;
  return previous + smoothingWeight(s, uncertainty) * (phi - previous);
}
