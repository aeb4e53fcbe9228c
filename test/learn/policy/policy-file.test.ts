// The saved policy and the success statistics a user reads: a GatedLinearPolicy survives a save/load
// round trip with its provenance, a bad policy file fails with SW_ERR_POLICY, and the Wilson interval
// gives the textbook values.

import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { wilsonInterval } from '../../../learn/policy/evaluate.ts';
import { GATED_FEATURE_DIM } from '../../../learn/policy/features.ts';
import { ACTION_DIM, GatedLinearPolicy, POLICY_FORMAT } from '../../../learn/policy/linear-policy.ts';
import { expectCode } from '../../helpers.ts';
import { pickPlaceStates, rng } from './states.ts';

describe('wilsonInterval', () => {
  it('gives the textbook 95% interval for 8 of 10 and 65 of 100', () => {
    const [lo, hi] = wilsonInterval(8, 10);
    expect(lo).toBeCloseTo(0.4902, 4);
    expect(hi).toBeCloseTo(0.9433, 4);
    const [lo2, hi2] = wilsonInterval(65, 100);
    expect(lo2).toBeCloseTo(0.5525, 4);
    expect(hi2).toBeCloseTo(0.7364, 4);
  });

  it('reaches exactly 0 and 1 at the ends, and knows nothing without episodes', () => {
    expect(wilsonInterval(0, 10)[0]).toBe(0);
    expect(wilsonInterval(0, 10)[1]).toBeCloseTo(0.2775, 4);
    expect(wilsonInterval(100, 100)).toEqual([expect.closeTo(0.963, 3), 1]);
    expect(wilsonInterval(0, 0)).toEqual([0, 1]);
  });
});

describe('GatedLinearPolicy files', () => {
  it('round-trips through save/load: the same actions and the provenance', async () => {
    const r = rng(5);
    const policy = new GatedLinearPolicy(
      'pick_place',
      Float64Array.from({ length: GATED_FEATURE_DIM * ACTION_DIM }, () => r() - 0.5),
    );
    const path = join(await mkdtemp(join(tmpdir(), 'stageward-policy-')), 'p.json');
    await policy.save(path, { dataset: 'pp-demo', weights: 'uniform', samples: 42 });
    const { policy: back, provenance } = await GatedLinearPolicy.load(path);
    expect(back.task.id).toBe('pick_place');
    expect(provenance).toEqual({ dataset: 'pp-demo', weights: 'uniform', samples: 42 });
    expect(Array.from(back.params())).toEqual(Array.from(policy.params()));
    for (const s of pickPlaceStates(20, 1)) expect(back.act(s)).toEqual(policy.act(s));
    const doc = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    expect(doc).toMatchObject({
      format: POLICY_FORMAT,
      kind: 'gated-linear',
      task: 'pick_place',
      featureDim: GATED_FEATURE_DIM,
      actionDim: ACTION_DIM,
    });
  });

  it('refuses a missing file, bad JSON, another format and another feature map with SW_ERR_POLICY', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stageward-policy-'));
    await expectCode(GatedLinearPolicy.load(join(dir, 'absent.json')), 'SW_ERR_POLICY', 'cannot read');
    await writeFile(join(dir, 'bad.json'), '{"format": ');
    await expectCode(GatedLinearPolicy.load(join(dir, 'bad.json')), 'SW_ERR_POLICY', 'not valid JSON');
    await writeFile(join(dir, 'other.json'), JSON.stringify({ format: 'something/1', weights: [] }));
    await expectCode(GatedLinearPolicy.load(join(dir, 'other.json')), 'SW_ERR_POLICY', 'not a stageward-policy/1');
    const wrongDim = GatedLinearPolicy.zeros('pick_place').toFile();
    await writeFile(join(dir, 'dim.json'), JSON.stringify({ ...wrongDim, featureDim: GATED_FEATURE_DIM + 1 }));
    await expectCode(GatedLinearPolicy.load(join(dir, 'dim.json')), 'SW_ERR_POLICY', 'features');
  });
});
