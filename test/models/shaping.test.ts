import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { potential, shapedReward, telescopedShaping, type ShapingConfig } from '../../models/shaping.ts';

const cfg = (over: Partial<ShapingConfig> = {}): ShapingConfig => ({
  mode: 'pbrs',
  gamma: 0.99,
  scale: 1,
  transform: { kind: 'identity' },
  ...over,
});

/** Discounted sum of shaping terms (shaped minus env reward) over an episode of potentials. */
function discountedShaping(phis: number[], rewards: number[], terminated: boolean, c: ShapingConfig): number {
  const gamma = c.mode === 'delta' ? 1 : c.gamma;
  let sum = 0;
  for (let t = 0; t + 1 < phis.length; t++) {
    const last = t + 2 === phis.length;
    const r = shapedReward({ phiBefore: phis[t]!, phiAfter: phis[t + 1]!, reward: rewards[t]!, terminated: last && terminated }, c);
    sum += gamma ** t * (r - rewards[t]!);
  }
  return sum;
}

describe('potential-based shaping', () => {
  it("pbrs: r + lambda (gamma Phi(s') - Phi(s))", () => {
    expect(shapedReward({ phiBefore: 0.2, phiAfter: 0.5, reward: 1, terminated: false }, cfg({ scale: 2 }))).toBeCloseTo(
      1 + 2 * (0.99 * 0.5 - 0.2),
      12,
    );
  });

  it('on termination the next potential is 0', () => {
    expect(shapedReward({ phiBefore: 0.9, phiAfter: 1, reward: 1, terminated: true }, cfg())).toBeCloseTo(1 - 0.9, 12);
  });

  it('the other modes are what their names say', () => {
    const tr = { phiBefore: 0.2, phiAfter: 0.5, reward: 0.25, terminated: false };
    expect(shapedReward(tr, cfg({ mode: 'sparse' }))).toBe(0.25);
    expect(shapedReward(tr, cfg({ mode: 'progress' }))).toBeCloseTo(0.75, 12);
    expect(shapedReward(tr, cfg({ mode: 'delta' }))).toBeCloseTo(0.25 + 0.3, 12);
  });

  it('over any episode the discounted shaping terms telescope to gamma^T Phi(s_T)(1 - terminated) - Phi(s_0)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 80 }),
        fc.boolean(),
        fc.double({ min: 0.5, max: 1, noNaN: true }),
        fc.double({ min: 0.1, max: 5, noNaN: true }),
        fc.constantFrom('pbrs' as const, 'delta' as const),
        fc.boolean(),
        (phis, terminated, gamma, scale, mode, sigmoid) => {
          const c = cfg({
            gamma,
            scale,
            mode,
            transform: sigmoid ? { kind: 'sigmoid', center: 0.5, temperature: 0.15 } : { kind: 'identity' },
          });
          const rewards = phis.map((_, i) => (i % 3 === 0 ? 0.5 : 0));
          const got = discountedShaping(phis, rewards, terminated, c);
          expect(got).toBeCloseTo(telescopedShaping(phis, terminated, c), 9);
        },
      ),
      { seed: 20261126, numRuns: 300 },
    );
  });

  it('truncation keeps the potential: a truncated episode ends with gamma^T Phi(s_T), not 0', () => {
    const phis = [0.1, 0.4, 0.8];
    const c = cfg({ gamma: 0.9 });
    const truncated = discountedShaping(phis, [0, 0], false, c);
    const terminated = discountedShaping(phis, [0, 0], true, c);
    expect(truncated).toBeCloseTo(0.81 * 0.8 - 0.1, 12);
    expect(terminated).toBeCloseTo(-0.1, 12);
  });

  it('the sigmoid transform is bounded, keeps 0 and 1, and is monotone', () => {
    const t = { kind: 'sigmoid' as const, center: 0.5, temperature: 0.1 };
    expect(potential(0, t)).toBeCloseTo(0, 12);
    expect(potential(1, t)).toBeCloseTo(1, 12);
    let prev = -1;
    for (let x = 0; x <= 1; x += 0.05) {
      const y = potential(x, t);
      expect(y).toBeGreaterThan(prev);
      prev = y;
    }
  });
});
