// Training bundle export: a LeRobot dataset (v3.0 or v2.1, through reader.ts) -> the folder of .npy arrays plus bundle.json that
// the PyTorch trainer (models/train/) reads. Frames are decoded per episode and view, resized with
// the server's own preprocessing (models/preprocess.ts, sharp), and streamed into frames.npy after
// its header, so a large dataset never sits in memory. Labels follow labels.ts (SARM rule). The
// bundle's files are listed in datasets/DATASETS.md, "Training bundle".
//
//   frames.npy          uint8   [N, V, H, W, 3]   views in bundle.json "views" order
//   episode_index.npy   int64   [N]               dataset episode index per frame
//   frame_index.npy     int64   [N]               frame within its episode
//   task_index.npy      int64   [N]               index into bundle.json "tasks"
//   stage.npy           int64   [N]               stage index into bundle.json "stages"
//   tau.npy             float32 [N]               in-stage progress in [0, 1]
//   progress_sarm.npy   float32 [N]               P_k + a_k * tau with the stage priors
//   progress_step.npy   float32 [N]               (k + tau) / K, each stage worth 1/K
//   success.npy         uint8   [E]               per exported episode (1 = success)
//   bundle.json         header: format 1, views, task(s), stages with priors, fps, image, episodes

import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResizeMode } from '../models/card.ts';
import { encodeNpy, type NpyArray } from './npy.ts';
import { DEFAULT_PREPROCESS_LIMITS, preprocessInto } from '../models/preprocess.ts';
import {
  frameLabels,
  truthLabels,
  temporalProportions,
  wholeEpisodeSpan,
  DEFAULT_PRIOR_FLOOR,
  AFTER_LAST_TAU,
  type FrameLabels,
} from './labels.ts';
import type { SubtaskSpan } from './types.ts';
import { StagewardError } from '../core/errors.ts';
import { LeRobotDataset, type EpisodeInfo } from './reader.ts';
import { subtasksOrNull } from './episode-info.ts';
import { checkTarget, commitStaging, makeStaging, removeStaging } from '../core/files.ts';

export const BUNDLE_FORMAT = 1;
export const SINGLE_STAGE_NAME = 'task';

export interface BundleOptions {
  /** Square image side in pixels (default 96); or give height and width. */
  size?: number;
  height?: number;
  width?: number;
  /** How frames of another aspect ratio are fitted (default stretch), as the model card's image.resize. */
  resize?: ResizeMode;
  /** Dataset episode indices to export (default all), in the order given. */
  episodes?: number[];
  /** Views to export (default all the dataset's, in info.json order). */
  views?: string[];
  /** The views' names in bundle.json, one per `views` entry (default: the dataset's names); a model card's view names. */
  viewNames?: string[];
  /**
   * The stage list and priors of the bundle's task (default: the dataset's, from its annotations and
   * priors file). For one task of a multi-task dataset, whose stages and priors are that task's own.
   */
  stages?: { name: string; prior: number }[];
  overwrite?: boolean;
  /**
   * A dataset with no subtask annotations at all: 'error' (default) refuses it; 'single-stage' labels
   * every episode as one stage "task" with tau = t / (T - 1) (LeRobot's single_stage mode). An episode
   * missing annotations in an annotated dataset is always an error.
   */
  missingAnnotations?: 'error' | 'single-stage';
  /** Floor for priors computed here (when the dataset has no temporal_proportions_sparse.json). */
  priorFloor?: number;
  /**
   * Where the labels come from: 'spans' (default; the SARM rule over the subtask annotations, tau
   * growing with time inside a span) or 'truth' (annotation.true_stage / annotation.true_progress,
   * the simulator's state-based truth: labelsOf truthLabels).
   */
  labels?: BundleLabelSource;
  /** Called as frames are written, with the time steps done so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

export type BundleLabelSource = 'spans' | 'truth';
export const BUNDLE_LABEL_SOURCES: readonly BundleLabelSource[] = ['spans', 'truth'];

export interface BundleEpisode {
  index: number;
  length: number;
  success: boolean | null;
  /** First row of this episode in the [N] arrays. */
  offset: number;
  task_index: number;
}

export interface BundleHeader {
  format: number;
  views: string[];
  task: string;
  task_id: number | null;
  tasks: string[];
  stages: { name: string; prior: number }[];
  priors_source: 'dataset' | 'computed' | 'single-stage' | 'given';
  fps: number;
  image: { height: number; width: number; resize: ResizeMode };
  frames: number;
  episodes: BundleEpisode[];
  labels: { rule: 'sarm' | 'truth'; after_last_tau: number; success_unknown_as: 1 };
  arrays: Record<string, { dtype: string; shape: number[] }>;
  source: { path: string; codebase_version: string; robot_type: string | null; total_episodes: number };
}

interface Planned {
  ep: EpisodeInfo;
  labels: FrameLabels;
  offset: number;
  taskIndex: number;
}

/** Export `datasetDir` as a training bundle in `outDir` (replaced only with overwrite). */
export async function exportBundle(datasetDir: string, outDir: string, options: BundleOptions = {}): Promise<BundleHeader> {
  const height = options.height ?? options.size ?? 96;
  const width = options.width ?? options.size ?? 96;
  if (![height, width].every((n) => Number.isInteger(n) && n >= 1 && n <= 4096))
    throw new StagewardError('SW_ERR_DATASET_SPEC', `bundle image size must be integers in [1, 4096], got ${height}x${width}`);
  const resize = options.resize ?? 'stretch';
  const ds = await LeRobotDataset.open(datasetDir);
  const views = options.views ?? ds.views;
  if (views.length === 0) throw new StagewardError('SW_ERR_DATASET_VIEW', `${ds.root} has no camera (video or image) features to export`);
  for (const v of views)
    if (!ds.views.includes(v))
      throw new StagewardError('SW_ERR_DATASET_VIEW', `no view "${v}"; the dataset's views are ${ds.views.join(', ')}`);
  const viewNames = options.viewNames ?? views;
  if (viewNames.length !== views.length || new Set(viewNames).size !== viewNames.length || viewNames.some((n) => n === ''))
    throw new StagewardError('SW_ERR_DATASET_VIEW', `bundle view names must be ${views.length} distinct non-empty names, one per view`);
  const episodes = (options.episodes ?? ds.episodes.map((e) => e.index)).map((i) => ds.episode(i));
  if (episodes.length === 0) throw new StagewardError('SW_ERR_DATASET_EPISODE', 'no episodes to export');

  // Labels first, for every episode: bad or missing annotations fail before any decoding.
  const { stageNames, priors, source } = options.stages
    ? { stageNames: options.stages.map((s) => s.name), priors: options.stages.map((s) => s.prior), source: 'given' as const }
    : stagesAndPriors(ds, options);
  const tasks = [...new Set(episodes.map((e) => e.tasks[0] ?? ''))];
  const plan: Planned[] = [];
  let N = 0;
  const labelSource = options.labels ?? 'spans';
  for (const ep of episodes) {
    let labels: FrameLabels;
    if (labelSource === 'truth') {
      const data = await ds.episodeData(ep.index);
      if (data.trueStage === null || data.trueProgress === null)
        throw new StagewardError(
          'SW_ERR_ANNOTATION_MISSING',
          `episode ${ep.index} has no annotation.true_stage / annotation.true_progress (${ds.root}); --labels truth needs a simulator recording`,
        );
      labels = truthLabels(data.trueStage, data.trueProgress, stageNames, priors, `episode ${ep.index}`);
    } else {
      const spans: SubtaskSpan[] | null = source === 'single-stage' ? wholeEpisodeSpan(SINGLE_STAGE_NAME, ep.length) : ep.subtasks;
      if (spans === null)
        throw new StagewardError('SW_ERR_ANNOTATION_MISSING', `episode ${ep.index} has no subtask annotations (${ds.root})`);
      labels = frameLabels(spans, ep.length, stageNames, priors, `episode ${ep.index}`);
    }
    plan.push({
      ep,
      labels,
      offset: N,
      taskIndex: tasks.indexOf(ep.tasks[0] ?? ''),
    });
    N += ep.length;
  }

  await checkTarget(outDir, options.overwrite ?? false, 'bundle');
  const staging = await makeStaging(outDir);
  try {
    await writeFrames(join(staging, 'frames.npy'), ds, plan, views, { height, width, resize }, N, options.onProgress);
    const perFrame = <T extends NpyArray['data']>(make: (n: number) => T, fill: (p: Planned, t: number) => number | bigint): T => {
      const out = make(N);
      for (const p of plan) for (let t = 0; t < p.ep.length; t++) (out as unknown as (number | bigint)[])[p.offset + t] = fill(p, t);
      return out;
    };
    const arrays: Record<string, NpyArray> = {
      episode_index: {
        dtype: 'int64',
        shape: [N],
        data: perFrame(
          (n) => new BigInt64Array(n),
          (p) => BigInt(p.ep.index),
        ),
      },
      frame_index: {
        dtype: 'int64',
        shape: [N],
        data: perFrame(
          (n) => new BigInt64Array(n),
          (_, t) => BigInt(t),
        ),
      },
      task_index: {
        dtype: 'int64',
        shape: [N],
        data: perFrame(
          (n) => new BigInt64Array(n),
          (p) => BigInt(p.taskIndex),
        ),
      },
      stage: {
        dtype: 'int64',
        shape: [N],
        data: perFrame(
          (n) => new BigInt64Array(n),
          (p, t) => BigInt(p.labels.stage[t]!),
        ),
      },
      tau: {
        dtype: 'float32',
        shape: [N],
        data: perFrame(
          (n) => new Float32Array(n),
          (p, t) => p.labels.tau[t]!,
        ),
      },
      progress_sarm: {
        dtype: 'float32',
        shape: [N],
        data: perFrame(
          (n) => new Float32Array(n),
          (p, t) => p.labels.progressSarm[t]!,
        ),
      },
      progress_step: {
        dtype: 'float32',
        shape: [N],
        data: perFrame(
          (n) => new Float32Array(n),
          (p, t) => p.labels.progressStep[t]!,
        ),
      },
      success: { dtype: 'uint8', shape: [plan.length], data: Uint8Array.from(plan, (p) => (p.ep.success === false ? 0 : 1)) },
    };
    for (const [name, arr] of Object.entries(arrays)) await writeFile(join(staging, `${name}.npy`), encodeNpy(arr));
    const header: BundleHeader = {
      format: BUNDLE_FORMAT,
      views: viewNames,
      task: tasks[0]!,
      task_id: ds.tasks.indexOf(tasks[0]!) >= 0 ? ds.tasks.indexOf(tasks[0]!) : null,
      tasks,
      stages: stageNames.map((name, k) => ({ name, prior: priors[k]! })),
      priors_source: source,
      fps: ds.fps,
      image: { height, width, resize },
      frames: N,
      episodes: plan.map((p) => ({
        index: p.ep.index,
        length: p.ep.length,
        success: p.ep.success,
        offset: p.offset,
        task_index: p.taskIndex,
      })),
      labels: { rule: labelSource === 'truth' ? 'truth' : 'sarm', after_last_tau: AFTER_LAST_TAU, success_unknown_as: 1 },
      arrays: {
        frames: { dtype: 'uint8', shape: [N, views.length, height, width, 3] },
        ...Object.fromEntries(Object.entries(arrays).map(([k, a]) => [k, { dtype: a.dtype, shape: a.shape }])),
      },
      source: {
        path: ds.root,
        codebase_version: ds.info.codebase_version,
        robot_type: ds.info.robot_type,
        total_episodes: ds.episodes.length,
      },
    };
    await writeFile(join(staging, 'bundle.json'), JSON.stringify(header, null, 2));
    await commitStaging(staging, outDir, options.overwrite ?? false, 'bundle');
    return header;
  } catch (err) {
    await removeStaging(staging);
    throw err;
  }
}

function stagesAndPriors(
  ds: LeRobotDataset,
  options: BundleOptions,
): { stageNames: string[]; priors: number[]; source: BundleHeader['priors_source'] } {
  // Episodes whose annotations cannot be read are left out of the priors here; an exported one fails
  // with its own error when its labels are made.
  const annotated = ds.episodes.filter((e) => (subtasksOrNull(e)?.length ?? 0) > 0);
  if (annotated.length === 0) {
    if ((options.missingAnnotations ?? 'error') === 'single-stage')
      return { stageNames: [SINGLE_STAGE_NAME], priors: [1], source: 'single-stage' };
    for (const e of ds.episodes) if (subtasksOrNull(e) === null) void e.subtasks; // unreadable annotations say why, not "missing"
    throw new StagewardError(
      'SW_ERR_ANNOTATION_MISSING',
      `${ds.root} has no subtask annotations (sparse_subtask_* columns); annotate it, or export with missingAnnotations: 'single-stage'`,
    );
  }
  const stageNames = ds.stageNames;
  if (ds.priors !== null && ds.priors.length === stageNames.length) {
    const sum = ds.priors.reduce((a, b) => a + b, 0);
    if (sum > 0) return { stageNames, priors: ds.priors.map((p) => p / sum), source: 'dataset' };
  }
  const priors = temporalProportions(
    annotated.map((e) => ({ spans: subtasksOrNull(e)!, length: e.length, label: `episode ${e.index}` })),
    stageNames,
    options.priorFloor ?? DEFAULT_PRIOR_FLOOR,
  );
  return { stageNames, priors, source: 'computed' };
}

/** Stream every planned episode's frames, all views per time step, into one .npy after its header. */
async function writeFrames(
  path: string,
  ds: LeRobotDataset,
  plan: Planned[],
  views: string[],
  target: { height: number; width: number; resize: ResizeMode },
  N: number,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  const frameBytes = target.height * target.width * 3;
  const stepBytes = frameBytes * views.length;
  const header = encodeNpy({ dtype: 'uint8', shape: [N, views.length, target.height, target.width, 3], data: new Uint8Array(0) });
  const fh = await open(path, 'w');
  try {
    await fh.write(header);
    const STEPS_PER_WRITE = Math.max(1, Math.floor((4 << 20) / stepBytes));
    let buf = new Uint8Array(stepBytes * STEPS_PER_WRITE);
    let filled = 0;
    let written = 0;
    for (const { ep } of plan) {
      let t = 0;
      for await (const set of ds.frameSets(ep.index, { views })) {
        await Promise.all(
          views.map((v, i) =>
            preprocessInto(
              set[v]!,
              target,
              buf,
              filled * stepBytes + i * frameBytes,
              DEFAULT_PREPROCESS_LIMITS,
              `episode ${ep.index} view "${v}" frame ${t}`,
            ),
          ),
        );
        t++;
        if (++filled === STEPS_PER_WRITE) {
          await fh.write(buf);
          written += filled;
          onProgress?.(written, N);
          buf = new Uint8Array(buf.length);
          filled = 0;
        }
      }
    }
    if (filled > 0) await fh.write(buf.subarray(0, filled * stepBytes));
    written += filled;
    onProgress?.(written, N);
    if (written !== N) throw new StagewardError('SW_ERR_DATASET_FORMAT', `wrote ${written} frames, expected ${N}`);
  } finally {
    await fh.close();
  }
}
