// `stageward sim train-bc` and `stageward sim eval-policy` end to end on a tiny recorded dataset: a
// weights file enters the fit (an episode weighted 0 is the same as leaving it out), the policy file
// carries its provenance, eval-policy uses sim record's seed scheme and ends with one JSON line, and
// bad inputs fail with their stable codes.

import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LeRobotDataset } from '../../../datasets/reader.ts';
import { readBcDataset } from '../../../learn/policy/dataset-samples.ts';
import { GatedLinearPolicy } from '../../../learn/policy/linear-policy.ts';
import { writeRabcWeights } from '../../../offline/rabc/files.ts';
import { rabcWeights } from '../../../offline/rabc/weights.ts';
import { runCli } from '../../helpers.ts';

const cli = runCli;

const RECORD_SEED = 3;
let dir: string;
let dataset: string;
let lengths: number[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stageward-bc-'));
  dataset = join(dir, 'pp');
  const r = await cli([
    'sim',
    'record',
    '--task',
    'pick_place',
    '--episodes',
    '3',
    '--size',
    '32',
    '--preset',
    'expert',
    '--seed',
    String(RECORD_SEED),
    '--out',
    dataset,
    '--no-progress',
  ]);
  expect(r.code, r.stderr).toBe(0);
  lengths = (await LeRobotDataset.open(dataset)).episodes.map((e) => e.length);
}, 60_000);

afterEach(() => vi.restoreAllMocks());

/** A weights file: `perEpisode[e]` for every frame of episode e. */
async function weightsFile(name: string, perEpisode: number[], episodes = [0, 1, 2]): Promise<string> {
  const ds = await LeRobotDataset.open(dataset);
  const eps = episodes.map((i) => ({ index: i, datasetFrom: ds.episode(i).datasetFrom, length: ds.episode(i).length }));
  const result = rabcWeights(
    eps.map((e) => new Float64Array(e.length)),
    { chunk: 1 },
  );
  result.weights = eps.map((e, i) => new Float64Array(e.length).fill(perEpisode[i]!));
  const path = join(dir, name);
  await writeRabcWeights(path, eps, result);
  return path;
}

describe('stageward sim train-bc', () => {
  it('fits with a weights file, saves the provenance, and weight 0 on an episode equals leaving it out', async () => {
    const weights = await weightsFile('w.parquet', [1, 0, 1]);
    const out = join(dir, 'rabc.json');
    const r = await cli(['sim', 'train-bc', '--dataset', dataset, '--weights', weights, '--ridge', '1e-3', '--out', out, '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    const total = lengths.reduce((a, b) => a + b, 0);
    const last = JSON.parse(r.stdout.at(-1)!) as Record<string, number>;
    expect(last).toMatchObject({ samples: total, used: total - lengths[1]!, weight_sum: total - lengths[1]! });
    expect(last.residual_rms).toBeGreaterThanOrEqual(0);
    expect(r.stdout.join('\n')).toContain('zero: ');

    const { policy, provenance } = await GatedLinearPolicy.load(out);
    expect(provenance).toMatchObject({
      trainer: 'stageward sim train-bc',
      dataset,
      weights,
      ridge: 1e-3,
      samples: total,
      used_samples: total - lengths[1]!,
      episodes: [0, 1, 2],
      dataset_seed_range: [RECORD_SEED * 100_000, RECORD_SEED * 100_000 + 2],
    });
    expect(typeof provenance.created_at).toBe('string');

    const subset = join(dir, 'subset.json');
    const s = await cli([
      'sim',
      'train-bc',
      '--dataset',
      dataset,
      '--uniform',
      '--episodes',
      '0,2',
      '--ridge',
      '1e-3',
      '--out',
      subset,
      '--no-progress',
    ]);
    expect(s.code, s.stderr).toBe(0);
    expect(Array.from((await GatedLinearPolicy.load(subset)).policy.params())).toEqual(Array.from(policy.params()));

    // and a weighting differs from plain BC on the same frames
    const uniform = join(dir, 'uniform.json');
    expect(
      (await cli(['sim', 'train-bc', '--dataset', dataset, '--uniform', '--ridge', '1e-3', '--out', uniform, '--no-progress'])).code,
    ).toBe(0);
    expect(Array.from((await GatedLinearPolicy.load(uniform)).policy.params())).not.toEqual(Array.from(policy.params()));
  });

  it('gives frames the weights file lacks weight 1', async () => {
    const weights = await weightsFile('partial.parquet', [0.5], [0]);
    const r = await cli([
      'sim',
      'train-bc',
      '--dataset',
      dataset,
      '--weights',
      weights,
      '--out',
      join(dir, 'partial.json'),
      '--no-progress',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const total = lengths.reduce((a, b) => a + b, 0);
    expect(JSON.parse(r.stdout.at(-1)!)).toMatchObject({ used: total, weight_sum: total - lengths[0]! / 2 });
    expect(r.stdout.join('\n')).toContain(`frames without a weight (1): ${total - lengths[0]!}`);
  });

  it('reads state, action, true progress and the expert meta per episode', async () => {
    const data = await readBcDataset(await LeRobotDataset.open(dataset), { episodes: [1] });
    expect(data.task).toBe('pick_place');
    expect(data.episodes).toHaveLength(1);
    expect(data.episodes[0]).toMatchObject({ index: 1, length: lengths[1], first: 0, seed: RECORD_SEED * 100_000 + 1, flaws: [] });
    expect(data.episodes[0]!.trueProgress).toHaveLength(lengths[1]!);
    expect(data.samples[0]!.state).toHaveLength(11);
    expect(data.samples[0]!.action).toHaveLength(4);
  });

  it('fails with stable codes: no weighting chosen, a dataset without observation.state, weights of another dataset (unknown episode, shifted index)', async () => {
    const none = await cli(['sim', 'train-bc', '--dataset', dataset, '--out', join(dir, 'x.json')]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('SW_ERR_POLICY');
    expect(none.stderr).toContain('--uniform');

    const stateless = join(dir, 'stateless');
    await cp(dataset, stateless, { recursive: true });
    const infoPath = join(stateless, 'meta', 'info.json');
    const info = JSON.parse(await readFile(infoPath, 'utf8')) as { features: Record<string, unknown> };
    delete info.features['observation.state'];
    await writeFile(infoPath, JSON.stringify(info));
    const noState = await cli(['sim', 'train-bc', '--dataset', stateless, '--uniform', '--out', join(dir, 'x.json'), '--no-progress']);
    expect(noState.code).toBe(2);
    expect(noState.stderr).toContain('SW_ERR_DATASET_FORMAT');
    expect(noState.stderr).toContain('observation.state');

    const ds = await LeRobotDataset.open(dataset);
    const write = async (name: string, eps: { index: number; datasetFrom: number; length: number }[]) => {
      await writeRabcWeights(
        join(dir, name),
        eps,
        rabcWeights(
          eps.map((e) => new Float64Array(e.length)),
          { chunk: 1 },
        ),
      );
      return cli(['sim', 'train-bc', '--dataset', dataset, '--weights', join(dir, name), '--out', join(dir, 'x.json'), '--no-progress']);
    };
    const unknownEpisode = await write('foreign.parquet', [{ index: 7, datasetFrom: 0, length: 3 }]);
    expect(unknownEpisode.code).toBe(2);
    expect(unknownEpisode.stderr).toContain('SW_ERR_DATASET_FORMAT');
    expect(unknownEpisode.stderr).toContain('episode(s) 7');
    const shifted = await write('shifted.parquet', [
      { index: 0, datasetFrom: ds.episode(0).datasetFrom + 5, length: ds.episode(0).length },
    ]);
    expect(shifted.code).toBe(2);
    expect(shifted.stderr).toContain('SW_ERR_DATASET_FORMAT');
    expect(shifted.stderr).toContain('another dataset');
  });
});

describe('stageward sim eval-policy', () => {
  it("runs seeded episodes with sim record's seed scheme and ends with one JSON line", async () => {
    const policy = join(dir, 'eval-me.json');
    expect((await cli(['sim', 'train-bc', '--dataset', dataset, '--uniform', '--out', policy, '--no-progress'])).code).toBe(0);
    const json = join(dir, 'eval.json');
    const r = await cli([
      'sim',
      'eval-policy',
      '--policy',
      policy,
      '--episodes',
      '3',
      '--seed',
      '5',
      '--max-steps',
      '60',
      '--json',
      json,
      '--no-progress',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const last = JSON.parse(r.stdout.at(-1)!) as Record<string, unknown>;
    expect(Object.keys(last).slice(0, 4)).toEqual(['success_rate', 'ci95_low', 'ci95_high', 'episodes']);
    expect(last.episodes).toBe(3);
    const k = Math.round((last.success_rate as number) * 3);
    expect(last.ci95_low).toBeLessThanOrEqual(k / 3);
    expect(last.ci95_high).toBeGreaterThanOrEqual(k / 3);
    expect(r.stdout.join('\n')).toContain('95% Wilson interval');
    const doc = JSON.parse(await readFile(json, 'utf8')) as { outcomes: { seed: number; steps: number }[]; seeds: number[] };
    expect(doc.seeds).toEqual([500_000, 500_002]);
    expect(doc.outcomes.map((o) => o.seed)).toEqual([500_000, 500_001, 500_002]);
    for (const o of doc.outcomes) expect(o.steps).toBeLessThanOrEqual(60);
  });

  it("warns when the evaluation seeds are the training data's, and refuses a bad policy file with SW_ERR_POLICY", async () => {
    const policy = join(dir, 'eval-me.json');
    const r = await cli([
      'sim',
      'eval-policy',
      '--policy',
      policy,
      '--episodes',
      '1',
      '--seed',
      String(RECORD_SEED),
      '--max-steps',
      '5',
      '--no-progress',
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('not a held-out evaluation');
    await writeFile(join(dir, 'junk.json'), 'not json');
    const bad = await cli(['sim', 'eval-policy', '--policy', join(dir, 'junk.json'), '--episodes', '1', '--no-progress']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('SW_ERR_POLICY');
  });
});
