// Feature statistics as LeRobot v3.0 computes and stores them: per episode (the `stats/<feature>/<stat>`
// columns of meta/episodes) and for the dataset (meta/stats.json, the aggregate of the episodes').
// Per feature: min, max, mean, std (population), count, and the quantiles q01, q10, q50, q90, q99 that
// quantile normalisation (pi0.5) needs. Vectors are per dimension with count [frames]; camera images are
// per channel on [0, 1] shaped [3, 1, 1], count [frames sampled].
//
// The rules, LeRobot's (lerobot/datasets/compute_stats.py), reimplemented:
// - Quantiles of one episode come from a 5000-bin histogram per dimension over
//   [min - 1e-10, max + 1e-10] (bins closed on the left, the last one on both sides): the first bin
//   where the cumulative count reaches q * n, interpolated linearly inside that bin. With fewer than two
//   rows, every quantile is the mean. The bin edges are computed in the precision numpy would use for
//   the column (`StatsPrecision`: float32 for float32 and bool columns and for images, float64 for
//   int64 ones), so the quantiles match LeRobot's to the last bit when given the same rows.
// - Images: LeRobot takes a subset of an episode's frames (`sampleIndices`: all of them below 100,
//   then about T^0.75, evenly spaced) and strides frames with a side of 300 px or more down to about
//   150 px; the statistics are over every pixel of those frames, divided by 255.
// - Across episodes (`aggregateStats`): min of mins, max of maxes, count-weighted mean, the pooled
//   variance (parallel algorithm), summed counts. Quantiles cannot be pooled exactly from summaries;
//   LeRobot keeps a conservative envelope, and so do we: the smallest episode value for q01, q10 and
//   q50, the largest for q90 and q99. (LeRobot releases before mid-2026 took the count-weighted mean
//   of the episodes' quantiles instead.)
// Means and standard deviations are computed in float64 (two passes); LeRobot's float32 running sums
// can differ from them in the last float32 digits.

export const QUANTILE_KEYS = ['q01', 'q10', 'q50', 'q90', 'q99'] as const;
export type QuantileKey = (typeof QUANTILE_KEYS)[number];
/** Every statistic of a feature, in the order LeRobot writes them. */
export const STAT_KEYS = ['min', 'max', 'mean', 'std', 'count', ...QUANTILE_KEYS] as const;
export type StatKey = (typeof STAT_KEYS)[number];

const QUANTILE_LEVELS: Record<QuantileKey, number> = { q01: 0.01, q10: 0.1, q50: 0.5, q90: 0.9, q99: 0.99 };
/** Histogram bins per dimension for the quantiles (LeRobot's default). */
export const QUANTILE_BINS = 5000;
const EDGE_PAD = 1e-10;

/** The arithmetic of the histogram edges: numpy's type for the column promoted with float32. */
export type StatsPrecision = 'float32' | 'float64';

/** Per dimension (`number[]`) or, for a camera, per channel as [3, 1, 1] (`number[][][]`). */
export type StatValue = number[] | number[][][];

export type FeatureStats = { [K in Exclude<StatKey, 'count'>]: StatValue } & { count: number[] };

// ------------------------------------------------------------------------------------- one dimension

interface DimStats {
  min: number;
  max: number;
  mean: number;
  std: number;
  quantiles: Record<QuantileKey, number>;
}

/** numpy.linspace(min - 1e-10, max + 1e-10, QUANTILE_BINS + 1) in the given precision. */
export function histogramEdges(min: number, max: number, precision: StatsPrecision): Float64Array {
  const r = precision === 'float32' ? Math.fround : (x: number) => x;
  const start = r(min - EDGE_PAD);
  const stop = r(max + EDGE_PAD);
  const delta = r(stop - start);
  const step = r(delta / QUANTILE_BINS);
  const edges = new Float64Array(QUANTILE_BINS + 1);
  for (let i = 0; i < QUANTILE_BINS; i++) edges[i] = step === 0 ? r(r(r(i / QUANTILE_BINS) * delta) + start) : r(r(i * step) + start);
  edges[QUANTILE_BINS] = stop;
  return edges;
}

/** The bin of x: the last i below QUANTILE_BINS with edges[i] <= x (x lies within the edges). */
function binOf(edges: Float64Array, x: number): number {
  let lo = 0;
  let hi = QUANTILE_BINS; // edges[lo] <= x holds; find the last such index below QUANTILE_BINS
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid]! <= x) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Quantiles from a histogram: the first bin whose cumulative count reaches q * n, interpolated in it. */
function histogramQuantiles(hist: Float64Array, edges: Float64Array, n: number, precision: StatsPrecision): Record<QuantileKey, number> {
  const r = precision === 'float32' ? Math.fround : (x: number) => x;
  const cum = new Float64Array(QUANTILE_BINS);
  let run = 0;
  for (let i = 0; i < QUANTILE_BINS; i++) cum[i] = run += hist[i]!;
  const one = (q: number): number => {
    const target = q * n;
    let lo = 0;
    let hi = QUANTILE_BINS; // first idx with cum[idx] >= target, QUANTILE_BINS when none
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid]! < target) lo = mid + 1;
      else hi = mid;
    }
    const idx = lo;
    if (idx === 0) return edges[0]!;
    if (idx >= QUANTILE_BINS) return edges[QUANTILE_BINS]!;
    const before = cum[idx - 1]!;
    const inBin = cum[idx]! - before;
    if (inBin === 0) return edges[idx]!;
    return edges[idx]! + ((target - before) / inBin) * r(edges[idx + 1]! - edges[idx]!);
  };
  return Object.fromEntries(QUANTILE_KEYS.map((k) => [k, one(QUANTILE_LEVELS[k])])) as Record<QuantileKey, number>;
}

/**
 * Statistics of one dimension given as distinct values (ascending) with their counts; `n` = the sum of
 * the counts, the number of rows.
 */
function dimStats(values: ArrayLike<number>, counts: ArrayLike<number>, n: number, precision: StatsPrecision): DimStats {
  const min = values[0]!;
  const max = values[values.length - 1]!;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]! * counts[i]!;
  const mean = sum / n;
  let m2 = 0;
  for (let i = 0; i < values.length; i++) m2 += (values[i]! - mean) ** 2 * counts[i]!;
  const std = Math.sqrt(m2 / n);
  if (n < 2)
    return { min, max, mean, std, quantiles: Object.fromEntries(QUANTILE_KEYS.map((k) => [k, mean])) as Record<QuantileKey, number> };
  const edges = histogramEdges(min, max, precision);
  const hist = new Float64Array(QUANTILE_BINS);
  for (let i = 0; i < values.length; i++) hist[binOf(edges, values[i]!)]! += counts[i]!;
  return { min, max, mean, std, quantiles: histogramQuantiles(hist, edges, n, precision) };
}

function statsOf(dims: DimStats[], count: number, shape: (v: number[]) => StatValue): FeatureStats {
  const pick = (f: (d: DimStats) => number) => shape(dims.map(f));
  const out: Record<string, StatValue> = {
    min: pick((d) => d.min),
    max: pick((d) => d.max),
    mean: pick((d) => d.mean),
    std: pick((d) => d.std),
    count: [count],
  };
  for (const k of QUANTILE_KEYS) out[k] = pick((d) => d.quantiles[k]);
  return out as FeatureStats;
}

// ----------------------------------------------------------------------------------------- features

/** LeRobot's statistics of one episode's numeric feature: `rows` [T][dim], per dimension. */
export function vectorStats(rows: readonly ArrayLike<number>[], dim: number, precision: StatsPrecision): FeatureStats {
  const T = rows.length;
  const dims: DimStats[] = [];
  const column = new Float64Array(T);
  for (let d = 0; d < dim; d++) {
    for (let t = 0; t < T; t++) column[t] = rows[t]![d]!;
    column.sort();
    const values: number[] = [];
    const counts: number[] = [];
    for (let t = 0; t < T; t++) {
      if (values.length > 0 && values[values.length - 1] === column[t]) counts[counts.length - 1]!++;
      else {
        values.push(column[t]!);
        counts.push(1);
      }
    }
    dims.push(dimStats(values, counts, T, precision));
  }
  return statsOf(dims, T, (v) => v);
}

/** The frames of an episode of `length` frames that LeRobot's image statistics use, ascending. */
export function sampleIndices(length: number): number[] {
  if (length <= 0) return [];
  // estimate_num_samples: all frames below 100, else max(100, min(floor(T^0.75), 10000)).
  const floorPow = (): number => {
    const cube = BigInt(length) ** 3n;
    let m = Math.floor(length ** 0.75);
    while (BigInt(m + 1) ** 4n <= cube) m++;
    while (m > 0 && BigInt(m) ** 4n > cube) m--;
    return m;
  };
  const num = Math.max(Math.min(100, length), Math.min(floorPow(), 10000));
  if (num === 1) return [0];
  const step = (length - 1) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? length - 1 : roundHalfEven(i * step)));
}

function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** LeRobot's stride for a camera frame: 1 below 300 px, else the longer side / 150, truncated. */
export function downsampleFactor(height: number, width: number): number {
  if (Math.max(height, width) < 300) return 1;
  return Math.trunc((width > height ? width : height) / 150);
}

/**
 * One episode's per-channel statistics of RGB uint8 frames, on [0, 1] shaped [3, 1, 1]. Add the frames
 * `sampleIndices` picks; each is strided by `downsampleFactor`. Exact counts per byte value, so the
 * histogram quantiles are those of every pixel added.
 */
export class ImageEpisodeStats {
  private frames = 0;
  private readonly counts = [new Float64Array(256), new Float64Array(256), new Float64Array(256)];
  private readonly stride: number;

  constructor(
    readonly height: number,
    readonly width: number,
  ) {
    this.stride = downsampleFactor(height, width);
  }

  /** One frame, rgb24 (height * width * 3 bytes, rows top to bottom). */
  addFrame(rgb: Uint8Array): void {
    const s = this.stride;
    for (let y = 0; y < this.height; y += s) {
      for (let x = 0; x < this.width; x += s) {
        const p = (y * this.width + x) * 3;
        this.counts[0]![rgb[p]!]!++;
        this.counts[1]![rgb[p + 1]!]!++;
        this.counts[2]![rgb[p + 2]!]!++;
      }
    }
    this.frames++;
  }

  toJSON(): FeatureStats {
    const dims = this.counts.map((c) => {
      const values: number[] = [];
      const counts: number[] = [];
      let n = 0;
      c.forEach((k, v) => {
        if (k > 0) {
          values.push(v);
          counts.push(k);
          n += k;
        }
      });
      if (n === 0) return { min: 0, max: 0, mean: 0, std: 0, quantiles: Object.fromEntries(QUANTILE_KEYS.map((q) => [q, 0])) } as DimStats;
      const d = dimStats(values, counts, n, 'float32');
      return {
        min: d.min / 255,
        max: d.max / 255,
        mean: d.mean / 255,
        std: d.std / 255,
        quantiles: Object.fromEntries(QUANTILE_KEYS.map((q) => [q, d.quantiles[q] / 255])),
      } as DimStats;
    });
    return statsOf(dims, this.frames, (v) => v.map((x) => [[x]]));
  }
}

// -------------------------------------------------------------------------------------- aggregation

function flat(v: StatValue): number[] {
  return (v as unknown[]).map((x) => (Array.isArray(x) ? (x as number[][])[0]![0]! : (x as number)));
}

/** The statistics of the union of several episodes' rows of one feature (see the header for quantiles). */
export function aggregateStats(list: readonly FeatureStats[]): FeatureStats {
  if (list.length === 0) throw new RangeError('aggregateStats needs at least one entry');
  const nested = Array.isArray((list[0]!.mean as unknown[])[0]);
  const shape = (v: number[]): StatValue => (nested ? v.map((x) => [[x]]) : v);
  const counts = list.map((s) => s.count[0]!);
  const total = counts.reduce((a, b) => a + b, 0);
  const dim = flat(list[0]!.mean).length;
  const per = (key: Exclude<StatKey, 'count'>) => list.map((s) => flat(s[key]));
  const mins = per('min');
  const maxs = per('max');
  const means = per('mean');
  const stds = per('std');
  const mean: number[] = [];
  const std: number[] = [];
  for (let d = 0; d < dim; d++) {
    let m = 0;
    for (let i = 0; i < list.length; i++) m += means[i]![d]! * counts[i]!;
    m /= total;
    let v = 0;
    for (let i = 0; i < list.length; i++) v += (stds[i]![d]! ** 2 + (means[i]![d]! - m) ** 2) * counts[i]!;
    mean.push(m);
    std.push(Math.sqrt(v / total));
  }
  const across = (rows: number[][], f: (a: number, b: number) => number) =>
    Array.from({ length: dim }, (_, d) => rows.reduce((acc, r) => f(acc, r[d]!), rows[0]![d]!));
  const out: Record<string, StatValue> = {
    min: shape(across(mins, Math.min)),
    max: shape(across(maxs, Math.max)),
    mean: shape(mean),
    std: shape(std),
    count: [total],
  };
  // Older stats (LeRobot v2.1's episodes_stats.jsonl) have no quantiles: they are aggregated only where every entry has them.
  for (const k of QUANTILE_KEYS)
    if (list.every((s) => s[k] !== undefined)) out[k] = shape(across(per(k), QUANTILE_LEVELS[k] <= 0.5 ? Math.min : Math.max));
  return out as FeatureStats;
}

/** Per feature, the aggregate of the episodes that have it, in the order the features first appear. */
export function aggregateFeatures(episodes: readonly Record<string, FeatureStats>[]): Record<string, FeatureStats> {
  const keys = [...new Set(episodes.flatMap((e) => Object.keys(e)))];
  return Object.fromEntries(keys.map((k) => [k, aggregateStats(episodes.flatMap((e) => (e[k] ? [e[k]] : [])))]));
}
