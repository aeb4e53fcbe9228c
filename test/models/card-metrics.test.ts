import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { setCardMetrics, summariseEvalMetrics } from '../../models/card-metrics.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import { REPO_ROOT } from '../../core/paths.ts';

describe('card metrics', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sw-card-'));
    await cp(join(REPO_ROOT, 'test/fixtures/tiny-model'), join(dir, 'pkg'), { recursive: true });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('keeps the aggregate figures and the command of an eval metrics.json, not the per-episode rows', () => {
    const doc = {
      episodes: 3,
      voc_plus: 0.9,
      auroc: null,
      per_episode: [{ voc_plus: 1 }],
      per_dataset: [],
      provenance: { command: ['stageward', 'eval'] },
    };
    expect(summariseEvalMetrics(doc)).toEqual({ command: 'stageward eval', episodes: 3, voc_plus: 0.9, auroc: null });
    expect(() => summariseEvalMetrics([1, 2])).toThrow(/not a JSON object/);
  });

  it('adds keys to the card, keeps the others, and the package still loads', async () => {
    const pkg = join(dir, 'pkg');
    const before = JSON.parse(await readFile(join(pkg, 'model.json'), 'utf8'));
    await setCardMetrics(pkg, { engine_eval: { voc_plus: 0.5 } });
    const after = JSON.parse(await readFile(join(pkg, 'model.json'), 'utf8'));
    expect(after.metrics.engine_eval).toEqual({ voc_plus: 0.5 });
    for (const k of Object.keys(before.metrics ?? {})) expect(after.metrics[k]).toEqual(before.metrics[k]);
    expect({ ...after, metrics: before.metrics }).toEqual(before);
    const model = await OnnxProgressModel.load(pkg, { warmup: false });
    await model.close();
  });

  it('refuses a package without a readable card', async () => {
    await expect(setCardMetrics(join(dir, 'missing'), { x: 1 })).rejects.toMatchObject({ code: 'SW_ERR_MODEL_CARD' });
  });
});
