// Weighted behaviour cloning (learn/policy/bc.ts): it recovers a known gated-linear policy from that
// policy's own actions, samples with weight 0 have no influence at all (how RA-BC drops frames), and
// heavier weights pull the fit toward their actions.

import { describe, expect, it } from 'vitest';
import { fitBehaviourCloning, type BcSample } from '../../../learn/policy/bc.ts';
import { GATED_FEATURE_DIM, gatedFeatures } from '../../../learn/policy/features.ts';
import { ACTION_DIM } from '../../../learn/policy/linear-policy.ts';
import { getTask } from '../../../sim/tasks/index.ts';
import { expectCode } from '../../helpers.ts';
import { pickPlaceStates, rng } from './states.ts';

const task = getTask('pick_place');

/** W^T phi(state), unclipped. */
function linearAction(w: ArrayLike<number>, state: ArrayLike<number>): number[] {
  const phi = gatedFeatures(task, state);
  return Array.from({ length: ACTION_DIM }, (_, k) => {
    let s = 0;
    for (let a = 0; a < GATED_FEATURE_DIM; a++) s += phi[a]! * w[a * ACTION_DIM + k]!;
    return s;
  });
}

function randomWeights(seed: number): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: GATED_FEATURE_DIM * ACTION_DIM }, () => 0.6 * (r() - 0.5));
}

const dist = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.hypot(...Array.from(a, (x, i) => x - b[i]!));

describe('fitBehaviourCloning', () => {
  const states = pickPlaceStates(1200, 7);
  const truth = randomWeights(11);
  const samples: BcSample[] = states.map((s) => ({ state: s, action: linearAction(truth, s), weight: 1 }));

  it('recovers a known linear policy from its own actions: zero residual, the same actions on new states', () => {
    const fit = fitBehaviourCloning('pick_place', samples, { ridge: 0 });
    expect(fit).toMatchObject({ samples: 1200, used: 1200, weightSum: 1200 });
    expect(fit.residualRms).toBeLessThan(1e-6);
    const w = fit.policy.params();
    for (const s of pickPlaceStates(200, 8)) {
      const want = linearAction(truth, s).map((x) => Math.min(1, Math.max(-1, x)));
      expect(dist(fit.policy.act(s), want)).toBeLessThan(1e-4);
      expect(dist(linearAction(w, s), linearAction(truth, s))).toBeLessThan(1e-4);
    }
  });

  it('ignores samples with weight 0 entirely: corrupt actions at weight 0 leave every fitted weight unchanged', () => {
    const clean = fitBehaviourCloning('pick_place', samples, { ridge: 1e-4 });
    const r = rng(3);
    const corrupt = pickPlaceStates(400, 9).map((s) => ({ state: s, action: [r() * 2 - 1, 5, -7, r() > 0.5 ? 1 : -1], weight: 0 }));
    const mixed = fitBehaviourCloning('pick_place', [...corrupt.slice(0, 200), ...samples, ...corrupt.slice(200)], { ridge: 1e-4 });
    expect(mixed.samples).toBe(1600);
    expect(mixed.used).toBe(1200);
    expect(Array.from(mixed.policy.params())).toEqual(Array.from(clean.policy.params()));
    expect(mixed.residualRms).toBe(clean.residualRms);
  });

  it('moves the fit toward the heavily weighted actions when two demonstrators disagree', () => {
    const other = randomWeights(12);
    const a = states.map((s) => ({ state: s, action: linearAction(truth, s), weight: 1 }));
    const b = states.map((s) => ({ state: s, action: linearAction(other, s), weight: 1 }));
    const uniform = fitBehaviourCloning('pick_place', [...a, ...b], { ridge: 0 }).policy.params();
    const towardA = fitBehaviourCloning('pick_place', [...a.map((x) => ({ ...x, weight: 20 })), ...b], { ridge: 0 }).policy.params();
    const towardB = fitBehaviourCloning('pick_place', [...a, ...b.map((x) => ({ ...x, weight: 20 }))], { ridge: 0 }).policy.params();
    const probe = pickPlaceStates(100, 10);
    const gap = (w: Float64Array, target: Float64Array) =>
      probe.reduce((acc, s) => acc + dist(linearAction(w, s), linearAction(target, s)), 0) / probe.length;
    // uniform: halfway; weight 20 vs 1: 1/21 of the way from A to B
    expect(gap(uniform, truth)).toBeCloseTo(gap(uniform, other), 6);
    expect(gap(towardA, truth)).toBeLessThan(gap(uniform, truth) / 5);
    expect(gap(towardB, other)).toBeLessThan(gap(uniform, other) / 5);
    expect(gap(towardA, truth) / gap(towardA, other)).toBeCloseTo(1 / 20, 6);
  });

  it('refuses negative or non-finite weights, wrong action sizes and an all-zero weighting with SW_ERR_POLICY', async () => {
    const s = states[0]!;
    await expectCode(() => fitBehaviourCloning('pick_place', [{ state: s, action: [0, 0, 0, 0], weight: -1 }]), 'SW_ERR_POLICY');
    await expectCode(() => fitBehaviourCloning('pick_place', [{ state: s, action: [0, 0, 0, 0], weight: NaN }]), 'SW_ERR_POLICY');
    await expectCode(() => fitBehaviourCloning('pick_place', [{ state: s, action: [0, 0, 0], weight: 1 }]), 'SW_ERR_POLICY');
    await expectCode(
      () => fitBehaviourCloning('pick_place', [{ state: s, action: [0, 0, 0, 0], weight: 0 }]),
      'SW_ERR_POLICY',
      'no sample has a positive weight',
    );
  });
});
