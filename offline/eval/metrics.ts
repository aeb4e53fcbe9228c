// Metrics for evaluating a progress model (what each measures: evaluate.ts), pure: no I/O,
// no clocks, no globals. Inputs are plain number sequences; outputs are numbers, or null where the
// metric is undefined (an empty class, no frames).
//
//   spearman(a, b)            rank correlation with average ranks for ties; 0 when either side is constant
//   valueOrderCorrelation(p)  VOC (GVL): spearman(progress, frame index); reversed input gives VOC- (Robo-Dopamine-Bench)
//   auroc(pos, neg)           Mann-Whitney U / (n+ n-), ties count 1/2; null when a class is empty
//   meanAbsoluteError(p, y)   mean |p - y|; null for no frames
//   accuracy(p, y)            share of equal entries; null for no frames

type Numbers = ArrayLike<number>;

function checkSameLength(a: Numbers, b: Numbers, what: string): void {
  if (a.length !== b.length) throw new RangeError(`${what}: sequences differ in length (${a.length} vs ${b.length})`);
}

/** Ranks 1..n with ties given their average rank (the "fractional" ranking Spearman needs). */
export function averageRanks(values: Numbers): Float64Array {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => values[i]! - values[j]!);
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]!] === values[order[i]!]) j++;
    const rank = (i + j) / 2 + 1; // mean of ranks i+1 .. j+1
    for (let k = i; k <= j; k++) ranks[order[k]!] = rank;
    i = j + 1;
  }
  return ranks;
}

/** Pearson correlation; 0 when either side has zero variance or fewer than two points. */
export function pearson(a: Numbers, b: Numbers): number {
  checkSameLength(a, b, 'pearson');
  const n = a.length;
  if (n < 2) return 0;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma;
    const db = b[i]! - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa === 0 || sbb === 0) return 0;
  const r = sab / Math.sqrt(saa * sbb);
  return Math.max(-1, Math.min(1, r));
}

/**
 * Spearman rank correlation in [-1, 1]: Pearson on average ranks, so ties are handled exactly.
 * A constant side (or fewer than two points) gives 0, as GVL scores constant predictions.
 */
export function spearman(a: Numbers, b: Numbers): number {
  checkSameLength(a, b, 'spearman');
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]!) || !Number.isFinite(b[i]!)) throw new RangeError(`spearman: non-finite value at ${i}`);
  }
  return pearson(averageRanks(a), averageRanks(b));
}

/**
 * Value-order correlation (GVL): Spearman between a progress stream and its step index 0..n-1.
 * Fed the frames of an episode in order it is VOC+ (ideal 1); fed them reversed, VOC- (ideal -1).
 */
export function valueOrderCorrelation(progress: Numbers): number {
  const time = Float64Array.from({ length: progress.length }, (_, i) => i);
  return spearman(progress, time);
}

/**
 * Area under the ROC curve of scores separating `positives` from `negatives`: the probability that
 * a random positive scores above a random negative, ties counting 1/2 (Mann-Whitney U / (n+ n-)).
 * null when either class is empty.
 */
export function auroc(positives: Numbers, negatives: Numbers): number | null {
  const np = positives.length;
  const nn = negatives.length;
  if (np === 0 || nn === 0) return null;
  const all = new Float64Array(np + nn);
  for (let i = 0; i < np; i++) all[i] = positives[i]!;
  for (let i = 0; i < nn; i++) all[np + i] = negatives[i]!;
  for (const v of all) if (Number.isNaN(v)) throw new RangeError('auroc: NaN score');
  const ranks = averageRanks(all);
  let rankSum = 0;
  for (let i = 0; i < np; i++) rankSum += ranks[i]!;
  const u = rankSum - (np * (np + 1)) / 2;
  return u / (np * nn);
}

/** Mean of |prediction - target|; null for empty input. */
export function meanAbsoluteError(prediction: Numbers, target: Numbers): number | null {
  checkSameLength(prediction, target, 'meanAbsoluteError');
  if (prediction.length === 0) return null;
  let s = 0;
  for (let i = 0; i < prediction.length; i++) s += Math.abs(prediction[i]! - target[i]!);
  return s / prediction.length;
}

/** Share of positions where prediction equals target; null for empty input. */
export function accuracy(prediction: Numbers, target: Numbers): number | null {
  checkSameLength(prediction, target, 'accuracy');
  if (prediction.length === 0) return null;
  let hits = 0;
  for (let i = 0; i < prediction.length; i++) if (prediction[i] === target[i]) hits++;
  return hits / prediction.length;
}

/** Arithmetic mean; null for empty input. */
export function mean(values: Numbers): number | null {
  if (values.length === 0) return null;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s / values.length;
}

/** Mean of `values` weighted by `weights` (e.g. per-episode rates by frame count); null when the weights sum to 0. */
export function weightedMean(values: Numbers, weights: Numbers): number | null {
  checkSameLength(values, weights, 'weightedMean');
  let s = 0;
  let w = 0;
  for (let i = 0; i < values.length; i++) {
    s += values[i]! * weights[i]!;
    w += weights[i]!;
  }
  return w > 0 ? s / w : null;
}
