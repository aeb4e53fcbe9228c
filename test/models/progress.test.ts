import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_EMA,
  applyHop,
  argmax,
  cumulativePriors,
  fuseGrm,
  hopBetween,
  sarmProgress,
  smoothProgress,
  smoothingWeight,
  stageProbabilities,
  type ProgressSmoothing,
} from '../../models/progress.ts';

const priors = [0.1, 0.3, 0.2, 0.4];

describe('SARM composition', () => {
  it('argmax: a tie goes to the first (earliest) stage, so progress is never overstated on a tie', () => {
    expect(argmax([0.5, 0.5, 0])).toBe(0);
    expect(argmax([0.1, 0.4, 0.4, 0.1])).toBe(1);
    expect(sarmProgress([0.1, 0.4, 0.4, 0.1], 0.5, priors, 'argmax')).toBeCloseTo(0.1 + 0.3 * 0.5, 12);
  });

  it('argmax: Phi = P_k + a_k * tau', () => {
    const probs = [0.1, 0.2, 0.6, 0.1];
    expect(sarmProgress(probs, 0.5, priors, 'argmax')).toBeCloseTo(0.1 + 0.3 + 0.2 * 0.5, 12);
  });

  it('argmax: the first stage at tau 0 is 0 and the last at tau 1 is 1', () => {
    expect(sarmProgress([1, 0, 0, 0], 0, priors, 'argmax')).toBe(0);
    expect(sarmProgress([0, 0, 0, 1], 1, priors, 'argmax')).toBeCloseTo(1, 12);
  });

  it('expected: weights each stage value by its probability', () => {
    const probs = [0.5, 0.5, 0, 0];
    const tau = 0.4;
    expect(sarmProgress(probs, tau, priors, 'expected')).toBeCloseTo(0.5 * (0 + 0.1 * tau) + 0.5 * (0.1 + 0.3 * tau), 12);
  });

  it('clips tau outside [0, 1]', () => {
    expect(sarmProgress([0, 1, 0, 0], 7, priors, 'argmax')).toBeCloseTo(0.4, 12);
    expect(sarmProgress([0, 1, 0, 0], -2, priors, 'argmax')).toBeCloseTo(0.1, 12);
  });

  it('cumulative priors start at 0', () => {
    expect(cumulativePriors(priors)).toEqual([0, 0.1, 0.4, 0.6000000000000001]);
  });

  it("stage probabilities use only the task's own stages and sum to 1", () => {
    const p = stageProbabilities([1, 2, 3, 1000, 1000], 3);
    expect(p).toHaveLength(3);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(p[2]).toBeGreaterThan(p[1]!);
  });

  it("argmax looks at the first `count` values only (a task's own stages, not the padding after them)", () => {
    expect(argmax([0, 1, 9], 2)).toBe(1);
    expect(argmax([3, 1, 9], 1)).toBe(0);
  });

  it('stage probabilities stay finite for logits far beyond exp range (an untrained or saturated head)', () => {
    const p = stageProbabilities([800, 0, -800], 3);
    expect(p).toEqual([1, 0, 0]);
    expect(stageProbabilities([400, 400], 2)).toEqual([0.5, 0.5]);
  });

  it('progress stays in [0, 1] and is monotone in tau within a stage', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -30, max: 30, noNaN: true }), { minLength: 4, maxLength: 4 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (logits, tau) => {
          const probs = stageProbabilities(logits, 4);
          for (const c of ['argmax', 'expected'] as const) {
            const phi = sarmProgress(probs, tau, priors, c);
            expect(phi).toBeGreaterThanOrEqual(0);
            expect(phi).toBeLessThanOrEqual(1);
            expect(sarmProgress(probs, Math.min(1, tau + 0.1), priors, c)).toBeGreaterThanOrEqual(phi - 1e-12);
          }
        },
      ),
    );
  });
});

describe('GRM fusion', () => {
  it('a hop normalised by what remained is undone by hopBetween', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.01, max: 0.99, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (from, to) => {
        expect(applyHop(from, hopBetween(from, to))).toBeCloseTo(to, 9);
      }),
    );
  });

  it('a negative hop at step 1 (previous progress 0) keeps progress at 0 and never divides by 0', () => {
    const r = fuseGrm(0, { incremental: -0.8, forward: -0.5, backward: -1 });
    expect(r.incremental).toBe(0);
    expect(r.progress).toBe(0);
    expect(Number.isFinite(r.progress)).toBe(true);
    expect(hopBetween(0, 0)).toBe(0);
    expect(hopBetween(1, 1)).toBe(0);
  });

  it('fused progress is the mean of incremental, forward and 1 + backward, clipped to [0, 1]', () => {
    const r = fuseGrm(0.5, { incremental: 0.5, forward: 0.6, backward: -0.3 });
    expect(r.incremental).toBeCloseTo(0.75, 12);
    expect(r.progress).toBeCloseTo((0.75 + 0.6 + 0.7) / 3, 12);
  });

  it('without goal frames fuses the two perspectives it has', () => {
    const r = fuseGrm(0.2, { incremental: 0, forward: 0.4 });
    expect(r.progress).toBeCloseTo(0.3, 12);
  });

  it('stays in [0, 1] for any hops, over whole random episodes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.double({ min: -1.5, max: 1.5, noNaN: true }),
            fc.double({ min: -1.5, max: 1.5, noNaN: true }),
            fc.double({ min: -1.5, max: 1.5, noNaN: true }),
          ),
          { minLength: 1, maxLength: 50 },
        ),
        (hops) => {
          let inc = 0;
          for (const [i, f, b] of hops) {
            const r = fuseGrm(inc, { incremental: i, forward: f, backward: b });
            expect(r.progress).toBeGreaterThanOrEqual(0);
            expect(r.progress).toBeLessThanOrEqual(1);
            expect(r.incremental).toBeGreaterThanOrEqual(0);
            expect(r.incremental).toBeLessThanOrEqual(1);
            inc = r.incremental;
          }
        },
      ),
    );
  });
});

/** The smoothed series of `phis` (with per-step uncertainties), as the engine runs it step by step. */
function smoothed(phis: readonly number[], us: readonly number[], s: ProgressSmoothing): number[] {
  const out: number[] = [];
  for (let t = 0; t < phis.length; t++) out.push(smoothProgress(t === 0 ? undefined : out[t - 1], phis[t]!, us[t] ?? 0, s));
  return out;
}

describe('causal smoothing of Phi', () => {
  const ema: ProgressSmoothing = { kind: 'ema', ...DEFAULT_EMA };

  it('starts at Phi(0), and a constant input stays constant', () => {
    expect(smoothed([0.37, 0.37, 0.37, 0.37], [0, 0.2, 0.01, 1], ema)).toEqual([0.37, 0.37, 0.37, 0.37]);
  });

  it('approaches a jump geometrically: the gap shrinks by (1 - alpha) per step without uncertainty', () => {
    const s: ProgressSmoothing = { kind: 'ema', alpha: 0.5, u0: 0.05 };
    const out = smoothed([0, 1, 1, 1, 1, 1], [], s);
    expect(out[0]).toBe(0);
    for (let t = 1; t < out.length; t++) expect(1 - out[t]!).toBeCloseTo(0.5 ** t, 12);
    const slow = smoothed([0, 1, 1, 1], [], { kind: 'ema', alpha: 0.2, u0: 0.05 });
    expect(1 - slow[3]!).toBeCloseTo(0.8 ** 3, 12);
  });

  it('high uncertainty slows the update: w = alpha / (1 + u / u0)', () => {
    const s = { alpha: 0.5, u0: 0.05 };
    expect(smoothingWeight(s, 0)).toBe(0.5);
    expect(smoothingWeight(s, 0.05)).toBeCloseTo(0.25, 12);
    expect(smoothingWeight(s, 0.45)).toBeCloseTo(0.05, 12);
    const sure = smoothed([0, 1], [0, 0], ema)[1]!;
    const doubtful = smoothed([0, 1], [0, 0.2], ema)[1]!;
    expect(doubtful).toBeLessThan(sure);
    expect(doubtful).toBeCloseTo(0.5 / (1 + 0.2 / 0.05), 12);
  });

  it('is causal: the output at t does not depend on later inputs', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 40 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 40 }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        (phis, tail, u) => {
          const cut = Math.floor(phis.length / 2);
          const us = phis.map((_, i) => (i % 2 === 0 ? u : 0));
          const a = smoothed(phis, us, ema);
          const b = smoothed([...phis.slice(0, cut), ...tail], [...us.slice(0, cut), ...tail.map(() => 0.3)], ema);
          expect(b.slice(0, cut)).toEqual(a.slice(0, cut));
          // a convex combination of values in [0, 1] stays in [0, 1]
          for (const x of a) expect(x >= 0 && x <= 1).toBe(true);
        },
      ),
      { seed: 20261201, numRuns: 200 },
    );
  });

  it('kind none returns Phi unchanged', () => {
    expect(smoothed([0.1, 0.9, 0.2], [0.3, 0.3, 0.3], { kind: 'none' })).toEqual([0.1, 0.9, 0.2]);
  });
});
