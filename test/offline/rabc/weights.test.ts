// RA-BC weight math: hand-computed weights for each branch of the formula (negative delta -> 0,
// above kappa -> 1, the soft weight in between), the chunk horizon clamped at the episode end,
// missing progress -> weight 1 and out of the statistics, the option checks, the weighted loss,
// and the filtered list built from the weights.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { filteredList, histogram, histogramSvg } from '../../../offline/rabc/report.ts';
import {
  indexRanges,
  progressDeltas,
  rabcWeights,
  resolveRabcOptions,
  sampleWeight,
  softWeight,
  weightedLoss,
  type RabcResult,
} from '../../../offline/rabc/weights.ts';
import { expectCode } from '../../helpers.ts';

describe('RA-BC weights', () => {
  it('gives a delta exactly at kappa the soft weight and only a delta above kappa full weight (r > kappa, not >=)', () => {
    const mu = 0.004;
    const sigma = 0.05;
    const soft = (0.01 - (mu - 2 * sigma)) / (4 * sigma + 1e-6); // 0.5299..., well below 1
    expect(sampleWeight(0.01, mu, sigma, 0.01)).toBeCloseTo(soft, 12);
    expect(sampleWeight(0.01, mu, sigma, 0.01)).toBeLessThan(0.6);
    expect(sampleWeight(0.01 + 1e-12, mu, sigma, 0.01)).toBe(1);
    expect(sampleWeight(0, mu, sigma, 0)).toBeCloseTo((0 - (mu - 2 * sigma)) / (4 * sigma + 1e-6), 12);
    // the same boundary through rabcWeights: deltas 0.25, 0.25, 0, 0.5, 0 (exact in binary) with kappa 0.25
    const { weights } = rabcWeights([[0, 0.25, 0.5, 0.5, 1]], { chunk: 1, kappa: 0.25 });
    const w = Array.from(weights[0]!);
    expect(w[0]).toBeLessThan(1);
    expect(w[1]).toBe(w[0]);
    expect(w[3]).toBe(1);
  });

  // chunk 1: deltas 0.1, -0.05, 0.005, 0.005, 0 (the last frame looks ahead to itself)
  const phi = [0, 0.1, 0.05, 0.055, 0.06];

  it('match the hand-computed formula: r < 0 -> 0, r > kappa -> 1, 0 <= r <= kappa -> clip((r - (mu - 2 sigma)) / (4 sigma + eps), 0, 1)', () => {
    const { weights, deltas, stats } = rabcWeights([phi], { chunk: 1 });
    const d = Array.from(deltas[0]!);
    [0.1, -0.05, 0.005, 0.005, 0].forEach((r, t) => expect(d[t]).toBeCloseTo(r, 12));
    // mean = 0.06 / 5 = 0.012; deviations 0.088, -0.062, -0.007, -0.007, -0.012; sum of squares 0.01183
    const mu = 0.012;
    const sigma = Math.sqrt(0.01183 / 5); // 0.048642
    expect(stats.mu).toBeCloseTo(mu, 12);
    expect(stats.sigma).toBeCloseTo(sigma, 12);
    expect(stats.delta_mean).toBeCloseTo(mu, 12);
    expect(stats.delta_std).toBeCloseTo(sigma, 12);
    const soft = (r: number) => (r - (mu - 2 * sigma)) / (4 * sigma + 1e-6);
    const w = Array.from(weights[0]!);
    expect(w[0]).toBe(1); // 0.1 > kappa
    expect(w[1]).toBe(0); // negative
    expect(w[2]).toBeCloseTo(soft(0.005), 10);
    expect(w[2]).toBeCloseTo(0.46402, 4);
    expect(w[3]).toBeCloseTo(w[2]!, 12);
    expect(w[4]).toBeCloseTo(soft(0), 10);
    expect(w[4]).toBeCloseTo(0.43832, 4);
    expect(stats).toMatchObject({
      samples: 5,
      missing: 0,
      scored: 5,
      negative: 1,
      band: 3,
      above_kappa: 1,
      chunk: 1,
      kappa: 0.01,
      eps: 1e-6,
    });
    expect(stats.share_zero).toBeCloseTo(0.2, 12);
    expect(stats.share_downweighted).toBeCloseTo(0.6, 12);
    expect(stats.share_filtered).toBeCloseTo(0.8, 12);
    expect(stats.mean_weight).toBeCloseTo((1 + 0 + 2 * soft(0.005) + soft(0)) / 5, 10);
  });

  it('kappa moves the full-weight threshold; a delta equal to kappa is still soft', () => {
    const strict = rabcWeights([phi], { chunk: 1, kappa: 0.2 });
    expect(strict.weights[0]![0]).toBeLessThan(1); // 0.1 is no longer above kappa
    expect(strict.stats.above_kappa).toBe(0);
    const atKappa = rabcWeights([[0, 0.01, 0.02, 0.03]], { chunk: 1, kappa: 0.01 });
    expect(atKappa.stats.band).toBe(4); // deltas are 0.01 up to float error, and 0 at the end
  });

  it('mu is floored at 0 and sigma at eps', () => {
    const falling = rabcWeights([[1, 0.8, 0.6, 0.4]], { chunk: 1 }); // deltas -0.2 x3, 0: mean < 0
    expect(falling.stats.mu).toBe(0);
    expect(Array.from(falling.weights[0]!.subarray(0, 3))).toEqual([0, 0, 0]);
    const flat = rabcWeights([[0.5, 0.5, 0.5]], { chunk: 2 }); // every delta 0: std 0
    expect(flat.stats.sigma).toBe(1e-6);
    expect(flat.weights[0]![0]).toBeCloseTo(2e-6 / (4e-6 + 1e-6), 12); // (0 - (0 - 2 eps)) / (4 eps + eps)
  });

  it("the chunk horizon looks H frames ahead and clamps at the episode's last frame", () => {
    const p = [0, 0.1, 0.2, 0.3];
    const close = (a: Float64Array, b: number[]) => b.forEach((v, i) => expect(a[i]).toBeCloseTo(v, 12));
    close(progressDeltas(p, 1), [0.1, 0.1, 0.1, 0]);
    close(progressDeltas(p, 2), [0.2, 0.2, 0.1, 0]);
    close(progressDeltas(p, 10), [0.3, 0.2, 0.1, 0]);
    // episodes never look into each other: the second episode's start is not the first one's future
    const two = rabcWeights(
      [
        [0, 0.5],
        [0.9, 1],
      ],
      { chunk: 3 },
    );
    close(two.deltas[0]!, [0.5, 0]);
    close(two.deltas[1]!, [0.1, 0]);
  });

  it('missing progress (NaN) gets weight 1, a NaN delta, and stays out of mu and sigma', () => {
    const base = rabcWeights([phi], { chunk: 1 });
    const withMissing = rabcWeights([phi, [NaN, NaN, NaN], [0.2, NaN]], { chunk: 1 });
    expect(Array.from(withMissing.weights[1]!)).toEqual([1, 1, 1]);
    // [0.2, NaN]: frame 0 looks at the missing frame 1, frame 1 at itself: both missing
    expect(Array.from(withMissing.weights[2]!)).toEqual([1, 1]);
    expect(withMissing.deltas[2]!.every(Number.isNaN)).toBe(true);
    expect(withMissing.stats.mu).toBe(base.stats.mu);
    expect(withMissing.stats.sigma).toBe(base.stats.sigma);
    expect(Array.from(withMissing.weights[0]!)).toEqual(Array.from(base.weights[0]!));
    expect(withMissing.stats).toMatchObject({ samples: 10, missing: 5, scored: 5 });
    expect(withMissing.stats.mean_weight).toBeCloseTo((base.stats.mean_weight! * 5 + 5) / 10, 12);
  });

  it('nothing scored: every weight 1, null delta statistics', () => {
    const { weights, stats } = rabcWeights([[NaN, NaN]], { chunk: 4 });
    expect(Array.from(weights[0]!)).toEqual([1, 1]);
    expect(stats).toMatchObject({ mu: 0, sigma: 1e-6, delta_mean: null, delta_std: null, mean_weight: 1, share_zero: 0 });
    expect(rabcWeights([], { chunk: 1 }).stats).toMatchObject({ samples: 0, mean_weight: null });
  });

  it('weights lie in [0, 1] and never decrease as the delta grows (property, seeded)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 12 }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        (episodes, chunk, kappa) => {
          const { weights, deltas } = rabcWeights(episodes, { chunk, kappa });
          const pairs = deltas.flatMap((d, i) => Array.from(d, (r, t) => [r, weights[i]![t]!] as const)).sort((a, b) => a[0] - b[0]);
          for (const [, w] of pairs) expect(w >= 0 && w <= 1).toBe(true);
          for (let k = 1; k < pairs.length; k++) expect(pairs[k]![1]).toBeGreaterThanOrEqual(pairs[k - 1]![1]);
        },
      ),
      { seed: 6, numRuns: 100 },
    );
  });

  it('refuses chunk < 1, a fractional chunk, kappa < 0 and eps <= 0 with SW_ERR_RABC_OPTION', async () => {
    await expectCode(() => rabcWeights([phi], { chunk: 0 }), 'SW_ERR_RABC_OPTION', 'chunk');
    await expectCode(() => rabcWeights([phi], { chunk: 2.5 }), 'SW_ERR_RABC_OPTION', 'chunk');
    await expectCode(() => rabcWeights([phi], { chunk: 1, kappa: -0.01 }), 'SW_ERR_RABC_OPTION', 'kappa');
    await expectCode(() => resolveRabcOptions({ chunk: 1, eps: 0 }), 'SW_ERR_RABC_OPTION', 'eps');
    expect(resolveRabcOptions({ chunk: 3 })).toEqual({ chunk: 3, kappa: 0.01, eps: 1e-6 });
  });
});

describe('RA-BC loss and reports', () => {
  it('weightedLoss = sum(w * loss) / (sum(w) + 1e-6)', async () => {
    expect(weightedLoss([1, 0, 0.5], [2, 100, 4])).toBeCloseTo(4 / (1.5 + 1e-6), 12);
    expect(weightedLoss([0, 0], [3, 4])).toBe(0);
    await expectCode(() => weightedLoss([1], [1, 2]), 'SW_ERR_RABC_OPTION');
  });

  it('index ranges are inclusive runs offset to the global index', () => {
    const w = [1, 0.5, 0, 0, 1, 0];
    expect(indexRanges(w.length, (t) => w[t]! > 0, 100)).toEqual([
      [100, 101],
      [104, 104],
    ]);
    expect(indexRanges(w.length, (t) => w[t] === 0, 100)).toEqual([
      [102, 103],
      [105, 105],
    ]);
    expect(indexRanges(0, () => true)).toEqual([]);
  });

  it('the filtered list gives kept and dropped ranges, mean weight per episode, and all-zero episodes as filtered', () => {
    const result: RabcResult = {
      weights: [Float64Array.from([1, 0, 0.5]), Float64Array.from([0, 0]), Float64Array.from([1])],
      deltas: [Float64Array.from([0.1, -0.1, 0.005]), Float64Array.from([-0.2, -0.1]), Float64Array.from([NaN])],
      stats: rabcWeights([[0]], { chunk: 4 }).stats,
    };
    const list = filteredList(
      result,
      [
        { index: 0, datasetFrom: 0 },
        { index: 1, datasetFrom: 3 },
        { index: 5, datasetFrom: 5 },
      ],
      { progressFile: 'p.parquet', column: 'progress_sparse' },
    );
    expect(list.filtered_episodes).toEqual([1]);
    expect(list.kept_samples).toBe(3);
    expect(list.dropped_samples).toBe(3);
    expect(list.episodes[0]).toEqual({
      episode_index: 0,
      frames: 3,
      missing: 0,
      mean_weight: 0.5,
      kept: [
        [0, 0],
        [2, 2],
      ],
      dropped: [[1, 1]],
    });
    expect(list.episodes[1]).toMatchObject({ episode_index: 1, mean_weight: 0, kept: [], dropped: [[3, 4]] });
    expect(list.episodes[2]).toMatchObject({ episode_index: 5, missing: 1, kept: [[5, 5]], dropped: [] });
  });

  it('the histogram counts every finite value once and the SVG marks kappa', () => {
    const h = histogram([0, 0.05, 0.5, 1, NaN, 2], 0, 1, 20);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(4);
    expect(h.counts[0]).toBe(1);
    expect(h.counts[1]).toBe(1);
    expect(h.counts[19]).toBe(1);
    const svg = histogramSvg({ title: 'x & y', result: rabcWeights([[0, 0.1, 0.05, 0.055, 0.06]], { chunk: 1 }) });
    expect(svg).toContain('kappa 0.01');
    expect(svg).toContain('x &amp; y');
  });
});

describe('RA-BC edge cases', () => {
  it('the soft weight is clamped to [0, 1] far below and far above the band', () => {
    expect(softWeight(-5, 0.1, 0.05)).toBe(0);
    expect(softWeight(5, 0.1, 0.05)).toBe(1);
    expect(softWeight(0.1, 0.1, 0.05)).toBeCloseTo(0.5, 5);
  });

  it('a missing (NaN) delta is weighted 1 and counted in none of negative, band and above', () => {
    const r = rabcWeights([[0, NaN, 0.5, 0.2]], { chunk: 1 });
    // deltas: NaN (0 -> NaN), NaN (NaN -> 0.5), -0.3, 0 (the last frame's chunk ends on itself)
    expect(r.stats).toMatchObject({ samples: 4, missing: 2, scored: 2, negative: 1, band: 1, above_kappa: 0 });
    expect(Array.from(r.weights[0]!).slice(0, 2)).toEqual([1, 1]);
  });

  it('weightedLoss refuses mismatched lengths with both counts in the message', () => {
    expect(() => weightedLoss([1, 1], [1])).toThrow('weightedLoss: 2 weights for 1 losses');
  });

  it('indexRanges closes a run that reaches the end', () => {
    expect(indexRanges(3, () => true)).toEqual([[0, 2]]);
    expect(indexRanges(4, (t) => t !== 1, 10)).toEqual([
      [10, 10],
      [12, 13],
    ]);
  });
});
