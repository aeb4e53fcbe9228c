// Model evaluation end to end: simulator episodes recorded as LeRobot datasets, run through the
// engine by `evaluateModel` and by `stageward eval`, with the fixture model (random weights: shapes
// and ranges) and with fake models whose behaviour makes VOC+/VOC- exactly predictable; `stageward eval`
// also writes a self-contained report.html (a row and key frames per episode).

import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ModelCard } from '../../../models/card.ts';
import {
  aggregate,
  evaluateModel,
  plannedSteps,
  resolveTask,
  resolveViewMap,
  scoreEpisode,
  type EpisodeRow,
  type ProgressTrace,
} from '../../../offline/eval/evaluate.ts';
import { OnnxProgressModel, type GrmBatch, type ProgressModel, type SarmBatch } from '../../../models/package.ts';
import { episodePlotSvg } from '../../../offline/eval/episode-plot.ts';
import { NO_ON_POLICY } from '../../../offline/eval/on-policy.ts';
import type { ExecutionProvider } from '../../../models/runtime.ts';
import { evalCommand } from '../../../cli/commands/eval.ts';
import { LeRobotDataset } from '../../../datasets/reader.ts';
import { LeRobotDatasetWriter } from '../../../datasets/writer.ts';
import { SimEnv } from '../../../sim/env.ts';
import { recordEpisode } from '../../../sim/record.ts';
import { createRenderer } from '../../../sim/render/index.ts';
import { expectCode, FIXTURE_MODEL_DIR } from '../../helpers.ts';
import { expectReport } from '../../html-report-checks.ts';

const METRIC_KEYS = [
  'episodes',
  'frames',
  'successful',
  'failed',
  'unknown_outcome',
  'voc_plus',
  'voc_minus',
  'stage_accuracy',
  'progress_mae',
  'auroc',
  'label_voc_plus',
  'voc_plus_monotone',
  'voc_minus_monotone',
  'monotone_episodes',
  'grm_voc_plus',
  'grm_voc_minus',
  'grm_progress_mae',
  'grm_auroc',
  'progress_pearson',
  'delta_pearson_1s',
  'stall_drift_per_s',
  'false_high_rate',
  'uncertainty_auroc',
  'uncertainty_mean',
  'large_error_share',
];

let root: string;
let mixedDir: string;
let failedDir: string;
let mixed: LeRobotDataset;
let fixture: OnnxProgressModel;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'stageward-eval-'));
  mixedDir = join(root, 'pp-mixed');
  failedDir = join(root, 'pp-failed');
  const env = await SimEnv.create({ task: 'pick_place', image: { width: 64, height: 64 }, renderer: createRenderer() });
  try {
    const a = await LeRobotDatasetWriter.create(mixedDir, env.datasetSpec());
    await a.addEpisode(recordEpisode(env, 1, 'expert', 20));
    await a.addEpisode(recordEpisode(env, 2, 'failed', 20));
    await a.finish();
    const b = await LeRobotDatasetWriter.create(failedDir, env.datasetSpec());
    await b.addEpisode(recordEpisode(env, 3, 'failed', 20));
    await b.finish();
  } finally {
    env.close();
  }
  mixed = await LeRobotDataset.open(mixedDir);
  fixture = await OnnxProgressModel.load(FIXTURE_MODEL_DIR);
});

afterAll(async () => {
  await fixture?.close();
  await rm(root, { recursive: true, force: true });
});

/**
 * A fake model whose SARM output depends only on the current frame (the window's last slot): the
 * encoder's feature 0 is the image's mean brightness, tau is that of the current frame, stage 0.
 * Its reversed stream is exactly the mirror of its forward stream, so VOC- = -VOC+.
 * With `rising`, it ignores the frames and returns ever higher progress on every call: the
 * "always more progress" model, VOC+ = VOC- = 1.
 */
function fakeModel(card: ModelCard, mode: 'current-frame' | 'rising'): ProgressModel {
  const v = card.views.length;
  const d = card.featureDim;
  const t = card.window.length;
  let calls = 0;
  return {
    card,
    providers: { encoder: 'cpu' as ExecutionProvider },
    async encode(pixels: Uint8Array, n: number) {
      const out = new Float32Array(n * d);
      const size = pixels.length / n;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < size; j++) s += pixels[i * size + j]!;
        out[i * d] = s / size / 255;
      }
      return out;
    },
    async sarm(batch: SarmBatch) {
      const b = batch.task.length;
      const logits = new Float32Array(b * card.maxStages);
      const tau = new Float32Array(b);
      for (let i = 0; i < b; i++) {
        logits[i * card.maxStages] = 10;
        tau[i] = mode === 'rising' ? 1 - 1 / (2 + calls++) : batch.features[(i * t + t - 1) * v * d]!;
      }
      return { stageLogits: logits, tau };
    },
    async grm(batch: GrmBatch) {
      return new Float32Array(batch.task.length);
    },
    async close() {},
  };
}

describe('evaluateModel (the engine over dataset episodes)', () => {
  it('scores every episode with metrics in range, VOC- only where the episode did not fail, and labels from the annotations', async () => {
    const seen: number[] = [];
    let steps = 0;
    const { rows, metrics } = await evaluateModel({
      model: fixture,
      dataset: mixed,
      onStep: () => steps++,
      onEpisode: (r) => void seen.push(r.forward.sarm.length),
    });
    expect(rows).toHaveLength(2);
    expect(steps).toBe(plannedSteps(mixed));
    expect(seen).toEqual(mixed.episodes.map((e) => e.length));
    const [ok, bad] = rows as [EpisodeRow, EpisodeRow];
    expect(ok.success).toBe(true);
    expect(bad.success).toBe(false);
    expect(ok.task).toBe('pick_place');
    expect(ok.voc_minus).not.toBeNull();
    expect(bad.voc_minus).toBeNull();
    for (const r of rows) {
      for (const k of ['voc_plus', 'grm_voc_plus'] as const) expect(Math.abs(r[k]!)).toBeLessThanOrEqual(1);
      for (const k of ['stage_accuracy', 'progress_mae', 'final_progress', 'grm_progress_mae', 'grm_final_progress'] as const) {
        expect(r[k]).toBeGreaterThanOrEqual(0);
        expect(r[k]).toBeLessThanOrEqual(1);
      }
    }
    expect(Object.keys(metrics).sort()).toEqual([...METRIC_KEYS].sort());
    expect(metrics.episodes).toBe(2);
    expect(metrics.frames).toBe(mixed.episodes[0]!.length + mixed.episodes[1]!.length);
    expect(metrics.voc_plus).toBe(ok.voc_plus); // the failed episode does not count toward VOC
    expect([0, 0.5, 1]).toContain(metrics.auroc); // one episode per class
    // simulator recordings carry annotation.true_progress: the on-policy metrics are computed, per episode and pooled
    for (const r of rows) {
      expect(Math.abs(r.progress_pearson!)).toBeLessThanOrEqual(1);
      expect(r.false_high_rate).toBeGreaterThanOrEqual(0);
      expect(r.uncertainty_auroc).toBeNull(); // the fixture package reports no uncertainty
    }
    expect(metrics.progress_pearson).toBeCloseTo((ok.progress_pearson! + bad.progress_pearson!) / 2, 12);
    expect(Math.abs(metrics.delta_pearson_1s!)).toBeLessThanOrEqual(1);
    expect(metrics.false_high_rate).toBeCloseTo((ok.false_high_rate! * ok.frames + bad.false_high_rate! * bad.frames) / metrics.frames, 12);
  });

  it('feeds VOC- the reversed frames in a new episode: a current-frame model mirrors, an "always more" model fails', async () => {
    const mirror = await evaluateModel({
      model: fakeModel(fixture.card, 'current-frame'),
      dataset: mixed,
      task: 'pick_place',
      episodes: [0],
    });
    const row = mirror.rows[0]!;
    expect(Math.abs(row.voc_plus)).toBeGreaterThan(0.05); // brightness changes over the episode
    expect(row.voc_minus!).toBeCloseTo(-row.voc_plus, 10);
    expect(row.stage_accuracy).toBeGreaterThan(0); // stage 0 ("reach") is right at the start

    const rising = await evaluateModel({ model: fakeModel(fixture.card, 'rising'), dataset: mixed, episodes: [0] });
    expect(rising.rows[0]!.voc_plus).toBeCloseTo(1, 12);
    expect(rising.rows[0]!.voc_minus).toBeCloseTo(1, 12);
  });

  it('maps the card views to dataset views and refuses unknown ones with stable codes', async () => {
    expect(resolveViewMap(fixture.card, mixed.views, { front: 'side' })).toEqual({ front: 'side', side: 'side', wrist: 'wrist' });
    await expectCode(() => resolveViewMap(fixture.card, mixed.views, { top: 'front' }), 'SW_ERR_VIEW_UNKNOWN');
    await expectCode(() => resolveViewMap(fixture.card, ['front', 'side'], {}), 'SW_ERR_DATASET_VIEW', 'wrist');
    await expectCode(evaluateModel({ model: fixture, dataset: mixed, viewMap: { wrist: 'hand' } }), 'SW_ERR_DATASET_VIEW');
  });

  it('scores a view as missing (--fill-view): it reads no dataset view, and needs a card that declares a fill', async () => {
    // A two-camera dataset against the three-view model, the third view filled.
    expect(resolveViewMap(fixture.card, ['front', 'side'], {}, ['wrist'])).toEqual({ front: 'front', side: 'side' });
    await expectCode(
      evaluateModel({ model: fixture, dataset: mixed, fill: ['wrist'], episodes: [0] }),
      'SW_ERR_BAD_OPTION',
      'missing_views',
    );
  });

  it("resolves the task from the episode's recorded task id, else fails asking for one", async () => {
    const ep = mixed.episodes[0]!;
    expect(resolveTask(fixture.card, mixed, ep)).toBe('pick_place');
    expect(resolveTask(fixture.card, mixed, { ...ep, meta: null })).toBe('pick_place'); // stage names match pick_place
    await expectCode(() => resolveTask(fixture.card, mixed, ep, 'laundry'), 'SW_ERR_TASK_UNKNOWN');
    // stack_three's stages are not the dataset's: the annotations cannot be labelled with them
    await expectCode(evaluateModel({ model: fixture, dataset: mixed, task: 'stack_three' }), 'SW_ERR_ANNOTATION_INVALID');
  });
});

describe("evaluateModel with the engine's causal smoothing", () => {
  it('scores the smoothed SARM series (an EMA of the raw one without uncertainty) and runs no GRM', async () => {
    const series = async (smoothing?: { kind: 'ema'; alpha: number }) => {
      const out: { sarm: number[]; grm: number[] | null }[] = [];
      await evaluateModel({
        model: fixture,
        dataset: mixed,
        episodes: [0],
        ...(smoothing ? { smoothing } : {}),
        onEpisode: (r) => void out.push({ sarm: r.forward.sarm, grm: r.forward.grm }),
      });
      return out[0]!;
    };
    const raw = await series();
    const smooth = await series({ kind: 'ema', alpha: 0.5 });
    expect(smooth.grm).toBeNull();
    expect(smooth.sarm[0]).toBeCloseTo(raw.sarm[0]!, 6);
    for (let t = 1; t < raw.sarm.length; t++)
      expect(smooth.sarm[t]).toBeCloseTo(smooth.sarm[t - 1]! + 0.5 * (raw.sarm[t]! - smooth.sarm[t - 1]!), 6);
    expect(smooth.sarm).not.toEqual(raw.sarm);
  });
});

describe('scoring and aggregation (pure)', () => {
  const trace = (sarm: number[], grm: number[] | null = null): ProgressTrace => ({
    sarm,
    stage: sarm.map((p) => (p < 0.5 ? 0 : 1)),
    grm,
    uncertainty: null,
  });

  it('scores a perfect predictor VOC+ 1, VOC- -1, accuracy 1, MAE 0', () => {
    const up = [0, 0.25, 0.5, 0.75, 1];
    const s = scoreEpisode(trace(up, up), trace([...up].reverse(), [...up].reverse()), { stage: [0, 0, 1, 1, 1], progress: up });
    expect(s).toMatchObject({
      voc_plus: 1,
      voc_minus: -1,
      stage_accuracy: 1,
      progress_mae: 0,
      final_progress: 1,
      grm_voc_plus: 1,
      grm_voc_minus: -1,
      grm_progress_mae: 0,
    });
    expect(scoreEpisode(trace([0.3, 0.3, 0.3]), null, null)).toMatchObject({
      voc_plus: 0,
      voc_minus: null,
      stage_accuracy: null,
      grm_voc_plus: null,
    });
  });

  it("measures the labels' own VOC, the ceiling of VOC+ on an episode whose progress goes back (a drop)", () => {
    const dropped = [0, 0.3, 0.5, 0.2, 0.4, 0.7, 1];
    const s = scoreEpisode(trace(dropped), null, { stage: [0, 1, 2, 1, 1, 2, 2], progress: dropped });
    expect(s.voc_plus).toBeCloseTo(s.label_voc_plus!, 12);
    expect(s.label_voc_plus).toBeLessThan(1);
    expect(s.labels_monotone).toBe(false);
    expect(scoreEpisode(trace([0, 0.5, 1]), null, { stage: [0, 1, 1], progress: [0, 0.5, 1] }).labels_monotone).toBe(true);
  });

  it('averages VOC over non-failed episodes, weights accuracy/MAE by frames, AUROC over final progress', () => {
    const row = (success: boolean | null, frames: number, voc: number, acc: number | null, final: number): EpisodeRow => ({
      dataset: 0,
      episode: 0,
      task: 't',
      success,
      frames,
      voc_plus: voc,
      voc_minus: success === false ? null : -voc,
      label_voc_plus: acc === null ? null : 1,
      labels_monotone: acc === null ? null : acc === 1,
      stage_accuracy: acc,
      progress_mae: acc === null ? null : 1 - acc,
      final_progress: final,
      grm_voc_plus: null,
      grm_voc_minus: null,
      grm_progress_mae: null,
      grm_final_progress: null,
      ...NO_ON_POLICY,
    });
    const m = aggregate([row(true, 10, 1, 1, 0.9), row(null, 30, 0.5, 0.5, 0.2), row(false, 60, -1, 0, 0.1), row(true, 5, 0, null, 0.1)]);
    expect(m).toMatchObject({ episodes: 4, frames: 105, successful: 2, failed: 1, unknown_outcome: 1 });
    expect(m.monotone_episodes).toBe(1); // only the first row's labels never go back
    expect(m.voc_plus_monotone).toBe(1);
    expect(m.voc_plus).toBeCloseTo(0.5, 12); // (1 + 0.5 + 0) / 3
    expect(m.voc_minus).toBeCloseTo(-0.5, 12);
    expect(m.stage_accuracy).toBeCloseTo((10 + 15) / 100, 12);
    expect(m.auroc).toBe(0.75); // positives 0.9 and 0.1 against 0.1
    expect(m.grm_voc_plus).toBeNull();
    expect(m.grm_auroc).toBeNull();
    expect(aggregate([row(true, 3, 1, 1, 1)]).auroc).toBeNull();
  });

  it('draws a plot SVG with both panels, a legend and escaped text', () => {
    const svg = episodePlotSvg({
      title: 'a <b> & c',
      stageNames: ['reach', 'grasp'],
      sarm: [0, 1],
      stage: [0, 1],
      grm: null,
      trueProgress: [0, 1],
      trueStage: [0, 1],
    });
    expect(svg).toContain('a &lt;b&gt; &amp; c');
    expect(svg).toContain('label (annotations)');
    expect(svg).not.toContain('GRM (fused)');
    expect(svg.match(/<path /g)).toHaveLength(4);
  });
});

describe('stageward eval', () => {
  it('evaluates several datasets together and writes metrics.json, decodable plots and a final JSON line', async () => {
    const out = join(root, 'eval-out');
    const logs: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logs.push(a.join(' ')));
    try {
      const program = new Command('stageward').exitOverride().addCommand(evalCommand());
      await program.parseAsync(
        [
          'eval',
          '--model',
          FIXTURE_MODEL_DIR,
          '--dataset',
          mixedDir,
          '--dataset',
          failedDir,
          '--out',
          out,
          '--no-progress',
          '--view-map',
          'front=observation.images.front',
        ],
        { from: 'user' },
      );
    } finally {
      log.mockRestore();
    }
    const report = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as Record<string, any>;
    for (const k of METRIC_KEYS) expect(report).toHaveProperty(k);
    expect(report.episodes).toBe(3);
    expect(report.failed).toBe(2);
    expect(report.auroc).toBeGreaterThanOrEqual(0);
    expect(report.auroc).toBeLessThanOrEqual(1);
    expect(report.per_dataset.map((d: { episodes: number }) => d.episodes)).toEqual([2, 1]);
    expect(report.per_episode).toHaveLength(3);
    expect(report.provenance.command).toContain('--dataset');
    expect(report.provenance.model.name).toBe('tiny-fixture');
    expect(report.provenance.datasets[1].root).toBe(failedDir);
    const last = JSON.parse(logs.at(-1)!) as Record<string, unknown>;
    expect(Object.keys(last).sort()).toEqual([...METRIC_KEYS].sort());
    expect(last.voc_plus).toBe(report.voc_plus);
    expect(report.per_episode.map((r: { plot: string }) => r.plot)).toEqual([
      'plots/d0-episode-0000.png',
      'plots/d0-episode-0001.png',
      'plots/d1-episode-0000.png',
    ]);
    const meta = await sharp(join(out, 'plots', 'd1-episode-0000.png')).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBe(960);
    // report.html: self-contained, one table row per episode linking to its section, key frames
    expect(logs.join('\n')).toContain(join(out, 'report.html'));
    const html = await readFile(join(out, 'report.html'), 'utf8');
    expectReport(html, { kind: 'eval', episodes: 3, link: ['d1-ep-0000', '0'], chart: 'd0-ep-0001-progress', minThumbnails: 3 });
  });
});
