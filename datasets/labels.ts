// Training labels from sparse subtask annotations, pure (datasets/DATASETS.md, "Annotations and
// labels"):
// per frame the stage index k, in-stage progress tau, SARM progress Phi = P_k + a_k * tau with
// dataset priors a_k, and step-wise progress (k + tau) / N where every stage is worth 1/N.
//
// SARM rule (LeRobot `find_stage_and_tau`): for a span [s, e] (inclusive frames) of stage k,
// tau = clip((t - s) / (e - s), 0, 1), and 1 for a one-frame span; before the first span stage 0,
// tau 0; after the last span stage K-1, tau 0.999; in a gap between spans the previous span's stage
// at tau 1. Spans are validated first; missing annotations fail fast (never all-zero targets).

import { cumulativePriors } from '../models/progress.ts';
import type { SubtaskSpan } from './types.ts';
import { StagewardError } from '../core/errors.ts';

/** tau after the last annotated span (LeRobot's value: the episode is done but never "over 1"). */
export const AFTER_LAST_TAU = 0.999;
/** Default floor of each prior before the final renormalisation, so no stage is worth 0. */
export const DEFAULT_PRIOR_FLOOR = 0.01;

export interface StageTargets {
  /** Stage index per frame, into the dataset's ordered stage names. */
  stage: Int32Array;
  /** In-stage progress per frame, in [0, 1]. */
  tau: Float32Array;
}

export interface FrameLabels extends StageTargets {
  /** SARM progress P_k + a_k * tau per frame, in [0, 1]. */
  progressSarm: Float32Array;
  /** Step-wise progress (k + tau) / N per frame, in [0, 1]. */
  progressStep: Float32Array;
}

/**
 * Check spans against an episode of `length` frames and the dataset's `stageNames`: each span in
 * range with start <= end, names known, spans in time order and not overlapping (touching at one
 * frame is allowed, as annotations given in seconds often share a boundary). Repeated names are
 * allowed: a regression revisits an earlier stage. Throws SW_ERR_ANNOTATION_* naming `label`.
 */
export function validateSpans(
  spans: readonly SubtaskSpan[] | null | undefined,
  length: number,
  stageNames: readonly string[],
  label = 'episode',
): void {
  if (!Number.isInteger(length) || length < 1)
    throw new StagewardError('SW_ERR_ANNOTATION_INVALID', `${label}: episode length must be a positive integer, got ${length}`);
  if (stageNames.length === 0) throw new StagewardError('SW_ERR_ANNOTATION_INVALID', `${label}: the dataset declares no stage names`);
  if (!spans || spans.length === 0) {
    throw new StagewardError(
      'SW_ERR_ANNOTATION_MISSING',
      `${label}: no subtask annotations; labels need at least one span over the stages ${stageNames.join(', ')}`,
    );
  }
  let prevEnd = -1;
  spans.forEach((span, i) => {
    const where = `${label}: subtask ${i} ("${span.name}")`;
    if (!stageNames.includes(span.name))
      throw new StagewardError('SW_ERR_ANNOTATION_INVALID', `${where} is not one of the stages ${stageNames.join(', ')}`);
    if (!Number.isInteger(span.start) || !Number.isInteger(span.end))
      throw new StagewardError('SW_ERR_ANNOTATION_INVALID', `${where} has non-integer frames [${span.start}, ${span.end}]`);
    if (span.start < 0 || span.end > length - 1)
      throw new StagewardError(
        'SW_ERR_ANNOTATION_INVALID',
        `${where} spans [${span.start}, ${span.end}], outside the episode's frames [0, ${length - 1}]`,
      );
    if (span.start > span.end)
      throw new StagewardError('SW_ERR_ANNOTATION_INVALID', `${where} starts after it ends: [${span.start}, ${span.end}]`);
    if (span.start < prevEnd)
      throw new StagewardError(
        'SW_ERR_ANNOTATION_INVALID',
        `${where} starts at frame ${span.start}, before the previous subtask ends (${prevEnd}); spans must be in time order`,
      );
    prevEnd = span.end;
  });
}

/** Stage index and tau per frame by the SARM rule. Validates the spans first. */
export function sarmTargets(spans: readonly SubtaskSpan[], length: number, stageNames: readonly string[], label = 'episode'): StageTargets {
  validateSpans(spans, length, stageNames, label);
  const stage = new Int32Array(length);
  const tau = new Float32Array(length);
  const first = spans[0]!;
  const last = spans[spans.length - 1]!;
  let j = 0; // the span at or before frame t
  for (let t = 0; t < length; t++) {
    if (t < first.start) continue; // stage 0, tau 0
    if (t > last.end) {
      stage[t] = stageNames.length - 1;
      tau[t] = AFTER_LAST_TAU;
      continue;
    }
    while (j + 1 < spans.length && spans[j + 1]!.start <= t && t > spans[j]!.end) j++;
    const span = spans[j]!;
    stage[t] = stageNames.indexOf(span.name);
    tau[t] = t > span.end ? 1 : spanTau(t, span.start, span.end); // a gap keeps the previous stage at 1
  }
  return { stage, tau };
}

function spanTau(t: number, start: number, end: number): number {
  if (end <= start) return 1;
  const x = (t - start) / (end - start);
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/** SARM progress Phi = P_k + a_k * tau per frame; `priors` in stage order, summing to 1. */
export function sarmProgressOf(targets: StageTargets, priors: readonly number[]): Float32Array {
  checkPriors(priors);
  const cum = cumulativePriors(priors);
  const out = new Float32Array(targets.stage.length);
  for (let t = 0; t < out.length; t++) {
    const k = targets.stage[t]!;
    if (k < 0 || k >= priors.length)
      throw new StagewardError('SW_ERR_ANNOTATION_INVALID', `stage ${k} at frame ${t} has no prior (${priors.length} stages)`);
    out[t] = Math.min(1, cum[k]! + priors[k]! * targets.tau[t]!);
  }
  return out;
}

/** Step-wise (Robo-Dopamine) progress (k + tau) / N per frame: each of N stages is worth 1/N. */
export function stepProgressOf(targets: StageTargets, stageCount: number): Float32Array {
  if (!Number.isInteger(stageCount) || stageCount < 1)
    throw new StagewardError('SW_ERR_ANNOTATION_INVALID', `stage count must be a positive integer, got ${stageCount}`);
  const out = new Float32Array(targets.stage.length);
  for (let t = 0; t < out.length; t++) out[t] = Math.min(1, (targets.stage[t]! + targets.tau[t]!) / stageCount);
  return out;
}

/** Every label of one episode: stage, tau, SARM progress with `priors`, step-wise progress. */
export function frameLabels(
  spans: readonly SubtaskSpan[],
  length: number,
  stageNames: readonly string[],
  priors: readonly number[],
  label = 'episode',
): FrameLabels {
  if (priors.length !== stageNames.length) {
    throw new StagewardError('SW_ERR_ANNOTATION_INVALID', `${label}: ${priors.length} priors for ${stageNames.length} stages`);
  }
  const targets = sarmTargets(spans, length, stageNames, label);
  return { ...targets, progressSarm: sarmProgressOf(targets, priors), progressStep: stepProgressOf(targets, stageNames.length) };
}

/** How far annotation.true_progress may sit from P_k + a_k * tau of its own stage before truthLabels refuses it. */
export const TRUTH_TOLERANCE = 2e-3;

/**
 * Labels from a simulator's dense per-frame truth (annotation.true_stage, annotation.true_progress)
 * instead of the sparse spans: stage k as given, tau = (progress - P_k) / a_k. The truth must be
 * composed with the same `priors` (a stageward simulator recording writes its task's priors), so
 * every frame is checked; a mismatch is SW_ERR_ANNOTATION_INVALID. Unlike the span rule, tau here
 * stays put while nothing happens: a stalled episode has flat labels.
 */
export function truthLabels(
  stage: ArrayLike<number>,
  progress: ArrayLike<number>,
  stageNames: readonly string[],
  priors: readonly number[],
  label = 'episode',
): FrameLabels {
  const K = stageNames.length;
  if (priors.length !== K) throw new StagewardError('SW_ERR_ANNOTATION_INVALID', `${label}: ${priors.length} priors for ${K} stages`);
  if (stage.length !== progress.length)
    throw new StagewardError(
      'SW_ERR_ANNOTATION_INVALID',
      `${label}: ${stage.length} true stages for ${progress.length} true progress values`,
    );
  const starts = priors.map((_, k) => priors.slice(0, k).reduce((a, b) => a + b, 0));
  const targets: StageTargets = { stage: new Int32Array(stage.length), tau: new Float32Array(stage.length) };
  for (let t = 0; t < stage.length; t++) {
    const k = stage[t]!;
    const p = progress[t]!;
    if (!Number.isInteger(k) || k < 0 || k >= K || !Number.isFinite(p))
      throw new StagewardError(
        'SW_ERR_ANNOTATION_INVALID',
        `${label}: frame ${t} has true stage ${k} and progress ${p}; stages are 0..${K - 1}`,
      );
    const tau = Math.min(1, Math.max(0, (p - starts[k]!) / priors[k]!));
    if (Math.abs(starts[k]! + priors[k]! * tau - p) > TRUTH_TOLERANCE)
      throw new StagewardError(
        'SW_ERR_ANNOTATION_INVALID',
        `${label}: frame ${t}: true progress ${p.toFixed(4)} lies outside stage ${stageNames[k]} [${starts[k]!.toFixed(4)}, ${(starts[k]! + priors[k]!).toFixed(4)}] of the dataset's priors; the truth was composed with other priors`,
      );
    targets.stage[t] = k;
    targets.tau[t] = tau;
  }
  return { ...targets, progressSarm: sarmProgressOf(targets, priors), progressStep: stepProgressOf(targets, K) };
}

export interface AnnotatedEpisode {
  spans: readonly SubtaskSpan[];
  length: number;
  /** Names the episode in errors. */
  label?: string;
}

/**
 * Temporal-proportion priors a_k (SARM eq. 1): per stage, the mean over the episodes where it occurs
 * of (frames in that stage / episode length), renormalised to sum to 1; then each is raised to at
 * least `floor` and the set renormalised again, so no stage is worth 0 (a stage no episode shows
 * gets the floor). Returned in `stageNames` order.
 */
export function temporalProportions(
  episodes: readonly AnnotatedEpisode[],
  stageNames: readonly string[],
  floor = DEFAULT_PRIOR_FLOOR,
): number[] {
  const K = stageNames.length;
  if (K === 0) throw new StagewardError('SW_ERR_ANNOTATION_INVALID', 'no stage names');
  if (!(floor > 0) || floor * K >= 1)
    throw new StagewardError('SW_ERR_ANNOTATION_INVALID', `prior floor must be in (0, 1/${K}), got ${floor}`);
  if (episodes.length === 0) throw new StagewardError('SW_ERR_ANNOTATION_MISSING', 'no annotated episodes to compute stage priors from');
  const sums = new Array<number>(K).fill(0);
  const counts = new Array<number>(K).fill(0);
  episodes.forEach((ep, e) => {
    const label = ep.label ?? `episode ${e}`;
    validateSpans(ep.spans, ep.length, stageNames, label);
    const frames = new Array<number>(K).fill(0);
    for (const s of ep.spans) frames[stageNames.indexOf(s.name)]! += s.end - s.start + 1;
    for (let k = 0; k < K; k++) {
      if (frames[k]! > 0) {
        sums[k]! += frames[k]! / ep.length;
        counts[k]!++;
      }
    }
  });
  const mean = sums.map((s, k) => (counts[k]! > 0 ? s / counts[k]! : 0));
  const total = mean.reduce((a, b) => a + b, 0);
  const normalised = total > 0 ? mean.map((m) => m / total) : mean.map(() => 1 / K);
  const floored = normalised.map((p) => Math.max(p, floor));
  const sum = floored.reduce((a, b) => a + b, 0);
  return floored.map((p) => p / sum);
}

/** Spans covering a whole episode as one stage (LeRobot's single-stage mode: tau = t / (T - 1)). */
export function wholeEpisodeSpan(stageName: string, length: number): SubtaskSpan[] {
  return [{ name: stageName, start: 0, end: length - 1 }];
}

function checkPriors(priors: readonly number[]): void {
  const sum = priors.reduce((a, b) => a + b, 0);
  if (priors.length === 0 || priors.some((p) => !(p >= 0) || !Number.isFinite(p)) || Math.abs(sum - 1) > 1e-4) {
    throw new StagewardError('SW_ERR_ANNOTATION_INVALID', `priors must be non-negative and sum to 1, got [${priors.join(', ')}]`);
  }
}
