// Evaluation metrics on constructed cases: VOC/Spearman, AUROC, MAE, accuracy.

import { describe, expect, it } from 'vitest';
import {
  accuracy,
  auroc,
  averageRanks,
  mean,
  meanAbsoluteError,
  pearson,
  spearman,
  valueOrderCorrelation,
  weightedMean,
} from '../../../offline/eval/metrics.ts';
import { mulberry32 } from '../../../core/random.ts';

const rng = mulberry32; // seeded, so the "random" cases are reproducible

describe('value-order correlation (VOC)', () => {
  it('is 1 for a predictor that rises with time, whatever its shape', () => {
    expect(valueOrderCorrelation([0, 0.1, 0.2, 0.3, 0.9, 1])).toBeCloseTo(1, 12);
    expect(valueOrderCorrelation([0.01, 0.02, 0.5, 0.51, 0.99])).toBeCloseTo(1, 12);
  });

  it('is 0 for a constant predictor, as GVL counts constant predictions', () => {
    expect(valueOrderCorrelation([0.4, 0.4, 0.4, 0.4])).toBe(0);
    expect(valueOrderCorrelation([0.7])).toBe(0);
    expect(valueOrderCorrelation([])).toBe(0);
  });

  it('is -1 for a predictor that falls with time (what a good model gives on a reversed episode)', () => {
    expect(valueOrderCorrelation([1, 0.8, 0.5, 0.2, 0])).toBeCloseTo(-1, 12);
  });
});

describe('Spearman rank correlation', () => {
  it('gives tied values their average rank', () => {
    expect([...averageRanks([10, 20, 20, 30])]).toEqual([1, 2.5, 2.5, 4]);
    expect([...averageRanks([5, 5, 5])]).toEqual([2, 2, 2]);
    expect([...averageRanks([3, 1, 2])]).toEqual([3, 1, 2]);
  });

  it('with ties equals Pearson on average ranks (hand-computed case)', () => {
    // ranks of a: [1, 2.5, 2.5, 4]; b: [1, 2, 3, 4]; Pearson of those = 0.9486832980505138
    expect(spearman([1, 2, 2, 3], [1, 2, 3, 4])).toBeCloseTo(0.9486832980505138, 12);
    expect(spearman([1, 2, 2, 3], [1, 2, 3, 4])).toBeCloseTo(pearson([1, 2.5, 2.5, 4], [1, 2, 3, 4]), 12);
  });

  it('is invariant to monotone transforms and symmetric', () => {
    const a = [0.3, 0.1, 0.8, 0.5, 0.9, 0.2];
    const b = [3, 2, 1, 6, 5, 4];
    expect(
      spearman(
        a.map((x) => x ** 3),
        b,
      ),
    ).toBeCloseTo(spearman(a, b), 12);
    expect(spearman(b, a)).toBeCloseTo(spearman(a, b), 12);
  });

  it('is 0 when either side is constant and refuses mismatched or non-finite input', () => {
    expect(spearman([1, 1, 1], [1, 2, 3])).toBe(0);
    expect(spearman([1, 2, 3], [4, 4, 4])).toBe(0);
    expect(() => spearman([1, 2], [1])).toThrow(RangeError);
    expect(() => spearman([1, NaN], [1, 2])).toThrow(RangeError);
  });
});

describe('AUROC', () => {
  it('is 1 when every positive scores above every negative, 0 when inverted', () => {
    expect(auroc([0.8, 0.9, 1], [0.1, 0.2])).toBe(1);
    expect(auroc([0.1, 0.2], [0.8, 0.9, 1])).toBe(0);
  });

  it('counts ties as 1/2', () => {
    expect(auroc([0.5, 0.5], [0.5, 0.5, 0.5])).toBe(0.5);
    // one positive tied with the negative, one above: (0.5 + 1) / 2
    expect(auroc([0.5, 0.9], [0.5])).toBe(0.75);
  });

  it('is about 0.5 for scores unrelated to the class', () => {
    const r = rng(7);
    const pos = Array.from({ length: 2000 }, r);
    const neg = Array.from({ length: 2000 }, r);
    expect(auroc(pos, neg)!).toBeGreaterThan(0.46);
    expect(auroc(pos, neg)!).toBeLessThan(0.54);
  });

  it('agrees with the pairwise definition', () => {
    const r = rng(3);
    const pos = Array.from({ length: 40 }, () => Math.round(r() * 10) / 10);
    const neg = Array.from({ length: 30 }, () => Math.round(r() * 8) / 10);
    let wins = 0;
    for (const p of pos) for (const n of neg) wins += p > n ? 1 : p === n ? 0.5 : 0;
    expect(auroc(pos, neg)!).toBeCloseTo(wins / (pos.length * neg.length), 12);
  });

  it('is null (undefined) when a class is empty', () => {
    expect(auroc([], [0.1])).toBeNull();
    expect(auroc([0.9], [])).toBeNull();
  });
});

describe('MAE, accuracy and means', () => {
  it('MAE is the mean absolute difference, null for no frames', () => {
    expect(meanAbsoluteError([0, 0.5, 1], [0.1, 0.5, 0.7])).toBeCloseTo((0.1 + 0 + 0.3) / 3, 12);
    expect(meanAbsoluteError([0.2, 0.4], [0.2, 0.4])).toBe(0);
    expect(meanAbsoluteError([], [])).toBeNull();
    expect(() => meanAbsoluteError([1], [1, 2])).toThrow(RangeError);
  });

  it('accuracy is the share of equal entries, null for no frames', () => {
    expect(accuracy([0, 1, 2, 2], Int32Array.from([0, 1, 1, 2]))).toBe(0.75);
    expect(accuracy([], [])).toBeNull();
  });

  it('mean and weighted mean', () => {
    expect(mean([1, 2, 3])).toBe(2);
    expect(mean([])).toBeNull();
    expect(weightedMean([1, 0], [3, 1])).toBe(0.75);
    expect(weightedMean([1], [0])).toBeNull();
  });
});

describe('bad input to the metrics', () => {
  it('is refused with a message that names the metric and both lengths', () => {
    expect(() => pearson([1], [1, 2])).toThrow('pearson: sequences differ in length (1 vs 2)');
    expect(() => spearman([1, 2, 3], [1, 2])).toThrow('spearman: sequences differ in length (3 vs 2)');
    expect(() => meanAbsoluteError([1], [])).toThrow('meanAbsoluteError: sequences differ in length (1 vs 0)');
    expect(() => accuracy([1, 2], [1])).toThrow('accuracy: sequences differ in length (2 vs 1)');
    expect(() => weightedMean([1], [1, 1])).toThrow('weightedMean: sequences differ in length (1 vs 2)');
    expect(() => spearman([1, Infinity], [1, 2])).toThrow(/^spearman: non-finite/);
    expect(() => auroc([0.5, NaN], [0.1])).toThrow('auroc: NaN score');
    expect(() => auroc([0.5], [NaN])).toThrow('auroc: NaN score');
  });

  it('Pearson of two points is +1 or -1 (two points always lie on a line)', () => {
    expect(pearson([1, 2], [3, 5])).toBeCloseTo(1, 12);
    expect(pearson([1, 2], [5, 3])).toBeCloseTo(-1, 12);
  });
});
