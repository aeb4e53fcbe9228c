// RA-BC sample weights (SARM paper; LeRobot's rabc.py), as pure functions a training script can
// call in memory. No I/O, no clocks, no globals.
//
// Per sample i at frame t of its episode (length T), with H the policy's action-chunk length:
//   r_i = Phi(min(t + H, T - 1)) - Phi(t)          the progress made over the chunk
// Over all scored samples of all episodes:
//   mu = max(mean r, 0),  sigma = max(std r, eps)   (std: population, divisor n)
//   w~ = clip((r - (mu - 2 sigma)) / (4 sigma + eps), 0, 1)
//   w  = 1 if r > kappa,  w~ if 0 <= r <= kappa,  0 if r < 0          (kappa 0.01, eps 1e-6)
// Missing progress: a sample whose Phi(t) or Phi(t + H, clamped) is NaN (the frame is absent from
// the progress file, or its value is NaN/null) gets weight 1 and a NaN delta, and is left out of
// mu, sigma, delta_mean and delta_std. So unscored data is trained on as plain behaviour cloning.
// Training loss per batch: sum(w_i * loss_i) / (sum(w_i) + 1e-6)  (weightedLoss).
//
//   const { weights, stats } = rabcWeights([phiEpisode0, phiEpisode1], { chunk: 10 });
//   const loss = weightedLoss(batchWeights, batchLosses);

import { StagewardError } from '../../core/errors.ts';

export const DEFAULT_KAPPA = 0.01;
export const DEFAULT_EPS = 1e-6;
/** The denominator guard of the weighted loss. */
export const LOSS_EPS = 1e-6;

export interface RabcOptions {
  /** Action-chunk horizon H in frames, an integer >= 1. */
  chunk: number;
  /** Deltas above kappa get full weight (default 0.01); >= 0. */
  kappa?: number;
  /** Floor of sigma and guard of the soft weight's denominator (default 1e-6); > 0. */
  eps?: number;
}

export interface RabcStats {
  /** Samples (frames) over all episodes, missing ones included. */
  samples: number;
  /** Samples without progress (weight 1, left out of mu/sigma). */
  missing: number;
  /** Samples with a delta: samples - missing. */
  scored: number;
  chunk: number;
  kappa: number;
  eps: number;
  /** max(mean delta, 0) and max(std delta, eps) over scored samples (0 and eps when none is scored). */
  mu: number;
  sigma: number;
  /** Mean and population std of the scored deltas; null when none is scored. */
  delta_mean: number | null;
  delta_std: number | null;
  /** Mean weight over all samples (missing ones count 1); null when there are no samples. LeRobot calls 0.3-0.8 healthy. */
  mean_weight: number | null;
  /** Shares of all samples: weight exactly 0 (dropped), strictly between 0 and 1 (down-weighted), and below 1 (either). */
  share_zero: number | null;
  share_downweighted: number | null;
  share_filtered: number | null;
  /** Scored samples by branch of the formula: r < 0, 0 <= r <= kappa, r > kappa. */
  negative: number;
  band: number;
  above_kappa: number;
}

export interface RabcResult {
  /** Per episode, per frame, in [0, 1]. */
  weights: Float64Array[];
  /** Per episode, per frame: r = Phi(t + H, clamped) - Phi(t); NaN where progress is missing. */
  deltas: Float64Array[];
  stats: RabcStats;
}

/** Check the options and fill in the defaults; throws SW_ERR_RABC_OPTION naming the bad one. */
export function resolveRabcOptions(options: RabcOptions): Required<RabcOptions> {
  const bad = (msg: string) => new StagewardError('SW_ERR_RABC_OPTION', msg);
  const { chunk, kappa = DEFAULT_KAPPA, eps = DEFAULT_EPS } = options;
  if (!Number.isInteger(chunk) || chunk < 1) throw bad(`chunk (the action-chunk horizon in frames) must be an integer >= 1, got ${chunk}`);
  if (!Number.isFinite(kappa) || kappa < 0) throw bad(`kappa must be a finite number >= 0, got ${kappa}`);
  if (!Number.isFinite(eps) || eps <= 0) throw bad(`eps must be a finite number > 0, got ${eps}`);
  return { chunk, kappa, eps };
}

/** r_t = Phi(min(t + chunk, T - 1)) - Phi(t) for each frame t of one episode; NaN where either end is missing. */
export function progressDeltas(progress: ArrayLike<number>, chunk: number): Float64Array {
  const T = progress.length;
  const out = new Float64Array(T);
  for (let t = 0; t < T; t++) out[t] = progress[Math.min(t + chunk, T - 1)]! - progress[t]!; // NaN propagates
  return out;
}

/** The soft weight w~ for a delta r. */
export function softWeight(r: number, mu: number, sigma: number, eps = DEFAULT_EPS): number {
  const w = (r - (mu - 2 * sigma)) / (4 * sigma + eps);
  return w < 0 ? 0 : w > 1 ? 1 : w;
}

/** The weight of one sample; a NaN delta (missing progress) gets 1. */
export function sampleWeight(r: number, mu: number, sigma: number, kappa = DEFAULT_KAPPA, eps = DEFAULT_EPS): number {
  if (Number.isNaN(r)) return 1;
  if (r > kappa) return 1;
  if (r < 0) return 0;
  return softWeight(r, mu, sigma, eps);
}

/** RA-BC weights and deltas for every frame of every episode, and their statistics. `NaN` progress = missing. */
export function rabcWeights(progressByEpisode: readonly ArrayLike<number>[], options: RabcOptions): RabcResult {
  const { chunk, kappa, eps } = resolveRabcOptions(options);
  const deltas = progressByEpisode.map((p) => progressDeltas(p, chunk));

  let samples = 0;
  let scored = 0;
  let sum = 0;
  for (const d of deltas) {
    samples += d.length;
    for (let t = 0; t < d.length; t++) {
      if (Number.isNaN(d[t]!)) continue;
      scored++;
      sum += d[t]!;
    }
  }
  const mean = scored > 0 ? sum / scored : NaN;
  let sq = 0;
  for (const d of deltas) {
    for (let t = 0; t < d.length; t++) if (!Number.isNaN(d[t]!)) sq += (d[t]! - mean) ** 2;
  }
  const std = scored > 0 ? Math.sqrt(sq / scored) : NaN;
  const mu = scored > 0 ? Math.max(mean, 0) : 0;
  const sigma = scored > 0 ? Math.max(std, eps) : eps;

  let weightSum = 0;
  let zero = 0;
  let down = 0;
  let negative = 0;
  let band = 0;
  let above = 0;
  const weights = deltas.map((d) => {
    const w = new Float64Array(d.length);
    for (let t = 0; t < d.length; t++) {
      const r = d[t]!;
      w[t] = sampleWeight(r, mu, sigma, kappa, eps);
      weightSum += w[t]!;
      if (w[t] === 0) zero++;
      else if (w[t]! < 1) down++;
      if (Number.isNaN(r)) continue;
      if (r < 0) negative++;
      else if (r > kappa) above++;
      else band++;
    }
    return w;
  });
  const share = (n: number) => (samples > 0 ? n / samples : null);
  return {
    weights,
    deltas,
    stats: {
      samples,
      missing: samples - scored,
      scored,
      chunk,
      kappa,
      eps,
      mu,
      sigma,
      delta_mean: scored > 0 ? mean : null,
      delta_std: scored > 0 ? std : null,
      mean_weight: share(weightSum),
      share_zero: share(zero),
      share_downweighted: share(down),
      share_filtered: share(zero + down),
      negative,
      band,
      above_kappa: above,
    },
  };
}

/** The RA-BC batch loss: sum(w * loss) / (sum(w) + 1e-6). */
export function weightedLoss(weights: ArrayLike<number>, losses: ArrayLike<number>): number {
  if (weights.length !== losses.length)
    throw new StagewardError('SW_ERR_RABC_OPTION', `weightedLoss: ${weights.length} weights for ${losses.length} losses`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < weights.length; i++) {
    num += weights[i]! * losses[i]!;
    den += weights[i]!;
  }
  return num / (den + LOSS_EPS);
}

/** Runs of consecutive frames where `keep(frame)` holds, as inclusive [first, last] pairs offset by `first`. */
export function indexRanges(length: number, keep: (t: number) => boolean, first = 0): [number, number][] {
  const out: [number, number][] = [];
  let start = -1;
  for (let t = 0; t <= length; t++) {
    const inside = t < length && keep(t);
    if (inside && start < 0) start = t;
    if (!inside && start >= 0) {
      out.push([first + start, first + t - 1]);
      start = -1;
    }
  }
  return out;
}
