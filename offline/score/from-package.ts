// Offline scoring from a model package folder (what `stageward score` runs): load the model (on a
// worker thread or the main one), open the dataset or take the videos, pick the output folder, score
// with run.ts, and close the model. Either a dataset or one video per model view.
//
//   const run = await scoreWithPackage({ model: 'models/zoo/pick_place', dataset: 'pp-demo' });
//   const part = await scoreWithPackage({ model: 'models/zoo/pick_place', dataset: 'pp-demo', shard: { index: 1, count: 4 } });
//   assertScored(run); // SW_ERR_* of the first failure when nothing could be scored

import { basename, resolve } from 'node:path';
import { ERROR_CODES, StagewardError, type ErrorCode } from '../../core/errors.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import type { ModelCard } from '../../models/card.ts';
import { loadProgressModel, type InferenceThread } from '../../models/load.ts';
import type { ExecutionProvider } from '../../models/runtime.ts';
import { SCORE_OPTION_DEFAULTS } from './batch-scorer.ts';
import { scoreDataset, scoreVideos, type RunOptions, type RunResult } from './run.ts';
import { modelDigest, type ShardSpec } from './shards.ts';

/** Defaults of a scoring run: the batch scorer's, and where and how the model runs. */
export const SCORE_DEFAULTS = {
  ...SCORE_OPTION_DEFAULTS,
  providers: ['cpu'] as ExecutionProvider[],
  /** ONNX Runtime intra-op threads (0: one per core). */
  threads: 1,
  inferenceThread: 'worker' as InferenceThread,
};

export interface ScorePackageOptions extends Omit<RunOptions, 'out' | 'shard' | 'onPlanned' | 'onFrame' | 'onSource'> {
  /** Model package folder. */
  model: string;
  /** A LeRobot v3.0 dataset folder; or else `views`. */
  dataset?: string;
  /** Model view -> video file, one per view; or else `dataset`. */
  views?: Record<string, string>;
  /** Output folder; default score-<dataset name>, or score-<model name> for videos. */
  out?: string;
  /** The card's task; default a dataset episode's own, or for videos the card's only task. */
  task?: string;
  /** Dataset: model view -> dataset view. */
  viewMap?: Record<string, string>;
  /** Dataset: episode indices; default all. */
  episodes?: number[];
  /** Videos: timeline rate; default the card's fps. */
  fps?: number;
  /** Dataset: score shard I of N's share and write its part for `stageward score merge` (shards.ts). */
  shard?: ShardSpec;
  providers?: ExecutionProvider[];
  threads?: number;
  inferenceThread?: InferenceThread;
}

/** What is about to be scored (after the model loaded and the dataset opened). */
export type ScoreSetup =
  | { kind: 'dataset'; card: ModelCard; root: string; out: string; shard?: ShardSpec }
  | { kind: 'videos'; card: ModelCard; views: Record<string, string>; fps: number; out: string };

export interface ScorePackageHooks extends Pick<RunOptions, 'onPlanned' | 'onFrame' | 'onSource'> {
  /** Something that does not stop the run but may make its numbers mean less. */
  onWarning?: (message: string) => void;
  onSetup?: (setup: ScoreSetup) => void;
  /** Scoring is over (or failed), before the model closes. */
  onScoringEnd?: () => void;
}

export async function scoreWithPackage(o: ScorePackageOptions, hooks: ScorePackageHooks = {}): Promise<RunResult> {
  if ((o.dataset === undefined) === (o.views === undefined)) {
    throw new StagewardError('SW_ERR_BAD_OPTION', 'give either --dataset DIR or one --view VIEW=FILE per model view');
  }
  if (o.shard !== undefined && o.dataset === undefined)
    throw new StagewardError('SW_ERR_BAD_OPTION', "--shard splits a dataset's episodes; it needs --dataset DIR");
  const {
    model: dir,
    dataset,
    views,
    out: outOption,
    task,
    viewMap,
    episodes,
    fps,
    shard,
    providers,
    threads,
    inferenceThread,
    ...scoring
  } = o;
  const model = await loadProgressModel(dir, inferenceThread ?? SCORE_DEFAULTS.inferenceThread, {
    providers: providers ?? SCORE_DEFAULTS.providers,
    intraOpThreads: threads ?? SCORE_DEFAULTS.threads,
  });
  try {
    const card = model.card;
    const common = {
      ...scoring,
      ...(hooks.onPlanned ? { onPlanned: hooks.onPlanned } : {}),
      ...(hooks.onFrame ? { onFrame: hooks.onFrame } : {}),
      ...(hooks.onSource ? { onSource: hooks.onSource } : {}),
    };
    if (dataset !== undefined) {
      const ds = await LeRobotDataset.open(dataset);
      const out = resolve(outOption ?? `score-${basename(ds.root)}`);
      if (ds.fps !== card.fps)
        hooks.onWarning?.(
          `the dataset runs at ${ds.fps} fps and the model was trained at ${card.fps} fps; its window (stride ${card.window.strideFrames} frames) spans a different time here`,
        );
      const unknown = episodes?.filter((i) => !ds.episodes.some((e) => e.index === i)) ?? [];
      if (unknown.length > 0 && unknown.length < (episodes?.length ?? 0))
        hooks.onWarning?.(`the dataset has no episode ${unknown.join(', ')}; scoring the others`);
      const selection = { ...(episodes ? { episodes } : {}), ...(viewMap ? { viewMap } : {}), ...(task !== undefined ? { task } : {}) };
      hooks.onSetup?.({ kind: 'dataset', card, root: ds.root, out, ...(shard ? { shard } : {}) });
      return await scoreDataset(model, ds, selection, {
        ...common,
        out,
        rewardModelPath: dir,
        ...(shard ? { shard: { ...shard, modelSha256: await modelDigest(resolve(dir), card) } } : {}),
      });
    }
    const out = resolve(outOption ?? `score-${card.name}`);
    hooks.onSetup?.({ kind: 'videos', card, views: views!, fps: fps ?? card.fps, out });
    return await scoreVideos(
      model,
      { views: views!, ...(fps !== undefined ? { fps } : {}), ...(task !== undefined ? { task } : {}) },
      { ...common, out },
    );
  } finally {
    hooks.onScoringEnd?.();
    await model.close();
  }
}

/** Throws when nothing could be scored: the first failure's code (SW_ERR_INTERNAL if it has none) and message. */
export function assertScored(result: RunResult): void {
  if (result.totals.scored > 0) return;
  const first = result.reports[0];
  const code = first?.code && Object.hasOwn(ERROR_CODES, first.code) ? (first.code as ErrorCode) : 'SW_ERR_INTERNAL';
  throw new StagewardError(code, `nothing could be scored${first?.message ? `: ${first.message}` : ''}`);
}
