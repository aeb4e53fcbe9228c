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
// centred potential) applies to Phi itself, never to the difference.

export type ShapingMode = 'pbrs' | 'delta' | 'progress' | 'sparse';
export const SHAPING_MODES: readonly ShapingMode[] = ['pbrs', 'delta', 'progress', 'sparse'];

export type PotentialTransform = { kind: 'identity' } | { kind: 'sigmoid'; center: number; temperature: number };

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
}

/**
 * The potential the learner's reward is built on: Phi passed through the configured transform.
 * The sigmoid is rescaled so that Phi = 0 and Phi = 1 still map to 0 and 1.
 */
export function potential(phi: number, transform: PotentialTransform): number {
  if (transform.kind === 'identity') return phi;
  const s = (x: number) => 1 / (1 + Math.exp(-(x - transform.center) / transform.temperature));
  const lo = s(0);
  const hi = s(1);
  return (s(phi) - lo) / (hi - lo);
}

/** The shaped reward for one transition. */
export function shapedReward(t: Transition, cfg: ShapingConfig): number {
  const before = potential(t.phiBefore, cfg.transform);
  const after = potential(t.phiAfter, cfg.transform);
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
 * `gamma^T * Phi(s_T) * (1 - terminated) - Phi(s_0)`, for potentials Phi(s_0..s_T).
 */
export function telescopedShaping(phis: readonly number[], terminated: boolean, cfg: ShapingConfig): number {
  const T = phis.length - 1;
  const last = potential(phis[T]!, cfg.transform);
  const first = potential(phis[0]!, cfg.transform);
  const gamma = cfg.mode === 'delta' ? 1 : cfg.gamma;
  return cfg.scale * (gamma ** T * last * (terminated ? 0 : 1) - first);
}
