// One offline scoring run: score each source (a dataset episode, or one set of videos) with the
// batch scorer, write its files, and keep going when one fails (it is reported with its error code);
// then write sarm_progress.parquet (datasets), OUT/summary.json and OUT/report.html: one self-contained
// page (html-report.ts) with interactive charts, the per-episode table and the key frames at predicted
// stage changes, taken from the frames being scored. With `shard`, a dataset run scores its share of
// the episodes only and writes a part for `stageward score merge` instead of those three files (shards.ts).
//
//   const run = await scoreDataset(model, await LeRobotDataset.open('pp'), { out: 'score-pp', ... });
//   const part = await scoreDataset(model, ds, {}, { out, shard: { index: 0, count: 4, modelSha256 } });
//   const run = await scoreVideos(model, { views: { front: 'a.mp4', side: 'b.mp4', wrist: 'c.mp4' } }, { out, ... });
//
// `run.totals.scored === 0` means nothing could be scored; the CLI turns that into a non-zero exit.

import { basename, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { StagewardError } from '../../core/errors.ts';
import { checkSmoothing } from '../../models/engine.ts';
import type { ProgressModel } from '../../models/package.ts';
import type { LeRobotDataset } from '../../datasets/reader.ts';
import type { FrameSet } from '../../models/preprocess.ts';
import { writeFileAtomic } from '../../core/files.ts';
import {
  DEFAULT_BATCH_FRAMES,
  DEFAULT_ENCODE_BATCH_IMAGES,
  SCORE_OPTION_DEFAULTS,
  scoreFrames,
  type EpisodeScore,
  type ScoreOptions,
} from './batch-scorer.ts';
import { writeProgressParquet, type ProgressFileResult, type ScoredEpisodeProgress } from './progress-parquet.ts';
import { ScoreHtmlReport } from './html-report.ts';
import { failedReport, scoredReport, totalsOf, writeEpisodeFiles, type EpisodeReport, type RunTotals } from './report.ts';
import { datasetSources, videoSource, type DatasetSelection, type ScoreSource, type VideoSelection } from './sources.ts';
import { checkShard, datasetIdentity, formatRanges, SHARD_RULE, shardShare, writeScorePart } from './shards.ts';
import type { ScorePartResult, ShardSpec } from './shards.ts';

/** A shard of a dataset run, and the digest of the model's files (shards.ts modelDigest) its parts are checked by. */
export interface ShardRunOptions extends ShardSpec {
  modelSha256: string | null;
}

export interface RunOptions extends Omit<ScoreOptions, 'task' | 'envReward' | 'onFrame' | 'onStep'> {
  /** Folder for summary.json, report.html, episodes/*.csv|json and plots/*.png (created). */
  out: string;
  /** Write a PNG plot per episode. Default true. */
  plots?: boolean;
  /** Datasets: write sarm_progress.parquet in the dataset root. Default true. */
  parquet?: boolean;
  /** Datasets: score this shard's share and write its part instead of sarm_progress.parquet and summary.json. */
  shard?: ShardRunOptions;
  /** Datasets: the model's path as the user named it, written as sarm_progress.parquet's `reward_model_path` (LeRobot's key). */
  rewardModelPath?: string;
  onFrame?: () => void;
  /** Once the sources are known: the frames expected in all (an estimate for videos). */
  onPlanned?: (frames: number) => void;
  /** After each source, scored or failed (progress bars). */
  onSource?: (report: EpisodeReport, source: ScoreSource | null) => void;
}

export interface RunResult {
  out: string;
  reports: EpisodeReport[];
  totals: RunTotals;
  /** Datasets only, when written. */
  parquet: ProgressFileResult | null;
  /** The summary.json document (for a shard: its part's summary, not written to OUT). */
  summary: Record<string, unknown>;
  /** Sharded runs: the part written. */
  part?: ScorePartResult;
  /** report.html, absolute (not written by a shard). */
  html?: string;
}

function optionsOf(o: RunOptions): Record<string, unknown> {
  return {
    stride: o.stride ?? SCORE_OPTION_DEFAULTS.stride,
    batch_frames: o.batchFrames ?? DEFAULT_BATCH_FRAMES,
    encode_batch_images: o.encodeBatchImages ?? DEFAULT_ENCODE_BATCH_IMAGES,
    progress: o.progress ?? SCORE_OPTION_DEFAULTS.progress,
    dense: o.dense ?? false,
    shaping: o.shaping ?? SCORE_OPTION_DEFAULTS.shaping,
    gamma: o.gamma ?? SCORE_OPTION_DEFAULTS.gamma,
    composition: o.composition ?? null,
    smoothing: checkSmoothing(o.smoothing),
  };
}

async function scoreSources(
  model: ProgressModel,
  sources: ScoreSource[],
  o: RunOptions,
  header: Record<string, unknown>,
  html: ScoreHtmlReport | null,
  keep?: (s: ScoreSource, score: EpisodeScore) => void,
): Promise<EpisodeReport[]> {
  const reports: EpisodeReport[] = [];
  for (const source of sources) {
    const t0 = performance.now();
    const base = { episode: source.episode, label: source.label, success: source.success };
    const keyFrames = html?.keyFrames() ?? null;
    let task: string | null = null;
    let report: EpisodeReport;
    let score: EpisodeScore | null = null;
    try {
      task = source.task();
      await source.prepare();
      score = await scoreFrames(model, source.frames(), {
        ...o,
        task,
        ...(source.envReward ? { envReward: source.envReward } : {}),
        ...(o.onFrame ? { onFrame: o.onFrame } : {}),
        ...(keyFrames ? { onStep: (t: number, f: FrameSet, stage: number | null) => keyFrames.see(t, f, stage) } : {}),
      });
      const files = await writeEpisodeFiles(o.out, score, {
        episode: source.episode,
        label: source.label,
        modelName: model.card.name,
        time: source.time,
        truth: source.truth(),
        plot: o.plots ?? true,
        header,
      });
      keep?.(source, score);
      report = { ...scoredReport({ ...base, wall_s: (performance.now() - t0) / 1000 }, score), files };
    } catch (err) {
      score = null; // a failure after scoring (writing its files) leaves the episode without a section
      report = failedReport({ ...base, task, wall_s: (performance.now() - t0) / 1000 }, err);
    }
    await html?.add(report, score, score ? source.truth().progress : null, keyFrames);
    reports.push(report);
    o.onSource?.(report, source);
  }
  return reports;
}

async function finish(
  out: string,
  reports: EpisodeReport[],
  wallS: number,
  summary: Record<string, unknown>,
  parquet: ProgressFileResult | null,
  html: ScoreHtmlReport,
): Promise<RunResult> {
  const totals = totalsOf(reports, wallS);
  const doc = { ...summary, totals, episodes: reports, ...(parquet ? { parquet } : {}) };
  await writeFileAtomic(join(out, 'summary.json'), `${JSON.stringify(doc, null, 2)}\n`);
  const htmlPath = join(out, 'report.html');
  await writeFileAtomic(htmlPath, html.render(totals, parquet?.path ?? null));
  return { out, reports, totals, parquet, summary: doc, html: htmlPath };
}

/** The options that change the numbers: what every part of a sharded run must agree on (not batch sizes). */
function valueOptions(o: RunOptions, sel: DatasetSelection, viewMap: Record<string, string>): Record<string, unknown> {
  const { batch_frames: _b, encode_batch_images: _e, ...values } = optionsOf(o);
  return { ...values, task: sel.task ?? null, view_map: viewMap };
}

/** Options every episode would fail on are refused once, up front. */
function checkRunOptions(model: ProgressModel, o: RunOptions): void {
  checkSmoothing(o.smoothing);
  if (o.shard) {
    checkShard(o.shard);
    if (o.parquet === false)
      throw new StagewardError(
        'SW_ERR_BAD_OPTION',
        '--shard writes a part of sarm_progress.parquet; it cannot be combined with --no-parquet',
      );
  }
  const needsGrm = (o.dense ?? false) || (o.progress ?? SCORE_OPTION_DEFAULTS.progress) !== 'sarm';
  if (needsGrm && !model.card.grm.present) {
    throw new StagewardError(
      'SW_ERR_BAD_OPTION',
      `${o.dense ? '--dense' : `progress "${o.progress}"`} needs a GRM head, and model ${model.card.name} has none`,
    );
  }
}

function modelInfo(model: ProgressModel): Record<string, unknown> {
  const c = model.card;
  return {
    name: c.name,
    version: c.version,
    views: c.views,
    image: c.image,
    fps: c.fps,
    window: c.window,
    grm: c.grm.present,
    providers: model.providers,
  };
}

/** Score a LeRobot v3.0 dataset's episodes; writes sarm_progress.parquet in its root unless `parquet` is false. */
export async function scoreDataset(model: ProgressModel, ds: LeRobotDataset, sel: DatasetSelection, o: RunOptions): Promise<RunResult> {
  checkRunOptions(model, o);
  const t0 = performance.now();
  const out = resolve(o.out);
  // All sources first, so a bad view map or task fails every shard alike, an empty share included.
  const all = datasetSources(ds, model.card, sel);
  const selection = all.map((s) => s.episode).sort((a, b) => a - b);
  const share = o.shard ? new Set(shardShare(selection, o.shard)) : null;
  const sources = share ? all.filter((s) => share.has(s.episode)) : all;
  o.onPlanned?.(sources.reduce((a, s) => a + s.plannedFrames, 0));
  const header = { model: model.card.name, source: basename(ds.root), fps: ds.fps, ...optionsOf(o) };
  const kept: ScoredEpisodeProgress[] = [];
  const html = o.shard ? null : new ScoreHtmlReport(model.card, ds.root, optionsOf(o));
  const reports = await scoreSources(model, sources, { ...o, out }, header, html, (s, score) => {
    kept.push({
      episode: s.episode,
      index: Array.from({ length: score.frames }, (_, t) => s.globalIndex!(t)),
      sparse: score.sparse,
      dense: score.dense,
      uncertainty: score.uncertainty,
    });
  });
  const viewMap = Object.fromEntries(model.card.views.map((v) => [v, sel.viewMap?.[v] ?? v]));
  const summary = {
    model: modelInfo(model),
    source: { kind: 'dataset', root: ds.root, fps: ds.fps, view_map: viewMap },
    options: optionsOf(o),
    progress_dense: o.dense ? 'GRM head: fused incremental + forward-anchored progress (no goal frames)' : null,
  };
  if (o.shard) {
    const wallS = (performance.now() - t0) / 1000;
    const part = await writeScorePart(
      ds,
      {
        shard: { index: o.shard.index, count: o.shard.count },
        run: {
          dataset: await datasetIdentity(ds),
          model: { name: model.card.name, version: model.card.version, sha256: o.shard.modelSha256 },
          options: valueOptions(o, sel, viewMap),
          selection: formatRanges(selection),
          shards: o.shard.count,
          rule: SHARD_RULE,
        },
        episodes: sources.map((s) => s.episode),
        reports,
        summary,
        wall_s: wallS,
        reward_model_path: o.rewardModelPath ?? null,
      },
      kept,
    );
    return { out, reports, totals: totalsOf(reports, wallS), parquet: null, summary: { ...summary, part }, part };
  }
  const parquet =
    kept.length > 0 && (o.parquet ?? true)
      ? await writeProgressParquet(
          ds,
          kept,
          o.dense ?? false,
          o.rewardModelPath === undefined ? {} : { rewardModelPath: o.rewardModelPath },
        )
      : null;
  return finish(out, reports, (performance.now() - t0) / 1000, summary, parquet, html!);
}

/** Score one set of videos (one file per model view), aligned by timestamp on a timeline at `sel.fps`. */
export async function scoreVideos(model: ProgressModel, sel: VideoSelection, o: RunOptions): Promise<RunResult> {
  checkRunOptions(model, o);
  const t0 = performance.now();
  const out = resolve(o.out);
  const fps = sel.fps ?? model.card.fps;
  const summary = {
    model: modelInfo(model),
    source: {
      kind: 'videos',
      views: sel.views,
      fps,
      alignment: 'timeline t_k = t0 + k/fps; each view contributes its latest frame with pts <= t_k',
    },
    options: optionsOf(o),
  };
  const html = new ScoreHtmlReport(model.card, Object.values(sel.views).join(', '), optionsOf(o));
  let source: ScoreSource;
  try {
    source = await videoSource(model.card, sel);
  } catch (err) {
    const report = failedReport(
      {
        episode: 0,
        label: Object.entries(sel.views)
          .map(([v, p]) => `${v}=${basename(p)}`)
          .join(' '),
        success: null,
        wall_s: 0,
        task: null,
      },
      err,
    );
    o.onSource?.(report, null);
    await html.add(report, null, null, null);
    return finish(out, [report], (performance.now() - t0) / 1000, summary, null, html);
  }
  o.onPlanned?.(source.plannedFrames);
  const reports = await scoreSources(
    model,
    [source],
    { ...o, out },
    { model: model.card.name, source: 'videos', fps, ...optionsOf(o) },
    html,
  );
  return finish(out, reports, (performance.now() - t0) / 1000, summary, null, html);
}
