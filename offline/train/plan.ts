// `stageward train --dataset`: what a model trained on LeRobot datasets must be, read off the
// datasets themselves. Pure apart from the datasets already opened: views from the camera features
// (optionally chosen and renamed), tasks from the tasks table with their instructions, one stage list
// and priors per task from the SARM annotations, the window's stride in seconds turned into frames at
// the datasets' fps. The result is the trainer's model config (models/train/configs/default.json's
// shape) and one training bundle per (dataset, task) to export.

import { echo, StagewardError } from '../../core/errors.ts';
import { DEFAULT_PRIOR_FLOOR, temporalProportions } from '../../datasets/labels.ts';
import { subtasksOrNull } from '../../datasets/episode-info.ts';
import type { LeRobotDataset } from '../../datasets/reader.ts';
import type { SubtaskSpan } from '../../datasets/types.ts';
import { videoKey, viewOfKey } from '../../datasets/format.ts';

/** The prefix LeRobot puts before a camera's name in its feature keys. */
/** Longest task id made from an instruction. */
export const TASK_ID_MAX = 48;

/** One card view: its name in the model card and the dataset camera (name after `observation.images.`) it reads. */
export interface ViewChoice {
  name: string;
  camera: string;
}

/** The fields of a trainer config this plan does not derive: image, feature size, window length, heads, architecture. */
export interface BaseConfig {
  name: string;
  version: string;
  image: { height: number; width: number; resize: string };
  feature_dim: number;
  window: { length: number; stride_frames: number; include_initial: boolean };
  fps: number;
  progress: unknown;
  grm: unknown;
  architecture?: Record<string, unknown>;
}

export interface PlanOptions {
  /** Views to train on, renamed (default: every camera of the first dataset, under its own name). */
  views?: ViewChoice[];
  /** Seconds between the window's past frames (default: the base config's stride_frames / fps). */
  strideSeconds?: number;
  name?: string;
  version?: string;
  /** Extra `architecture` fields (e.g. a frozen backbone) over the base config's. */
  architecture?: Record<string, unknown>;
}

export interface PlannedBundle {
  /** Index into the datasets given. */
  dataset: number;
  /** Task id in the config. */
  task: string;
  instruction: string;
  /** Dataset episode indices of this task. */
  episodes: number[];
  stages: { name: string; prior: number }[];
  /** Where the stages' priors came from. */
  priorsFrom: 'dataset' | 'annotations';
}

export interface TrainingPlan {
  /** The trainer's model config (ModelConfig.from_dict's input). */
  config: Record<string, unknown>;
  views: ViewChoice[];
  bundles: PlannedBundle[];
}

/** `top=observation.images.top,wrist=cam_wrist` -> view choices (the prefix is optional; `top` alone keeps the name). */
export function parseViewChoices(text: string): ViewChoice[] {
  const choices = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((item) => {
      const eq = item.indexOf('=');
      const name = eq < 0 ? item : item.slice(0, eq).trim();
      const camera = viewOfKey(eq < 0 ? item : item.slice(eq + 1).trim());
      return { name: viewOfKey(name), camera };
    });
  if (choices.length === 0) throw new StagewardError('SW_ERR_DATASET_SPEC', '--views: give at least one view, as name=camera');
  for (const c of choices)
    if (c.name === '' || c.camera === '')
      throw new StagewardError('SW_ERR_DATASET_SPEC', `--views: ${echo(`${c.name}=${c.camera}`)} needs a name and a camera`);
  const dup = choices.map((c) => c.name).find((n, i, all) => all.indexOf(n) !== i);
  if (dup !== undefined) throw new StagewardError('SW_ERR_DATASET_SPEC', `--views: the view name ${echo(dup)} is given twice`);
  return choices;
}

/** A task id from its instruction: lower case, runs of other characters as `_`, at most TASK_ID_MAX long. */
export function taskIdOf(instruction: string): string {
  const id = instruction
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, TASK_ID_MAX)
    .replace(/_+$/, '');
  return id === '' ? 'task' : id;
}

/** How to add the annotations a dataset lacks; part of every "no annotations" refusal. */
export const ANNOTATE_HINT =
  "add SARM subtask annotations with LeRobot's annotation tool (its subtask_annotation script), " +
  'or by hand: write keyframes per episode in a small CSV or JSON file and run `stageward annotate --dataset DIR --from FILE`';

/** Plan a model and its bundles from `datasets` (opened, in the order given) over the base config. */
export function planTraining(datasets: readonly LeRobotDataset[], base: BaseConfig, options: PlanOptions = {}): TrainingPlan {
  if (datasets.length === 0) throw new StagewardError('SW_ERR_DATASET_SPEC', 'no datasets to train on');
  const fps = datasets[0]!.fps;
  for (const ds of datasets)
    if (Math.abs(ds.fps - fps) > 1e-6)
      throw new StagewardError(
        'SW_ERR_DATASET_SPEC',
        `${ds.root} runs at ${ds.fps} fps and ${datasets[0]!.root} at ${fps} fps; one model's window strides assume one fps`,
      );
  const views = options.views ?? datasets[0]!.views.map((v) => ({ name: v, camera: v }));
  if (views.length === 0) throw new StagewardError('SW_ERR_DATASET_VIEW', `${datasets[0]!.root} has no camera features`);
  for (const ds of datasets)
    for (const v of views)
      if (!ds.views.includes(v.camera))
        throw new StagewardError(
          'SW_ERR_DATASET_VIEW',
          `${ds.root} has no camera ${echo(v.camera)}; its cameras are ${ds.views.map(videoKey).join(', ')}`,
        );

  // Task ids: one per distinct instruction, over every dataset, in order of first use; one bundle per (dataset, task).
  const idOf = new Map<string, string>();
  const parts: Part[] = [];
  datasets.forEach((ds, d) => {
    const byTask = new Map<string, number[]>();
    for (const ep of ds.episodes) {
      const instruction = ep.tasks[0] ?? '';
      byTask.set(instruction, [...(byTask.get(instruction) ?? []), ep.index]);
    }
    for (const [instruction, episodes] of byTask) {
      if (!idOf.has(instruction)) {
        let id = taskIdOf(instruction);
        for (let n = 2; [...idOf.values()].includes(id); n++) id = `${taskIdOf(instruction).slice(0, TASK_ID_MAX - 3)}_${n}`;
        idOf.set(instruction, id);
      }
      parts.push({
        dataset: d,
        ds,
        task: idOf.get(instruction)!,
        instruction,
        episodes,
        onlyTask: byTask.size === 1,
        ...annotatedOf(ds, episodes),
      });
    }
  });
  const stagesByTask = new Map<
    string,
    { stages: { name: string; prior: number }[]; priorsFrom: PlannedBundle['priorsFrom']; instruction: string }
  >();
  for (const task of new Set(parts.map((p) => p.task))) {
    const mine = parts.filter((p) => p.task === task);
    stagesByTask.set(task, { ...taskStages(mine), instruction: mine[0]!.instruction });
  }
  const bundles: PlannedBundle[] = parts.map((p) => ({
    dataset: p.dataset,
    task: p.task,
    instruction: p.instruction,
    episodes: p.episodes,
    stages: stagesByTask.get(p.task)!.stages,
    priorsFrom: stagesByTask.get(p.task)!.priorsFrom,
  }));

  const strideSeconds = options.strideSeconds ?? base.window.stride_frames / base.fps;
  const tasks = [...stagesByTask.keys()];
  const config: Record<string, unknown> = {
    name: options.name ?? base.name,
    version: options.version ?? base.version,
    views: views.map((v) => v.name),
    image: base.image,
    feature_dim: base.feature_dim,
    window: { ...base.window, stride_frames: Math.max(1, Math.round(strideSeconds * fps)) },
    fps,
    tasks,
    instructions: Object.fromEntries(tasks.map((t) => [t, [stagesByTask.get(t)!.instruction]])),
    stages: Object.fromEntries(tasks.map((t) => [t, stagesByTask.get(t)!.stages])),
    progress: base.progress,
    grm: base.grm,
    ...(base.architecture || options.architecture ? { architecture: { ...base.architecture, ...options.architecture } } : {}),
  };
  return { config, views, bundles };
}

/** One task's episodes in one dataset, with their annotations. */
interface Part {
  dataset: number;
  ds: LeRobotDataset;
  task: string;
  instruction: string;
  episodes: number[];
  /** The dataset holds this task alone (its priors file is then this task's). */
  onlyTask: boolean;
  annotated: { spans: SubtaskSpan[]; length: number; label: string }[];
  /** Stage names in order: the dataset's priors file's order when it names them all, else first seen. */
  order: string[];
}

/** The episodes' annotations, refusing episodes without any (with the ways to add them). */
function annotatedOf(ds: LeRobotDataset, episodes: number[]): Pick<Part, 'annotated' | 'order'> {
  const eps = episodes.map((i) => ds.episode(i)).map((ep) => ({ ep, spans: subtasksOrNull(ep) }));
  const missing = eps.filter((a) => a.spans === null || a.spans.length === 0).map((a) => a.ep.index);
  if (missing.length === eps.length)
    throw new StagewardError(
      'SW_ERR_ANNOTATION_MISSING',
      `${ds.root} has no subtask annotations for task ${echo(ds.episode(episodes[0]!).tasks[0] ?? '')} ` +
        `(no sparse_subtask_*, subtask_* or dense_subtask_* annotations on its ${episodes.length} episode(s)); ${ANNOTATE_HINT}`,
    );
  if (missing.length > 0)
    throw new StagewardError(
      'SW_ERR_ANNOTATION_MISSING',
      `${ds.root}: ${missing.length} of ${eps.length} episodes have no subtask annotations ` +
        `(episodes ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}); ${ANNOTATE_HINT}`,
    );
  const seen = [...new Set(eps.flatMap((a) => a.spans!.map((s) => s.name)))];
  const inFile = ds.priors !== null && seen.every((n) => ds.stageNames.includes(n));
  return {
    annotated: eps.map((a) => ({ spans: a.spans!, length: a.ep.length, label: `${ds.root} episode ${a.ep.index}` })),
    order: inFile ? [...ds.stageNames] : seen,
  };
}

/** Whether `sub` is `full` with some names left out, in the same order. */
function isSubsequence(sub: readonly string[], full: readonly string[]): boolean {
  let i = 0;
  for (const n of full) if (n === sub[i]) i++;
  return i === sub.length;
}

/**
 * A task's stages: the longest stage list of its parts (failed episodes may never reach the last
 * stages; every other part's list must be that one with stages left out, in order), and its priors:
 * the dataset's priors file when one dataset holds the task alone and the file names exactly these
 * stages, else the mean shares over every annotated episode of the task.
 */
function taskStages(parts: readonly Part[]): { stages: { name: string; prior: number }[]; priorsFrom: PlannedBundle['priorsFrom'] } {
  const full = parts.map((p) => p.order).reduce((a, b) => (b.length > a.length ? b : a));
  for (const p of parts)
    if (!isSubsequence(p.order, full)) {
      const other = parts.find((q) => q.order === full)!;
      throw new StagewardError(
        'SW_ERR_ANNOTATION_INVALID',
        `task ${echo(p.instruction)} has stages [${full.join(', ')}] in ${other.ds.root} but [${p.order.join(', ')}] in ${p.ds.root}`,
      );
    }
  const only = parts.length === 1 ? parts[0]! : null;
  if (only && only.onlyTask && only.ds.priors !== null && only.ds.stageNames.join('\0') === full.join('\0')) {
    const sum = only.ds.priors.reduce((a, b) => a + b, 0);
    if (sum > 0) return { stages: full.map((name, k) => ({ name, prior: only.ds.priors![k]! / sum })), priorsFrom: 'dataset' };
  }
  const priors = temporalProportions(
    parts.flatMap((p) => p.annotated),
    full,
    DEFAULT_PRIOR_FLOOR,
  );
  return { stages: full.map((name, k) => ({ name, prior: priors[k]! })), priorsFrom: 'annotations' };
}
