import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../core/random.ts';
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

  it('the sigmoid transform is the logistic of (Phi - center) / temperature, rescaled to [0, 1]', () => {
    // Reference values from the definition, computed outside this code (Python's math.exp).
    const t = { kind: 'sigmoid' as const, center: 0.5, temperature: 0.1 };
    expect(potential(0.5, t)).toBeCloseTo(0.5, 12);
    expect(potential(0.6, t)).toBeCloseTo(0.734193421951139, 12);
    expect(potential(0.3, t)).toBeCloseTo(0.11403653008945558, 12);
  });

  it('the conservative transform subtracts k * uncertainty and clamps to [0, 1]; k 0 or no uncertainty is the identity', () => {
    const t = { kind: 'conservative' as const, k: 2 };
    expect(potential(0.6, t, 0.1)).toBeCloseTo(0.4, 12);
    expect(potential(0.1, t, 0.2)).toBe(0); // never below 0
    expect(potential(1, { kind: 'conservative', k: 0 }, 0.3)).toBe(1);
    expect(potential(0.7, t)).toBe(0.7); // a model without uncertainty: 0
    expect(potential(0.7, t, 0)).toBe(0.7);
    // more doubt, lower potential
    expect(potential(0.8, t, 0.05)).toBeGreaterThan(potential(0.8, t, 0.1));
  });

  it('conservative: the discounted shaping terms over random (Phi, uncertainty) episodes still telescope', () => {
    const rng = new SeededRandom(20261201);
    for (let run = 0; run < 300; run++) {
      const T = rng.int(1, 80);
      const phis = Array.from({ length: T + 1 }, () => rng.next());
      const us = Array.from({ length: T + 1 }, () => (rng.chance(0.2) ? 0 : rng.range(0, 0.5)));
      const terminated = rng.chance(0.5);
      const mode = rng.chance(0.5) ? ('pbrs' as const) : ('delta' as const);
      const c = cfg({ gamma: rng.range(0.5, 1), scale: rng.range(0.1, 5), mode, transform: { kind: 'conservative', k: rng.range(0, 3) } });
      const gamma = mode === 'delta' ? 1 : c.gamma;
      let sum = 0;
      for (let t = 1; t <= T; t++) {
        const tr = {
          phiBefore: phis[t - 1]!,
          phiAfter: phis[t]!,
          reward: t % 3 === 0 ? 0.5 : 0,
          terminated: t === T && terminated,
          uncertaintyBefore: us[t - 1]!,
          uncertaintyAfter: us[t]!,
        };
        sum += gamma ** (t - 1) * (shapedReward(tr, c) - tr.reward);
      }
      const ends =
        c.scale * (gamma ** T * potential(phis[T]!, c.transform, us[T]!) * (terminated ? 0 : 1) - potential(phis[0]!, c.transform, us[0]!));
      expect(sum, `run ${run}`).toBeCloseTo(ends, 9);
      expect(telescopedShaping(phis, terminated, c, us), `run ${run}`).toBeCloseTo(ends, 12);
    }
  });
});
