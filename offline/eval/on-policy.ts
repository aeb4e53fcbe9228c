// On-policy metrics: how a progress stream Phi tracks the simulator's true progress on the states a
// policy visits (annotation.true_progress of a `sim record` dataset), pure. What a learner gets from
// PBRS is the change of Phi, so the change is measured as well as the level.
//
//   progress_pearson   Pearson(Phi, truth) per episode, averaged over episodes whose truth varies
//   delta_pearson_1s   Pearson of Phi(t + 1 s) - Phi(t) against the same of the truth, over every
//                      1-s window (lag = round(fps) frames) of every episode pooled
//   stall_drift_per_s  mean |Phi(t + 1 s) - Phi(t)| over the windows where the truth does not change
//                      (|change| <= STALL_EPS): false progress while nothing happens, per second
//   false_high_rate    share of frames where Phi exceeds the truth by more than FALSE_HIGH_MARGIN
//   uncertainty_auroc  AUROC of the reported uncertainty separating the frames with
//                      |Phi - truth| > ERROR_MARGIN (positives) from the rest; null without uncertainty
//   uncertainty_mean   mean reported uncertainty; null without
//   large_error_share  share of frames with |Phi - truth| > ERROR_MARGIN (the AUROC's positives; with
//                      a handful of them the AUROC says little)
// Every value is null where it is undefined (no qualifying episode, window or class).

import { auroc, pearson } from './metrics.ts';

export const STALL_EPS = 1e-4;
export const FALSE_HIGH_MARGIN = 0.2;
export const ERROR_MARGIN = 0.1;

/** One episode's per-frame series, in frame order. */
export interface OnPolicySeries {
  phi: ArrayLike<number>;
  truth: ArrayLike<number>;
  /** Per-frame uncertainty, or null when the model reports none. */
  uncertainty: ArrayLike<number> | null;
  /** Frames per second of the episode (the 1-s window is round(fps) frames). */
  fps: number;
}

export interface OnPolicyMetrics {
  progress_pearson: number | null;
  delta_pearson_1s: number | null;
  stall_drift_per_s: number | null;
  false_high_rate: number | null;
  uncertainty_auroc: number | null;
  uncertainty_mean: number | null;
  large_error_share: number | null;
}

export const NO_ON_POLICY: OnPolicyMetrics = {
  progress_pearson: null,
  delta_pearson_1s: null,
  stall_drift_per_s: null,
  false_high_rate: null,
  uncertainty_auroc: null,
  uncertainty_mean: null,
  large_error_share: null,
};

function varies(x: ArrayLike<number>): boolean {
  for (let i = 1; i < x.length; i++) if (x[i] !== x[0]) return true;
  return false;
}

/** The metrics above over `episodes` pooled (per-episode values: call it with one episode). */
export function onPolicyMetrics(episodes: readonly OnPolicySeries[]): OnPolicyMetrics {
  const perEpisode: number[] = [];
  const dPhi: number[] = [];
  const dTruth: number[] = [];
  let drift = 0;
  let stalls = 0;
  let frames = 0;
  let falseHigh = 0;
  let largeError = 0;
  const errUnc: number[] = [];
  const okUnc: number[] = [];
  let uncSum = 0;
  let uncFrames = 0;
  for (const ep of episodes) {
    const { phi, truth, uncertainty, fps } = ep;
    if (!(fps > 0)) throw new RangeError(`onPolicyMetrics: fps must be > 0, got ${fps}`);
    const lag = Math.max(1, Math.round(fps));
    if (phi.length !== truth.length || (uncertainty !== null && uncertainty.length !== phi.length))
      throw new RangeError(`onPolicyMetrics: series differ in length (${phi.length}, ${truth.length}, ${uncertainty?.length ?? '-'})`);
    if (varies(truth) && phi.length >= 2) perEpisode.push(pearson(phi, truth));
    for (let t = 0; t + lag < phi.length; t++) {
      const a = phi[t + lag]! - phi[t]!;
      const b = truth[t + lag]! - truth[t]!;
      dPhi.push(a);
      dTruth.push(b);
      if (Math.abs(b) <= STALL_EPS) {
        drift += Math.abs(a);
        stalls++;
      }
    }
    for (let t = 0; t < phi.length; t++) {
      frames++;
      if (phi[t]! - truth[t]! > FALSE_HIGH_MARGIN) falseHigh++;
      if (Math.abs(phi[t]! - truth[t]!) > ERROR_MARGIN) largeError++;
      if (uncertainty !== null) {
        (Math.abs(phi[t]! - truth[t]!) > ERROR_MARGIN ? errUnc : okUnc).push(uncertainty[t]!);
        uncSum += uncertainty[t]!;
        uncFrames++;
      }
    }
  }
  return {
    progress_pearson: perEpisode.length ? perEpisode.reduce((a, b) => a + b, 0) / perEpisode.length : null,
    delta_pearson_1s: dPhi.length >= 2 && varies(dTruth) ? pearson(dPhi, dTruth) : null,
    // the window is 1 s long, so the mean change over it is already per second
    stall_drift_per_s: stalls ? drift / stalls : null,
    false_high_rate: frames ? falseHigh / frames : null,
    uncertainty_auroc: auroc(errUnc, okUnc),
    uncertainty_mean: uncFrames ? uncSum / uncFrames : null,
    large_error_share: frames ? largeError / frames : null,
  };
}
