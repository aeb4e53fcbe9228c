import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCard } from '../../models/card.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import { expectCode, fixtureCopy, FIXTURE_MODEL_DIR } from '../helpers.ts';
import { baseCardJson } from './card-fixture.ts';

const load = (dir: string) => OnnxProgressModel.load(dir, { warmup: false });

describe('model card validation', () => {
  const refuse = (edit: (c: Record<string, any>) => void, field: string) => {
    const c = baseCardJson();
    edit(c);
    return expectCode(() => parseCard(c), 'SW_ERR_MODEL_CARD', field);
  };

  it('accepts the fixture card and derives K from the largest task', () => {
    const card = parseCard(baseCardJson());
    expect(card.maxStages).toBe(7);
    expect(card.window).toEqual({ length: 5, strideFrames: 2, includeInitial: true });
  });

  it('refuses a wrong format version', () => refuse((c) => (c.format = 2), '`format`'));
  it('refuses a missing field, naming it', () => refuse((c) => delete c.feature_dim, '`feature_dim`'));
  it('refuses priors that do not sum to 1', () => refuse((c) => (c.stages.pick_place[0].prior = 0.5), '`stages.pick_place[*].prior`'));
  it('refuses a zero or negative prior', () => refuse((c) => (c.stages.pick_place[0].prior = 0), '`stages.pick_place[0].prior`'));
  it('refuses a task without stages', () => refuse((c) => delete c.stages.stack_three, '`stages.stack_three`'));
  it('refuses stages for a task it does not list', () => refuse((c) => (c.stages.fold = [{ name: 'a', prior: 1 }]), '`stages.fold`'));
  it('refuses repeated view names', () => refuse((c) => (c.views = ['front', 'front', 'wrist']), '`views`'));
  it('refuses an unknown resize mode', () => refuse((c) => (c.image.resize = 'squash'), '`image.resize`'));
  it('refuses an absurd image size', () => refuse((c) => (c.image.height = 100_000), '`image.height`'));
  it('refuses an unknown composition', () => refuse((c) => (c.progress.composition = 'max'), '`progress.composition`'));
  it('refuses a graph path that leaves the folder', () => refuse((c) => (c.graphs.encoder = '../x.onnx'), '`graphs.encoder`'));
  it('refuses a GRM graph when grm.present is false', () => refuse((c) => (c.grm.present = false), '`graphs.grm`'));
});

describe('model package loading', () => {
  const dirs: string[] = [];
  const copy = async (edit: (c: Record<string, any>) => void) => {
    const d = await fixtureCopy(edit);
    dirs.push(d);
    return d;
  };
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(join(d, '..'), { recursive: true, force: true })));
  });

  it('loads the fixture, one session per graph, on CPU', async () => {
    const model = await OnnxProgressModel.load(FIXTURE_MODEL_DIR);
    expect(model.providers).toEqual({ encoder: 'cpu', sarm: 'cpu', grm: 'cpu' });
    expect(model.card.views).toEqual(['front', 'side', 'wrist']);
    await model.close();
  });

  it('refuses a missing folder with SW_ERR_MODEL_NOT_FOUND', () => expectCode(load('/nonexistent/model'), 'SW_ERR_MODEL_NOT_FOUND'));

  it('refuses a missing graph file with SW_ERR_MODEL_NOT_FOUND', async () => {
    const d = await copy(() => {});
    await rm(join(d, 'grm.onnx'));
    await expectCode(load(d), 'SW_ERR_MODEL_NOT_FOUND', 'grm.onnx');
  });

  it('refuses model.json that is not JSON', async () => {
    const d = await copy(() => {});
    await writeFile(join(d, 'model.json'), '{"format": 1,');
    await expectCode(load(d), 'SW_ERR_MODEL_CARD', 'not valid JSON');
  });

  it('refuses a graph file that is not ONNX with SW_ERR_MODEL_LOAD', async () => {
    const d = await copy(() => {});
    await writeFile(join(d, 'sarm.onnx'), 'not a graph');
    await expectCode(load(d), 'SW_ERR_MODEL_LOAD');
  });

  // Each card/graph mismatch kind, refused with a message naming the card field.
  const mismatches: [string, (c: Record<string, any>) => void, string][] = [
    ['feature dim', (c) => (c.feature_dim = 48), '`feature_dim`'],
    ['image height', (c) => (c.image.height = 96), '`image.height`'],
    ['image width', (c) => (c.image.width = 32), '`image.width`'],
    ['view count', (c) => (c.views = ['front', 'wrist']), '`views`'],
    ['window length', (c) => (c.window.length = 9), '`window.length`'],
    [
      'stage count',
      (c) => (c.stages.stack_three = c.stages.stack_three.slice(0, 5).map((s: any) => ({ ...s, prior: 0.2 }))),
      '`stages (largest stage count)`',
    ],
  ];
  for (const [what, edit, field] of mismatches) {
    it(`refuses a card whose ${what} disagrees with the graphs`, async () => {
      await expectCode(load(await copy(edit)), 'SW_ERR_MODEL_GRAPH', field);
    });
  }

  it('refuses graphs swapped between roles (wrong input names and dtypes)', async () => {
    const d = await copy((c) => (c.graphs.sarm = 'encoder.onnx'));
    await expectCode(load(d), 'SW_ERR_MODEL_GRAPH', 'sarm.onnx: inputs are [pixels]');
  });

  it('refuses an unknown execution provider with SW_ERR_RUNTIME_CONFIG', () =>
    expectCode(OnnxProgressModel.load(FIXTURE_MODEL_DIR, { providers: ['tpu' as 'cpu'] }), 'SW_ERR_RUNTIME_CONFIG', 'tpu'));

  it('refuses a negative thread count', () =>
    expectCode(OnnxProgressModel.load(FIXTURE_MODEL_DIR, { intraOpThreads: -1 }), 'SW_ERR_RUNTIME_CONFIG', 'intraOpThreads'));
});

describe('execution providers', () => {
  it('falls back to CPU when a requested provider cannot start, logging which one failed and why, once', async () => {
    // .npmrc skips onnxruntime-node's CUDA download, so the CUDA provider cannot load in a test install.
    const logs: string[] = [];
    const model = await OnnxProgressModel.load(FIXTURE_MODEL_DIR, { providers: ['cuda', 'cpu'], log: (m) => logs.push(m), warmup: true });
    expect(model.providers).toEqual({ encoder: 'cpu', sarm: 'cpu', grm: 'cpu' });
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/execution provider "cuda" failed for .*encoder\.onnx \(.+\)/);
    await model.close();
  });
});
