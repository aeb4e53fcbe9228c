// Reward shaping, pure (the rules: models/SHAPING.md). Turns potentials Phi(s_t), Phi(s_t+1), the env reward
// and the end-of-episode flags into the reward a learner sees.
//
//   pbrs      r + lambda * (gamma * Phi(s') * (1 - terminated) - Phi(s))   policy-invariant (Ng et al. 1999)
//   delta     the same with gamma = 1                                      policy-invariant for gamma = 1 learners
//   progress  r + lambda * Phi(s')                                          NOT invariant: the "semantic trap"
//   sparse    r                                                            the env reward alone
//
// On termination the next potential counts as 0; on truncation (a time limit) it keeps its value,
// because the learner bootstraps from s'. An optional bounded transform (PAR-style sigmoid of a
// centred potential, or the conservative one that subtracts k times the model's uncertainty) applies
// to each step's Phi itself, never to the difference.

export type ShapingMode = 'pbrs' | 'delta' | 'progress' | 'sparse';
export const SHAPING_MODES: readonly ShapingMode[] = ['pbrs', 'delta', 'progress', 'sparse'];

export type PotentialTransform =
  | { kind: 'identity' }
  | { kind: 'sigmoid'; center: number; temperature: number }
  /** Phi' = clamp(Phi - k * uncertainty, 0, 1): pay only for progress the ensemble agrees on. */
  | { kind: 'conservative'; k: number };

export const TRANSFORM_KINDS: readonly PotentialTransform['kind'][] = ['identity', 'sigmoid', 'conservative'];

export interface ShapingConfig {
  mode: ShapingMode;
  /** The learner's discount; must equal the one the learner uses. */
  gamma: number;
  /** lambda, the scale of the shaping term. */
  scale: number;
  transform: PotentialTransform;
}

export interface Transition {
  /** Phi(s_t), untransformed progress in [0, 1]. */
  phiBefore: number;
  /** Phi(s_t+1), untransformed progress in [0, 1]. */
  phiAfter: number;
  /** Env reward for the transition (0 when the client sends none). */
  reward: number;
  /** s_t+1 is a true terminal state (success or unrecoverable failure). */
  terminated: boolean;
  /**
   * The model's uncertainty at s_t and at s_t+1 (0 when absent or the model has none); only the
   * conservative transform reads them. Each must be the value its step had when it was s_t+1, so that
   * one step's potential is the same number on both sides of it and the sum still telescopes.
   */
  uncertaintyBefore?: number;
  uncertaintyAfter?: number;
}

/**
 * The potential the learner's reward is built on: Phi passed through the configured transform.
 * The sigmoid is rescaled so that Phi = 0 and Phi = 1 still map to 0 and 1. `uncertainty` is the
 * step's own (0 for a model without one, so the conservative transform is then the identity).
 */
export function potential(phi: number, transform: PotentialTransform, uncertainty = 0): number {
  if (transform.kind === 'identity') return phi;
  if (transform.kind === 'conservative') {
    const x = phi - transform.k * uncertainty;
    return x < 0 ? 0 : x > 1 ? 1 : x;
  }
  const s = (x: number) => 1 / (1 + Math.exp(-(x - transform.center) / transform.temperature));
  const lo = s(0);
  const hi = s(1);
  return (s(phi) - lo) / (hi - lo);
}

/** The shaped reward for one transition. */
export function shapedReward(t: Transition, cfg: ShapingConfig): number {
  const before = potential(t.phiBefore, cfg.transform, t.uncertaintyBefore ?? 0);
  const after = potential(t.phiAfter, cfg.transform, t.uncertaintyAfter ?? 0);
  switch (cfg.mode) {
    case 'sparse':
      return t.reward;
    case 'progress':
      return t.reward + cfg.scale * after;
    case 'pbrs':
      return t.reward + cfg.scale * (cfg.gamma * after * (t.terminated ? 0 : 1) - before);
    case 'delta':
      return t.reward + cfg.scale * (after * (t.terminated ? 0 : 1) - before);
  }
}

/**
 * What the discounted sum of the PBRS shaping terms of a whole episode must equal (telescoping):
 * `gamma^T * Phi'(s_T) * (1 - terminated) - Phi'(s_0)`, for potentials Phi(s_0..s_T) and, for the
 * conservative transform, the uncertainties of the same steps (absent: all 0).
 */
export function telescopedShaping(
  phis: readonly number[],
  terminated: boolean,
  cfg: ShapingConfig,
  uncertainties: readonly number[] = [],
): number {
  const T = phis.length - 1;
  const last = potential(phis[T]!, cfg.transform, uncertainties[T] ?? 0);
  const first = potential(phis[0]!, cfg.transform, uncertainties[0] ?? 0);
  const gamma = cfg.mode === 'delta' ? 1 : cfg.gamma;
  return cfg.scale * (gamma ** T * last * (terminated ? 0 : 1) - first);
}
