// What offline scoring reads: the episodes of a LeRobot v3.0 dataset, or one set of video files (one
// per camera view). Each becomes a `ScoreSource`: frame sets at the model's resolution with the
// card's view names, streamed (ffmpeg decodes at the model size; nothing holds a whole video), plus
// what the outputs need (times, env rewards, global indices, ground truth when the dataset has it).
// Everything that can be checked before decoding is checked here, with stable codes.

import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { knownInstructions, resolveTask } from '../../models/tasks.ts';
import type { ModelCard } from '../../models/card.ts';
import { StagewardError } from '../../core/errors.ts';
import { episodeCardTask, resolveViewMap } from '../eval/evaluate.ts';
import type { FrameSet } from '../../models/preprocess.ts';
import type { EpisodeInfo, LeRobotDataset } from '../../datasets/reader.ts';
import { probeVideo } from '../../datasets/ffmpeg.ts';
import { alignViews } from './align.ts';
import { decodeTimed } from './timed-decode.ts';

export interface ScoreSource {
  /** Dataset episode index (0 for videos). */
  episode: number;
  /** How the outputs name it. */
  label: string;
  /** The card task it is scored as (resolved lazily: an unknown task fails this source only). */
  task: () => string;
  /** Frames expected (for the progress bar); an estimate for videos. */
  plannedFrames: number;
  /** Load what the outputs need (data parquet rows); called before `frames`. */
  prepare: () => Promise<void>;
  /** Frame sets in time order, views named as the card's, at the card's image size. */
  frames: () => AsyncIterable<FrameSet>;
  /** Seconds of frame t (after frames have been produced). */
  time: (t: number) => number;
  /** Env reward of the transition into frame t, when the data has one. */
  envReward?: (t: number) => number;
  /** Global dataset index of frame t (for sarm_progress.parquet). */
  globalIndex?: (t: number) => number;
  success: boolean | null;
  /** The dataset's annotation.true_progress / true_stage, when it has them (after prepare). */
  truth: () => { progress: ArrayLike<number> | null; stage: ArrayLike<number> | null };
}

/** The shortest decimal that reads back as the same float32 (LeRobot stores timestamps as float32). */
export function float32Decimal(x: number): number {
  for (let p = 1; p < 10; p++) {
    const d = Number(x.toPrecision(p));
    if (Math.fround(d) === Math.fround(x)) return d;
  }
  return x;
}

/** The card task an episode is scored as (eval/evaluate.ts episodeCardTask), or SW_ERR_TASK_UNKNOWN. */
export function episodeTask(card: ModelCard, ep: EpisodeInfo, explicit?: string): string {
  const task = episodeCardTask(card, ep, explicit);
  if (task !== undefined) return task;
  const known = knownInstructions(card)
    .map((t) => `"${t}"`)
    .join(', ');
  throw new StagewardError(
    'SW_ERR_TASK_UNKNOWN',
    `episode ${ep.index}'s task ${ep.tasks.map((t) => `"${t.slice(0, 80)}"`).join(', ') || '(none)'} is none of the model's tasks (${known}); pass --task to score it as one of them`,
  );
}

export interface DatasetSelection {
  episodes?: number[];
  /** Card view -> dataset view (name after `observation.images.`); default the same name. */
  viewMap?: Record<string, string>;
  task?: string;
}

/** One source per selected episode. View map and explicit task are checked now, for all episodes at once. */
export function datasetSources(ds: LeRobotDataset, card: ModelCard, sel: DatasetSelection = {}): ScoreSource[] {
  const viewMap = resolveViewMap(card, ds.views, sel.viewMap);
  if (sel.task !== undefined) resolveTask(card, sel.task, { onlyTask: false }, '--task'); // refused now, for every episode at once
  const all = ds.episodes.map((e) => e.index);
  const indices = sel.episodes ? sel.episodes.filter((i) => all.includes(i)) : all;
  if (indices.length === 0)
    throw new StagewardError(
      'SW_ERR_DATASET_EPISODE',
      `none of the listed episodes is in ${ds.root} (it has ${all.length}: ${all[0] ?? '-'}..${all.at(-1) ?? '-'})`,
    );
  const datasetViews = card.views.map((v) => viewMap[v]!);
  const sameStages = (task: string) =>
    card.stages[card.tasks.indexOf(task)]!.map((s) => s.name).join('\u0000') === ds.stageNames.join('\u0000');
  return indices.map((index) => {
    const ep = ds.episode(index);
    let data: Awaited<ReturnType<LeRobotDataset['episodeData']>> | undefined;
    let task: string | undefined;
    const source: ScoreSource = {
      episode: index,
      label: `episode ${index}`,
      task: () => (task ??= episodeTask(card, ep, sel.task)),
      plannedFrames: ep.length,
      prepare: async () => {
        data = await ds.episodeData(index);
      },
      frames: async function* () {
        const sets = ds.frameSets(index, {
          width: card.image.width,
          height: card.image.height,
          resize: card.image.resize,
          views: datasetViews,
        });
        for await (const set of sets) {
          const frames: FrameSet = {};
          for (const v of card.views) frames[v] = set[viewMap[v]!]!;
          yield frames;
        }
      },
      time: (t) => (data ? float32Decimal(data.timestamp[t]!) : t / ds.fps),
      envReward: (t) => (t >= 1 && data?.reward ? data.reward[t - 1]! : 0),
      globalIndex: (t) => {
        const col = data?.columns.index;
        return col ? Number(col[t]) : ep.datasetFrom + t;
      },
      success: ep.success,
      truth: () => ({
        progress: data?.trueProgress ?? null,
        stage: data?.trueStage && sameStages(source.task()) ? data.trueStage : null,
      }),
    };
    return source;
  });
}

export interface VideoSelection {
  /** Card view -> video file. */
  views: Record<string, string>;
  /** Timeline rate in frames per second; default the card's fps. */
  fps?: number;
  task?: string;
}

/** The card task a set of videos is scored as: --task (an id or an instruction), or the card's only task. */
export function videoTask(card: ModelCard, explicit?: string): string {
  if (explicit !== undefined) return resolveTask(card, explicit, { onlyTask: false }, '--task').task;
  return resolveTask(card, undefined, {}, '--task').task;
}

/** Check the view names against the card: every card view needs a video, and no other view may be named. */
export function checkVideoViews(card: ModelCard, views: Record<string, string>): void {
  for (const v of Object.keys(views)) {
    if (!card.views.includes(v))
      throw new StagewardError('SW_ERR_VIEW_UNKNOWN', `--view ${v}=...: "${v}" is not one of the model's views (${card.views.join(', ')})`);
  }
  const missing = card.views.filter((v) => views[v] === undefined);
  if (missing.length > 0) {
    throw new StagewardError(
      'SW_ERR_VIEW_MISSING',
      `no video for the model's view${missing.length > 1 ? 's' : ''} ${missing.map((v) => `"${v}"`).join(', ')}; give one per view: ${card.views.map((v) => `--view ${v}=FILE`).join(' ')}`,
    );
  }
}

/**
 * One source for a set of videos, aligned on a timeline at `fps` (align.ts). Each file is probed
 * first, so a missing or unreadable file fails here with SW_ERR_FFMPEG, naming it.
 */
export async function videoSource(card: ModelCard, sel: VideoSelection): Promise<ScoreSource> {
  const task = videoTask(card, sel.task);
  checkVideoViews(card, sel.views);
  const fps = sel.fps ?? card.fps;
  let shortest = Infinity;
  for (const v of card.views) {
    const path = sel.views[v]!;
    try {
      await stat(path);
    } catch {
      throw new StagewardError('SW_ERR_FFMPEG', `cannot read video ${path} (view "${v}"): no such file`);
    }
    const info = await probeVideo(path).catch((err: unknown) => {
      throw new StagewardError('SW_ERR_FFMPEG', `cannot read video ${path} (view "${v}"): ${(err as Error).message}`);
    });
    if (info.durationSeconds > 0) shortest = Math.min(shortest, info.durationSeconds);
  }
  const times: number[] = [];
  return {
    episode: 0,
    label: card.views.map((v) => `${v}=${basename(sel.views[v]!)}`).join(' '),
    task: () => task,
    plannedFrames: Number.isFinite(shortest) ? Math.max(1, Math.round(shortest * fps)) : 1,
    prepare: async () => {},
    frames: async function* () {
      const size = { width: card.image.width, height: card.image.height, resize: card.image.resize };
      const streams = Object.fromEntries(card.views.map((v) => [v, decodeTimed(sel.views[v]!, size)]));
      for await (const step of alignViews(streams, fps)) {
        times.push(step.timeSeconds);
        yield step.frames;
      }
    },
    time: (t) => times[t] ?? t / fps,
    success: null,
    truth: () => ({ progress: null, stage: null }),
  };
}
