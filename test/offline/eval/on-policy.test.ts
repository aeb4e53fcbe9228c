// The on-policy metrics on constructed cases: a perfect predictor, a constant one, one that drifts
// while the truth stands still, and uncertainty that does or does not point at the errors.

import { describe, expect, it } from 'vitest';
import { onPolicyMetrics, type OnPolicySeries } from '../../../offline/eval/on-policy.ts';

const FPS = 10;
/** Truth that rises for 3 s, stands still for 3 s, rises again for 2 s (81 frames at 10 fps). */
const truth = Array.from({ length: 81 }, (_, t) => (t <= 30 ? t / 100 : t <= 60 ? 0.3 : 0.3 + (t - 60) / 40));
const series = (phi: number[], uncertainty: number[] | null = null): OnPolicySeries => ({ phi, truth, uncertainty, fps: FPS });

describe('on-policy metrics', () => {
  it('a perfect predictor: Pearson 1 on level and change, no drift, no false highs', () => {
    const m = onPolicyMetrics([series([...truth])]);
    expect(m.progress_pearson).toBeCloseTo(1, 12);
    expect(m.delta_pearson_1s).toBeCloseTo(1, 12);
    expect(m.stall_drift_per_s).toBe(0);
    expect(m.false_high_rate).toBe(0);
    expect(m.uncertainty_auroc).toBeNull();
    expect(m.uncertainty_mean).toBeNull();
  });

  it('a constant predictor: no correlation, no drift', () => {
    const m = onPolicyMetrics([series(truth.map(() => 0.4))]);
    expect(m.progress_pearson).toBeCloseTo(0, 12);
    expect(m.delta_pearson_1s).toBeCloseTo(0, 12);
    expect(m.stall_drift_per_s).toBe(0);
    // 0.4 - truth > 0.2 where truth < 0.2: frames 0..19
    expect(m.false_high_rate).toBeCloseTo(20 / 81, 12);
  });

  it('a predictor that keeps rising while nothing happens: the drift is its slope per second', () => {
    const slope = 0.05; // per second
    const phi = truth.map((_, t) => (t * slope) / FPS);
    const m = onPolicyMetrics([series(phi)]);
    // the windows with a flat truth are t = 30..50 (t + 10 <= 60): 21 of them, each |dPhi| = slope
    expect(m.stall_drift_per_s).toBeCloseTo(slope, 12);
    expect(m.progress_pearson!).toBeGreaterThan(0.8);
    expect(m.delta_pearson_1s!).toBeLessThan(0.5);
    // and the stretch after a stall is where it runs ahead: phi - truth > 0.2 nowhere here (max 0.4 - 0.3)
    expect(m.false_high_rate).toBe(0);
    const ahead = onPolicyMetrics([series(truth.map((p, t) => p + (t >= 50 ? 0.25 : 0)))]);
    expect(ahead.false_high_rate).toBeCloseTo(31 / 81, 12);
  });

  it('uncertainty high exactly where the error exceeds 0.1 separates perfectly; reversed, not at all', () => {
    const phi = truth.map((p, t) => (t >= 40 && t < 50 ? p + 0.3 : p));
    const bad = (t: number) => t >= 40 && t < 50;
    const good = onPolicyMetrics([
      series(
        phi,
        phi.map((_, t) => (bad(t) ? 0.2 : 0.01)),
      ),
    ]);
    expect(good.uncertainty_auroc).toBe(1);
    expect(good.large_error_share).toBeCloseTo(10 / 81, 12);
    expect(good.uncertainty_mean).toBeCloseTo((10 * 0.2 + 71 * 0.01) / 81, 12);
    expect(
      onPolicyMetrics([
        series(
          phi,
          phi.map((_, t) => (bad(t) ? 0.01 : 0.2)),
        ),
      ]).uncertainty_auroc,
    ).toBe(0);
    // every frame accurate: no positives, so no AUROC
    expect(
      onPolicyMetrics([
        series(
          [...truth],
          truth.map(() => 0.1),
        ),
      ]).uncertainty_auroc,
    ).toBeNull();
  });

  it('pools windows over episodes, averages Pearson per episode, and skips a constant truth', () => {
    const flat: OnPolicySeries = { phi: truth.map(() => 0), truth: truth.map(() => 0.5), uncertainty: null, fps: FPS };
    const m = onPolicyMetrics([series([...truth]), flat]);
    expect(m.progress_pearson).toBeCloseTo(1, 12); // the flat episode has no Pearson to average
    expect(m.stall_drift_per_s).toBe(0); // its windows count as stalls, with no change
    expect(m.delta_pearson_1s).toBeCloseTo(1, 12);
    expect(onPolicyMetrics([])).toMatchObject({ progress_pearson: null, delta_pearson_1s: null, stall_drift_per_s: null });
  });

  it('refuses series of different lengths and a non-positive fps', () => {
    expect(() => onPolicyMetrics([{ phi: [0, 1], truth: [0], uncertainty: null, fps: FPS }])).toThrow(RangeError);
    expect(() => onPolicyMetrics([{ phi: [0], truth: [0], uncertainty: null, fps: 0 }])).toThrow(RangeError);
  });
});
