// Offline evaluation of a progress model on annotated LeRobot episodes, through the serving path:
// each episode's frames go step by step, causally, through a fresh `RewardEngine` episode, exactly as
// a client would send them (frames decoded at the model's image size, the card's views mapped to the
// dataset's). The metrics are defined below; metrics.ts computes them.
//
// Per episode:
//   voc_plus        Spearman(predicted SARM progress, frame index) of the episode in order (ideal 1)
//   voc_minus       the same frames fed REVERSED into a new engine episode, Spearman against the
//                   reversed stream's own step index (ideal -1; an "always more progress" model gets +1)
//   stage_accuracy  per-frame predicted stage (argmax) vs the annotated stage
//   progress_mae    mean |predicted SARM progress - label|
//   label_voc_plus  VOC of the annotated progress itself: the ceiling of voc_plus on an episode whose
//                   true progress goes back (a drop, a regrasp); 1 on a clean demonstration
//   grm_*           the same for GRM's fused progress (incremental + forward perspectives; no goal
//                   frames are given, so the backward-anchored perspective is off)
// Labels: the dataset's subtask spans turned into per-frame stage and SARM progress by datasets/labels.ts
// with the MODEL CARD's stage names and priors (the same priors the engine composes its prediction
// with), so the MAE measures the model, not a disagreement of priors. Episodes without annotations
// get null accuracy/MAE.
// On-policy (on-policy.ts), against the simulator's per-frame annotation.true_progress where the
// dataset has it (a `sim record` dataset; null elsewhere): progress_pearson, delta_pearson_1s,
// stall_drift_per_s, false_high_rate, uncertainty_auroc, uncertainty_mean, per episode and pooled
// over all episodes in the aggregate.
// Aggregate (`aggregate`): VOC+ and VOC- are means over episodes whose outcome is not a failure
// (success true, or unknown: a dataset without a success column is taken as demonstrations); VOC- is
// run only for those. Accuracy and MAE are frame-weighted over every annotated episode. AUROC
// separates the final progress of successful from failed episodes (null unless both occur).

import { matchTask, resolveTask as resolveCardTask } from '../../models/tasks.ts';
import { RewardEngine, type SmoothingOption } from '../../models/engine.ts';
import { StagewardError } from '../../core/errors.ts';
import { accuracy, auroc, mean, meanAbsoluteError, valueOrderCorrelation, weightedMean } from './metrics.ts';
import type { ModelCard } from '../../models/card.ts';
import type { ProgressModel } from '../../models/package.ts';
import type { FrameSet } from '../../models/preprocess.ts';
import type { RawImage } from '../../core/image.ts';
import type { EpisodeInfo, LeRobotDataset } from '../../datasets/reader.ts';
import { frameLabels } from '../../datasets/labels.ts';
import { NO_ON_POLICY, onPolicyMetrics, type OnPolicyMetrics, type OnPolicySeries } from './on-policy.ts';

/** What a model predicted for one stream of frames, one entry per step, in stream order. */
export interface ProgressTrace {
  /** SARM progress Phi in [0, 1]. */
  sarm: number[];
  /** Predicted stage index (argmax), into the task's stages. */
  stage: number[];
  /** GRM fused progress in [0, 1], or null when the model has no GRM head. */
  grm: number[] | null;
  /** The model's per-step uncertainty, or null when the package reports none. */
  uncertainty: number[] | null;
}

/** Called after each step of a stream with the step's index, its frame set and the predicted stage. */
export type StepObserver = (t: number, frames: FrameSet, stage: number) => void;

/** Runs one stream of frame sets through a fresh causal episode. */
export type TraceRunner = (frames: AsyncIterable<FrameSet> | Iterable<FrameSet>, observe?: StepObserver) => Promise<ProgressTrace>;

/** Per-frame labels of one episode (card stage indices, SARM progress with the card's priors). */
export interface EpisodeLabels {
  stage: ArrayLike<number>;
  progress: ArrayLike<number>;
}

export interface EpisodeScores extends OnPolicyMetrics {
  voc_plus: number;
  /** VOC of the label sequence (null without labels). */
  label_voc_plus: number | null;
  /** The labels never decrease (a demonstration without regressions); null without labels. */
  labels_monotone: boolean | null;
  /** null when the reversed stream was not run (failed episodes). */
  voc_minus: number | null;
  stage_accuracy: number | null;
  progress_mae: number | null;
  final_progress: number;
  grm_voc_plus: number | null;
  grm_voc_minus: number | null;
  grm_progress_mae: number | null;
  grm_final_progress: number | null;
}

export interface EpisodeRow extends EpisodeScores {
  /** Index of the dataset among those evaluated together. */
  dataset: number;
  episode: number;
  /** The card's task id the episode ran under. */
  task: string;
  success: boolean | null;
  frames: number;
}

export interface AggregateMetrics extends OnPolicyMetrics {
  episodes: number;
  frames: number;
  successful: number;
  failed: number;
  unknown_outcome: number;
  voc_plus: number | null;
  voc_minus: number | null;
  /** The same VOC of the annotated progress: what a perfect model would score on these episodes. */
  label_voc_plus: number | null;
  /** VOC+ / VOC- over the ordered episodes whose labels never go back (clean demonstrations). */
  voc_plus_monotone: number | null;
  voc_minus_monotone: number | null;
  monotone_episodes: number;
  stage_accuracy: number | null;
  progress_mae: number | null;
  auroc: number | null;
  grm_voc_plus: number | null;
  grm_voc_minus: number | null;
  grm_progress_mae: number | null;
  grm_auroc: number | null;
}

/** One evaluated episode with its per-frame series, handed to `onEpisode` (e.g. to plot it). */
export interface EpisodeResult {
  row: EpisodeRow;
  stageNames: string[];
  forward: ProgressTrace;
  labels: EpisodeLabels | null;
}

export interface EvaluateOptions {
  model: ProgressModel;
  dataset: LeRobotDataset;
  /**
   * The engine's causal smoothing of Phi (default none). With one, the SARM series scored is the
   * smoothed progress and the GRM head is not run (its fused progress would be smoothed into it).
   */
  smoothing?: SmoothingOption;
  /** The card's task id for every episode; default per episode: its recorded task id, the card's only task, or the task whose stages match the dataset's. */
  task?: string;
  /** Episode indices; default all. */
  episodes?: number[];
  /** Card view -> dataset view (the name after `observation.images.`); unmapped views keep their name. */
  viewMap?: Record<string, string>;
  /** Recorded in each row's `dataset`; default 0. */
  datasetIndex?: number;
  /**
   * Card views scored as missing: the engine fills them as the card's `missing_views` says (black),
   * so the metrics measure what a robot without those cameras gets. Default none.
   */
  fill?: string[];
  /** Called after every engine step (forward and reversed streams). */
  onStep?: () => void;
  /** Called after each step of an episode's forward stream: its index, the step's frame set and predicted stage (report key frames). */
  onForwardStep?: (episode: number, t: number, frames: FrameSet, stage: number) => void;
  onEpisode?: (result: EpisodeResult) => void | Promise<void>;
}

export interface EvaluationResult {
  rows: EpisodeRow[];
  /** Per row: the series the on-policy metrics pool, or null (no true progress in the dataset). */
  series: (OnPolicySeries | null)[];
  metrics: AggregateMetrics;
}

/** Whether an episode's reversed stream is scored (VOC-): every episode that is not a known failure. */
export function scoresReversed(success: boolean | null): boolean {
  return success !== false;
}

/** Engine steps an evaluation of `episodes` runs: each episode once, plus once reversed where VOC- applies. */
export function plannedSteps(dataset: LeRobotDataset, episodes: readonly number[] = dataset.episodes.map((e) => e.index)): number {
  return episodes.reduce((sum, i) => {
    const ep = dataset.episode(i);
    return sum + ep.length * (scoresReversed(ep.success) ? 2 : 1);
  }, 0);
}

/** A `TraceRunner` over the engine: progress "both" when the model has GRM, no goal frames, no shaping. */
export function engineRunner(
  engine: RewardEngine,
  task: string,
  onStep?: () => void,
  smoothing?: SmoothingOption,
  fill: readonly string[] = [],
): TraceRunner {
  const smoothed = smoothing !== undefined && smoothing.kind !== 'none';
  const useGrm = engine.card.grm.present && !smoothed;
  return async (frames, observe) => {
    const episode = await engine.start({
      task,
      gamma: 1,
      shaping: 'sparse',
      progress: useGrm ? 'both' : 'sarm',
      ...(smoothed ? { smoothing } : {}),
      ...(fill.length > 0 ? { fill: [...fill] } : {}),
    });
    const trace: ProgressTrace = { sarm: [], stage: [], grm: useGrm ? [] : null, uncertainty: null };
    const uncertainty: number[] = [];
    try {
      for await (const f of frames) {
        const r = await episode.step({ frames: f });
        trace.sarm.push(smoothed ? r.progress : r.heads.sarm);
        trace.stage.push(r.stage.index);
        trace.grm?.push(r.heads.grm!);
        if (r.uncertainty !== null) uncertainty.push(r.uncertainty);
        observe?.(trace.stage.length - 1, f, r.stage.index);
        onStep?.();
      }
    } finally {
      await episode.end();
    }
    if (uncertainty.length > 0) trace.uncertainty = uncertainty;
    return trace;
  };
}

/**
 * Scores of one episode from its forward trace, its reversed trace (or null), its labels (or null)
 * and its on-policy series (or null: no true progress). Pure.
 */
export function scoreEpisode(
  forward: ProgressTrace,
  reversed: ProgressTrace | null,
  labels: EpisodeLabels | null,
  series: OnPolicySeries | null = null,
): EpisodeScores {
  const n = forward.sarm.length;
  if (n === 0) throw new RangeError('scoreEpisode: empty trace');
  if (labels && (labels.stage.length !== n || labels.progress.length !== n)) {
    throw new RangeError(`scoreEpisode: ${n} predictions but ${labels.stage.length} labels`);
  }
  if (reversed && reversed.sarm.length !== n)
    throw new RangeError(`scoreEpisode: reversed trace has ${reversed.sarm.length} steps, forward ${n}`);
  const grm = forward.grm;
  return {
    voc_plus: valueOrderCorrelation(forward.sarm),
    label_voc_plus: labels ? valueOrderCorrelation(labels.progress) : null,
    labels_monotone: labels ? Array.from(labels.progress).every((p, i, a) => i === 0 || p >= a[i - 1]!) : null,
    voc_minus: reversed ? valueOrderCorrelation(reversed.sarm) : null,
    stage_accuracy: labels ? accuracy(forward.stage, labels.stage) : null,
    progress_mae: labels ? meanAbsoluteError(forward.sarm, labels.progress) : null,
    final_progress: forward.sarm[n - 1]!,
    grm_voc_plus: grm ? valueOrderCorrelation(grm) : null,
    grm_voc_minus: grm && reversed?.grm ? valueOrderCorrelation(reversed.grm) : null,
    grm_progress_mae: grm && labels ? meanAbsoluteError(grm, labels.progress) : null,
    grm_final_progress: grm ? grm[n - 1]! : null,
    ...(series ? onPolicyMetrics([series]) : NO_ON_POLICY),
  };
}

type NullableKey = { [K in keyof EpisodeRow]: EpisodeRow[K] extends number | null ? K : never }[keyof EpisodeRow];

function present(rows: readonly EpisodeRow[], key: NullableKey): { values: number[]; frames: number[] } {
  const values: number[] = [];
  const frames: number[] = [];
  for (const r of rows) {
    const v = r[key];
    if (v !== null) {
      values.push(v);
      frames.push(r.frames);
    }
  }
  return { values, frames };
}

function separation(rows: readonly EpisodeRow[], key: 'final_progress' | 'grm_final_progress'): number | null {
  const pos: number[] = [];
  const neg: number[] = [];
  for (const r of rows) {
    const v = r[key];
    if (v === null || r.success === null) continue;
    (r.success ? pos : neg).push(v);
  }
  return auroc(pos, neg);
}

/**
 * Aggregate metrics over episode rows (from one or several datasets) and, aligned with them, their
 * on-policy series (null entries and a missing list count as no true progress). Pure.
 */
export function aggregate(rows: readonly EpisodeRow[], series: readonly (OnPolicySeries | null)[] = []): AggregateMetrics {
  const withTruth = series.filter((s): s is OnPolicySeries => s !== null);
  const ordered = rows.filter((r) => scoresReversed(r.success));
  const monotone = ordered.filter((r) => r.labels_monotone === true);
  const meanOf = (rs: readonly EpisodeRow[], key: NullableKey) => mean(present(rs, key).values);
  const frameWeighted = (key: NullableKey) => {
    const p = present(rows, key);
    return weightedMean(p.values, p.frames);
  };
  return {
    episodes: rows.length,
    frames: rows.reduce((a, r) => a + r.frames, 0),
    successful: rows.filter((r) => r.success === true).length,
    failed: rows.filter((r) => r.success === false).length,
    unknown_outcome: rows.filter((r) => r.success === null).length,
    voc_plus: meanOf(ordered, 'voc_plus'),
    voc_minus: meanOf(ordered, 'voc_minus'),
    label_voc_plus: meanOf(ordered, 'label_voc_plus'),
    voc_plus_monotone: meanOf(monotone, 'voc_plus'),
    voc_minus_monotone: meanOf(monotone, 'voc_minus'),
    monotone_episodes: monotone.length,
    stage_accuracy: frameWeighted('stage_accuracy'),
    progress_mae: frameWeighted('progress_mae'),
    auroc: separation(rows, 'final_progress'),
    grm_voc_plus: meanOf(ordered, 'grm_voc_plus'),
    grm_voc_minus: meanOf(ordered, 'grm_voc_minus'),
    grm_progress_mae: frameWeighted('grm_progress_mae'),
    grm_auroc: separation(rows, 'grm_final_progress'),
    ...(withTruth.length ? onPolicyMetrics(withTruth) : NO_ON_POLICY),
  };
}

/** Card view -> dataset view for every card view; checks both sides. */
export function resolveViewMap(
  card: ModelCard,
  datasetViews: readonly string[],
  viewMap: Record<string, string> = {},
  /** Card views filled by the engine (EpisodeOptions.fill): they read no dataset view. */
  filled: readonly string[] = [],
): Record<string, string> {
  for (const v of Object.keys(viewMap)) {
    if (!card.views.includes(v))
      throw new StagewardError(
        'SW_ERR_VIEW_UNKNOWN',
        `view map names "${v}", which is not one of the model's views (${card.views.join(', ')})`,
      );
  }
  const out: Record<string, string> = {};
  for (const v of card.views) {
    if (filled.includes(v)) continue;
    const d = viewMap[v] ?? v;
    if (!datasetViews.includes(d)) {
      throw new StagewardError(
        'SW_ERR_DATASET_VIEW',
        `the model's view "${v}" reads dataset view "${d}", which the dataset lacks (it has ${datasetViews.join(', ') || 'none'}); map views with viewMap / --view-map ${v}=<dataset view>`,
      );
    }
    out[v] = d;
  }
  return out;
}

/**
 * The card task an episode names (models/tasks.ts), as `score` and `eval` both read it: --task (an
 * id or an instruction; SW_ERR_TASK_UNKNOWN when it names none), else the episode's own task strings
 * by id or instruction, else its recorded task id, else a one-task model's task; undefined when none.
 */
export function episodeCardTask(card: ModelCard, ep: EpisodeInfo, explicit?: string): string | undefined {
  if (explicit !== undefined) return resolveCardTask(card, explicit, { onlyTask: false }, '--task').task;
  for (const text of ep.tasks) {
    const own = matchTask(card, text, { onlyTask: false });
    if (own !== undefined) return own.task;
  }
  const recorded = ep.meta?.task_id;
  if (typeof recorded === 'string' && card.tasks.includes(recorded)) return recorded;
  return card.tasks.length === 1 ? card.tasks[0]! : undefined;
}

/** The card task an episode runs under (see EvaluateOptions.task): episodeCardTask, else the task whose stages match the dataset's. */
export function resolveTask(card: ModelCard, dataset: LeRobotDataset, ep: EpisodeInfo, explicit?: string): string {
  const known = card.tasks.map((t) => `"${t}"`).join(', ');
  const task = episodeCardTask(card, ep, explicit);
  if (task !== undefined) return task;
  const names = dataset.stageNames.join('\u0000');
  const match = card.tasks.filter((_, i) => card.stages[i]!.map((s) => s.name).join('\u0000') === names);
  if (match.length === 1) return match[0]!;
  throw new StagewardError(
    'SW_ERR_TASK_UNKNOWN',
    `episode ${ep.index} of ${dataset.root}: cannot tell which of the model's tasks (${known}) it is; name one (--task)`,
  );
}

/** Per-frame labels with the card's stage names and priors, or null when the episode has no annotations. */
export function episodeLabels(ep: EpisodeInfo, card: ModelCard, task: string, where: string): EpisodeLabels | null {
  if (ep.subtasks === null || ep.subtasks.length === 0) return null;
  const stages = card.stages[card.tasks.indexOf(task)]!;
  const l = frameLabels(
    ep.subtasks,
    ep.length,
    stages.map((s) => s.name),
    stages.map((s) => s.prior),
    `${where} episode ${ep.index}`,
  );
  return { stage: l.stage, progress: l.progressSarm };
}

/** Rename a dataset frame set's views to the card's, optionally keeping each set in `keep`. */
async function* cardFrames(
  sets: AsyncIterable<Record<string, RawImage>>,
  viewMap: Record<string, string>,
  keep: FrameSet[] | null,
): AsyncGenerator<FrameSet> {
  for await (const set of sets) {
    const frames: FrameSet = {};
    for (const [cardView, dsView] of Object.entries(viewMap)) frames[cardView] = set[dsView]!;
    keep?.push(frames);
    yield frames;
  }
}

/**
 * Evaluate `model` on `dataset`'s episodes through the engine. Everything is checked (views, tasks,
 * annotations) before the first frame is decoded.
 */
export async function evaluateModel(o: EvaluateOptions): Promise<EvaluationResult> {
  const card = o.model.card;
  const ds = o.dataset;
  const engine = new RewardEngine(o.model);
  const fill = o.fill ?? [];
  const viewMap = resolveViewMap(card, ds.views, o.viewMap, fill);
  const datasetViews = Object.values(viewMap);
  const indices = o.episodes ?? ds.episodes.map((e) => e.index);
  const plan = indices.map((index) => {
    const ep = ds.episode(index);
    const task = resolveTask(card, ds, ep, o.task);
    return { ep, task, labels: episodeLabels(ep, card, task, ds.root) };
  });
  const rows: EpisodeRow[] = [];
  const series: (OnPolicySeries | null)[] = [];
  for (const { ep, task, labels } of plan) {
    const run = engineRunner(engine, task, o.onStep, o.smoothing, fill);
    const reversedToo = scoresReversed(ep.success);
    const kept: FrameSet[] | null = reversedToo ? [] : null;
    const sets = ds.frameSets(ep.index, {
      width: card.image.width,
      height: card.image.height,
      resize: card.image.resize,
      views: datasetViews,
    });
    const observe = o.onForwardStep && ((t: number, f: FrameSet, stage: number) => o.onForwardStep!(ep.index, t, f, stage));
    const forward = await run(cardFrames(sets, viewMap, kept), observe);
    const reversed = kept ? await run(kept.reverse()) : null;
    const truth = (await ds.episodeData(ep.index)).trueProgress;
    const s: OnPolicySeries | null =
      truth && truth.length === forward.sarm.length ? { phi: forward.sarm, truth, uncertainty: forward.uncertainty, fps: ds.fps } : null;
    const row: EpisodeRow = {
      dataset: o.datasetIndex ?? 0,
      episode: ep.index,
      task,
      success: ep.success,
      frames: forward.sarm.length,
      ...scoreEpisode(forward, reversed, labels, s),
    };
    rows.push(row);
    series.push(s);
    await o.onEpisode?.({ row, stageNames: card.stages[card.tasks.indexOf(task)]!.map((s) => s.name), forward, labels });
  }
  return { rows, series, metrics: aggregate(rows, series) };
}
