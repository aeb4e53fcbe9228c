// Behaviour-cloning samples from a LeRobot v3.0 dataset: one (observation.state, action) pair per
// frame, joined with a per-frame weight (RA-BC weights from `rabc_weights.parquet`, or 1). The
// dataset is read once (`readBcDataset`); weights are applied afterwards (`applyWeights`, pure), so
// one read serves plain BC, RA-BC from a model's progress and RA-BC from the true progress alike.
//
//   const data = await readBcDataset(await LeRobotDataset.open('pp-demo'), { episodes: [0, 1, 2] });
//   const weights = await readSampleWeights('pp-demo/rabc_weights.parquet', data);
//   const { samples } = applyWeights(data, weights);
//   const fit = fitBehaviourCloning(data.task, samples, { ridge: 1e-4 });

import { StagewardError } from '../../core/errors.ts';
import type { LeRobotDataset } from '../../datasets/reader.ts';
import { readRabcWeights } from '../../offline/rabc/files.ts';
import { getTask, isTaskId, TASK_IDS } from '../../sim/tasks/index.ts';
import { stateNames, type TaskId } from '../../sim/tasks/task.ts';
import type { BcSample } from './bc.ts';
import { ACTION_DIM } from './linear-policy.ts';

export interface BcEpisode {
  /** episode_index in the dataset. */
  index: number;
  /** Global index of its frame 0 (dataset_from_index). */
  datasetFrom: number;
  length: number;
  /** Offset of its frame 0 in `BcDataset.samples`. */
  first: number;
  /** The simulator's per-frame true progress (annotation.true_progress), or null for other datasets. */
  trueProgress: Float32Array | null;
  /** The simulator seed and the scripted expert's flaws, when the dataset is stageward's. */
  seed: number | null;
  flaws: string[] | null;
}

export interface BcDataset {
  root: string;
  task: TaskId;
  /** Every episode index of the dataset (a selection may read fewer). */
  datasetEpisodes: number[];
  /** The episodes read, in order. */
  episodes: BcEpisode[];
  /** One sample per frame of the episodes read, episode after episode, all with weight 1. */
  samples: BcSample[];
}

export interface ReadBcOptions {
  /** Episode indices to read (default all). */
  episodes?: readonly number[];
  /** The simulator task; default: from the episodes' recorded task id, else their task string. */
  task?: TaskId;
  /** Called after each episode is read (for a progress bar). */
  onEpisode?: (done: number, total: number) => void;
}

/** Per episode_index: per-frame weights, optionally with the global index of each frame to check against the dataset. */
export interface EpisodeWeightsLike {
  weight: ArrayLike<number>;
  index?: ArrayLike<number>;
}

/** The simulator task a dataset's episodes were recorded for (one task per dataset). */
export function datasetTask(ds: LeRobotDataset, episodes: readonly number[]): TaskId {
  const found = new Set<TaskId>();
  for (const i of episodes) {
    const ep = ds.episode(i);
    const recorded = ep.meta?.task_id;
    if (typeof recorded === 'string' && isTaskId(recorded)) {
      found.add(recorded);
      continue;
    }
    const byText = TASK_IDS.find((id) => ep.tasks.includes(getTask(id).instruction));
    if (byText === undefined) {
      throw new StagewardError(
        'SW_ERR_TASK_UNKNOWN',
        `episode ${i} of ${ds.root} is "${ep.tasks.join('; ')}", not a simulator task's instruction; name the task with --task (${TASK_IDS.join(', ')})`,
      );
    }
    found.add(byText);
  }
  if (found.size > 1)
    throw new StagewardError(
      'SW_ERR_TASK_UNKNOWN',
      `${ds.root} mixes the tasks ${[...found].join(', ')}; a policy serves one task: select its episodes with --episodes`,
    );
  const [task] = found;
  if (task === undefined) throw new StagewardError('SW_ERR_DATASET_EPISODE', `${ds.root}: no episode selected`);
  return task;
}

/** Read observation.state and action of every frame of the selected episodes. */
export async function readBcDataset(ds: LeRobotDataset, opts: ReadBcOptions = {}): Promise<BcDataset> {
  const all = ds.episodes.map((e) => e.index);
  const wanted = opts.episodes ?? all;
  const unknown = wanted.filter((i) => !all.includes(i));
  if (unknown.length > 0) {
    throw new StagewardError(
      'SW_ERR_DATASET_EPISODE',
      `${ds.root} has no episode ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? ', ...' : ''} (it has ${all.length}, indices ${all[0] ?? '-'}..${all.at(-1) ?? '-'})`,
    );
  }
  for (const key of ['observation.state', 'action']) {
    if (ds.info.features[key] === undefined) {
      throw new StagewardError(
        'SW_ERR_DATASET_FORMAT',
        `${ds.root} has no "${key}" feature (meta/info.json); behaviour cloning needs observation.state and action per frame`,
      );
    }
  }
  const task = opts.task ?? datasetTask(ds, wanted);
  const stateDim = stateNames(getTask(task)).length;
  const episodes: BcEpisode[] = [];
  const samples: BcSample[] = [];
  for (const i of wanted) {
    const info = ds.episode(i);
    const data = await ds.episodeData(i);
    if (data.state === null || data.action === null) {
      throw new StagewardError(
        'SW_ERR_DATASET_FORMAT',
        `episode ${i} of ${ds.root} lacks the ${data.state === null ? 'observation.state' : 'action'} column; behaviour cloning needs observation.state and action per frame`,
      );
    }
    const badState = data.state.findIndex((s) => s.length !== stateDim);
    if (badState >= 0) {
      throw new StagewardError(
        'SW_ERR_DATASET_FORMAT',
        `episode ${i} frame ${badState}: observation.state has ${data.state[badState]!.length} numbers, a ${task} state has ${stateDim} (${stateNames(getTask(task)).join(', ')})`,
      );
    }
    const badAction = data.action.findIndex((a) => a.length !== ACTION_DIM);
    if (badAction >= 0)
      throw new StagewardError(
        'SW_ERR_DATASET_FORMAT',
        `episode ${i} frame ${badAction}: action has ${data.action[badAction]!.length} numbers, the simulator's has ${ACTION_DIM} (ee dx, dy, dz, gripper)`,
      );
    const first = samples.length;
    for (let t = 0; t < data.state.length; t++) samples.push({ state: data.state[t]!, action: data.action[t]!, weight: 1 });
    const seed = info.meta?.seed;
    const flaws = info.meta?.flaws;
    episodes.push({
      index: i,
      datasetFrom: info.datasetFrom,
      length: data.state.length,
      first,
      trueProgress: data.trueProgress,
      seed: typeof seed === 'number' ? seed : null,
      flaws: Array.isArray(flaws) ? flaws.map(String) : null,
    });
    opts.onEpisode?.(episodes.length, wanted.length);
  }
  return { root: ds.root, task, datasetEpisodes: all, episodes, samples };
}

export interface WeightedSamples {
  samples: BcSample[];
  /** Samples whose weight came from the weights (the rest got 1). */
  weighted: number;
  missing: number;
  /** Mean weight over all samples, and the share with a weight below 1 / equal to 0. */
  meanWeight: number;
  shareBelowOne: number;
  shareZero: number;
}

/**
 * The samples of `data` with per-frame weights; frames without one get 1. Throws
 * SW_ERR_DATASET_FORMAT when the weights belong to another dataset (an episode it lacks, more
 * frames than the episode has, a global index that disagrees) or a weight is not a finite number >= 0.
 */
export function applyWeights(data: BcDataset, weights: ReadonlyMap<number, EpisodeWeightsLike>, source = 'the weights'): WeightedSamples {
  const bad = (msg: string) => new StagewardError('SW_ERR_DATASET_FORMAT', `${source}: ${msg}`);
  const foreign = [...weights.keys()].filter((e) => !data.datasetEpisodes.includes(e));
  if (foreign.length > 0)
    throw bad(`weights for episode(s) ${foreign.slice(0, 10).join(', ')} that ${data.root} does not have; are they another dataset's?`);
  const samples = data.samples.map((s) => ({ ...s, weight: 1 }));
  let weighted = 0;
  for (const ep of data.episodes) {
    const w = weights.get(ep.index);
    if (w === undefined) continue;
    if (w.weight.length > ep.length) throw bad(`episode ${ep.index} has ${w.weight.length} weights but ${ep.length} frames`);
    for (let t = 0; t < w.weight.length; t++) {
      const idx = w.index?.[t];
      if (idx !== undefined && !Number.isNaN(idx) && idx !== ep.datasetFrom + t) {
        throw bad(
          `episode ${ep.index} frame ${t} has index ${idx}, but the dataset holds that frame at index ${ep.datasetFrom + t}; are they another dataset's?`,
        );
      }
      const v = w.weight[t]!;
      if (!Number.isFinite(v) || v < 0) throw bad(`episode ${ep.index} frame ${t} has weight ${v}; weights are finite numbers >= 0`);
      samples[ep.first + t]!.weight = v;
      weighted++;
    }
  }
  const n = samples.length;
  const sum = samples.reduce((a, s) => a + s.weight, 0);
  return {
    samples,
    weighted,
    missing: n - weighted,
    meanWeight: n ? sum / n : 0,
    shareBelowOne: n ? samples.filter((s) => s.weight < 1).length / n : 0,
    shareZero: n ? samples.filter((s) => s.weight === 0).length / n : 0,
  };
}

/** Read an RA-BC weights parquet (`stageward rabc` writes `rabc_weights.parquet`) for `applyWeights`. */
export async function readSampleWeights(path: string): Promise<Map<number, EpisodeWeightsLike>> {
  return readRabcWeights(path);
}

/** Per-episode weight arrays (e.g. `rabcWeights(...).weights`) keyed by the episodes' indices. */
export function weightsByEpisode(
  episodes: readonly Pick<BcEpisode, 'index'>[],
  weights: readonly ArrayLike<number>[],
): Map<number, EpisodeWeightsLike> {
  if (weights.length !== episodes.length)
    throw new StagewardError('SW_ERR_RABC_OPTION', `${weights.length} weight arrays for ${episodes.length} episodes`);
  return new Map(episodes.map((e, i) => [e.index, { weight: weights[i]! }]));
}
