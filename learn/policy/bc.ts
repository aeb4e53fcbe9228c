// Weighted behaviour cloning: fit the gated-linear policy's weights W by weighted ridge regression
// of the demonstrated actions on the phase-gated features,
//   W = argmin sum_i w_i |a_i - W^T phi(s_i)|^2 + ridge * (sum_i w_i) * |W|^2,
// solved in closed form through the normal equations (mathjs LU decomposition). With w_i = 1 this is
// plain BC; with RA-BC weights (sim/rabc) samples that lost progress count less or not at all.

import { solveNormalEquations } from './solve.ts';
import { StagewardError } from '../../core/errors.ts';
import type { SimTask, TaskId } from '../../sim/tasks/task.ts';
import { getTask } from '../../sim/tasks/index.ts';
import { GATED_FEATURE_DIM, gatedFeatures } from './features.ts';
import { ACTION_DIM, GatedLinearPolicy } from './linear-policy.ts';

export interface BcSample {
  state: ArrayLike<number>;
  action: ArrayLike<number>;
  /** Sample weight >= 0 (RA-BC weight, or 1 for plain BC). */
  weight: number;
}

export interface BcOptions {
  /** Ridge strength relative to the total weight (default 1e-4). */
  ridge?: number;
}

export interface BcFit {
  policy: GatedLinearPolicy;
  samples: number;
  /** Samples with a weight > 0, and the sum of weights. */
  used: number;
  weightSum: number;
  /** Weighted root-mean-square residual of the fitted (unclipped) actions. */
  residualRms: number;
}

export function fitBehaviourCloning(task: SimTask | TaskId, samples: readonly BcSample[], opts: BcOptions = {}): BcFit {
  const t = typeof task === 'string' ? getTask(task) : task;
  const ridge = opts.ridge ?? 1e-4;
  if (!(ridge >= 0)) throw new StagewardError('SW_ERR_POLICY', `ridge must be >= 0, got ${ridge}`);
  const F = GATED_FEATURE_DIM;
  const gram = Array.from({ length: F }, () => new Array<number>(F).fill(0));
  const rhs = Array.from({ length: ACTION_DIM }, () => new Array<number>(F).fill(0));
  const phi = new Float64Array(F);
  let used = 0;
  let weightSum = 0;
  for (const s of samples) {
    const w = s.weight;
    if (!(w >= 0) || !Number.isFinite(w)) throw new StagewardError('SW_ERR_POLICY', `sample weights must be finite and >= 0, got ${w}`);
    if (w === 0) continue;
    if (s.action.length !== ACTION_DIM)
      throw new StagewardError('SW_ERR_POLICY', `actions have ${ACTION_DIM} numbers, got ${s.action.length}`);
    used++;
    weightSum += w;
    gatedFeatures(t, s.state, phi);
    for (let a = 0; a < F; a++) {
      const fa = phi[a]! * w;
      if (fa === 0) continue;
      const row = gram[a]!;
      for (let b = a; b < F; b++) row[b]! += fa * phi[b]!;
      for (let k = 0; k < ACTION_DIM; k++) rhs[k]![a]! += fa * s.action[k]!;
    }
  }
  if (used === 0) throw new StagewardError('SW_ERR_POLICY', 'no sample has a positive weight: nothing to clone');
  for (let a = 0; a < F; a++) {
    for (let b = 0; b < a; b++) gram[a]![b] = gram[b]![a]!;
    // A feature that is never active still gets a (zero) solution.
    gram[a]![a]! += ridge * weightSum + 1e-9;
  }
  const cols = solveNormalEquations(gram, rhs);
  const weights = new Float64Array(F * ACTION_DIM);
  for (let k = 0; k < ACTION_DIM; k++) {
    for (let a = 0; a < F; a++) weights[a * ACTION_DIM + k] = cols[k]![a]!;
  }
  const policy = new GatedLinearPolicy(t, weights);
  let sq = 0;
  for (const s of samples) {
    if (s.weight === 0) continue;
    gatedFeatures(t, s.state, phi);
    for (let k = 0; k < ACTION_DIM; k++) {
      let y = 0;
      for (let a = 0; a < F; a++) y += phi[a]! * weights[a * ACTION_DIM + k]!;
      sq += s.weight * (y - s.action[k]!) ** 2;
    }
  }
  return { policy, samples: samples.length, used, weightSum, residualRms: Math.sqrt(sq / (weightSum * ACTION_DIM)) };
}

export const DEFAULT_RIDGE = 1e-4;
