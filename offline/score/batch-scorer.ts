// Offline scoring of one stream of frame sets (one episode), in batches, with the online engine's
// numbers. Frames arrive one time step at a time (decoded by ffmpeg, never the whole video in
// memory) and are scored in chunks of `batchFrames` time steps:
//
//   1. encode: the chunk's frames that some scored window reads (all of them unless --stride) go
//      through the encoder in calls of `encodeBatchImages` images ([n*V, H, W, 3] -> [n*V, D]);
//   2. heads: the SARM windows of the chunk's scored frames in ONE call ([B, T, V, D]), and, when GRM
//      progress is wanted, the GRM pairs of every frame of the chunk in ONE call;
//   3. engine: a real engine Episode (models/engine.ts) steps through the chunk frame by frame with a
//      ReplayModel behind it that returns those batched results, so progress, stage, tau and the
//      shaped reward come from the engine's own code (bit-identical to RewardEngine.step and to the
//      server for the same frames: ONNX Runtime's CPU kernels give each row the same bits whatever
//      the batch, which test/offline/score checks; an ensemble's `uncertainty` too, models/PACKAGE.md).
//
// The next chunk is read while one is computing (the encoder may run on a worker thread). Features
// are kept for frame 0 and the last frames a window can reach, as the engine's own cache does.
// `--stride N` (see stride.ts): SARM on every N-th frame and the last; the frames between get linearly
// interpolated progress, the stage and tau of the scored frame before them, and shaped rewards
// recomputed from the interpolated progress (models/shaping.ts). With `smoothing`, progress and reward
// are the engine's smoothed ones (models/SHAPING.md, "Smoothing"); a strided run smooths the
// interpolated series the same way, frame by frame.

import { performance } from 'node:perf_hooks';
import {
  RewardEngine,
  checkSmoothing,
  type Episode,
  type ProgressSource,
  type SmoothingOption,
  type StepResult,
} from '../../models/engine.ts';
import { StagewardError } from '../../core/errors.ts';
import type { GrmBatch, ProgressModel, SarmBatch } from '../../models/package.ts';
import { checkViews, DEFAULT_PREPROCESS_LIMITS, preprocessInto, type FrameSet, type PreprocessLimits } from '../../models/preprocess.ts';
import { smoothProgress, type Composition, type ProgressSmoothing } from '../../models/progress.ts';
import { SHAPING_MODES, shapedReward, type ShapingConfig, type ShapingMode } from '../../models/shaping.ts';
import { framesRetained, windowIndices } from '../../models/window.ts';
import { ReplayModel, type ReplayStep } from './replay-model.ts';
import { frameNeeded, holdUnscored, interpolateUnscored, isScored, windowLookback } from './stride.ts';

export interface ScoreOptions {
  /** One of the model card's tasks. */
  task: string;
  /** Score every `stride`-th frame and the last; interpolate the rest. Default 1 (every frame). */
  stride?: number;
  /** Time steps per batch: one SARM call and one GRM call per batch. Default 32. */
  batchFrames?: number;
  /**
   * Most images per encoder call (a batch's images go in calls of this many). Default 12: on CPU a
   * small convolutional encoder is fastest per image in small batches, whose activations stay in
   * cache (96x96, 1 thread: ~3600 images/s at 3-12 per call, ~2300 at 96).
   */
  encodeBatchImages?: number;
  /** Which head gives `progress` and the shaped reward (as the engine's `progress`). Default "sarm". */
  progress?: ProgressSource;
  /** Also compute GRM fused progress (`dense`); needs a GRM head. Default false. */
  dense?: boolean;
  /** Shaping of the `reward` column. Default "pbrs". */
  shaping?: ShapingMode;
  /** The learner's discount for pbrs. Default 0.99. */
  gamma?: number;
  /** SARM composition; default the card's. */
  composition?: Composition;
  /** Causal smoothing of `progress` (and so of the reward), as the engine's option; default none. */
  smoothing?: SmoothingOption;
  /** Env reward of the transition into frame t (t >= 1); default 0. */
  envReward?: (t: number) => number;
  limits?: PreprocessLimits;
  /** Called once per frame as its row is final (progress bars). */
  onFrame?: () => void;
  /**
   * Called once per frame after the engine stepped it, in time order, with its frame set and predicted
   * stage; the stage is null on an interpolated frame of a strided run (it keeps the one before). The
   * HTML report takes its key frames here (offline/eval/key-frames.ts).
   */
  onStep?: (t: number, frames: FrameSet, stage: number | null) => void;
}

export const DEFAULT_BATCH_FRAMES = 32;
export const DEFAULT_ENCODE_BATCH_IMAGES = 12;

/** Where the time of one episode went, in ms (wait: waiting for decoded frames). */
export interface ScoreTiming {
  wait_ms: number;
  preprocess_ms: number;
  encode_ms: number;
  heads_ms: number;
  engine_ms: number;
  /** Frames sent through the encoder, and SARM windows run. */
  encoded_frames: number;
  sarm_windows: number;
}

/** Per-frame scores of one episode, index = frame. */
export interface EpisodeScore {
  frames: number;
  task: string;
  stageNames: string[];
  /** The SARM head ran on this frame (always true without a stride). */
  scored: boolean[];
  /** Phi from the chosen source, smoothed when the run smooths: what the shaped reward is built on. */
  progress: number[];
  /** SARM progress. */
  sparse: number[];
  /** GRM fused progress, whenever GRM ran (--dense, or progress "grm"/"both"); else null. */
  dense: number[] | null;
  /**
   * The SARM head's uncertainty (StepResult.uncertainty), when the package's SARM graph has that
   * output; else null. Interpolated between scored frames of a strided run, as `sparse` is.
   */
  uncertainty: number[] | null;
  stage: number[];
  tau: number[];
  envReward: number[];
  /** Shaped reward (engine semantics: frame 0 carries the env reward alone). */
  reward: number[];
  timing: ScoreTiming;
}

interface Resolved {
  task: string;
  stride: number;
  batchFrames: number;
  encodeBatchImages: number;
  source: ProgressSource;
  dense: boolean;
  grm: boolean;
  shaping: ShapingConfig;
  composition: Composition | undefined;
  smoothing: ProgressSmoothing;
  limits: PreprocessLimits;
  envReward: (t: number) => number;
}

/** What a scoring run assumes for an option it is not given (offline scoring's one set of defaults). */
export const SCORE_OPTION_DEFAULTS = {
  stride: 1,
  progress: 'sarm' as ProgressSource,
  shaping: 'pbrs' as ShapingMode,
  gamma: 0.99,
};

function resolve(model: ProgressModel, o: ScoreOptions): Resolved {
  const bad = (m: string): never => {
    throw new StagewardError('SW_ERR_BAD_OPTION', m);
  };
  const stride = o.stride ?? SCORE_OPTION_DEFAULTS.stride;
  const batchFrames = o.batchFrames ?? DEFAULT_BATCH_FRAMES;
  if (!Number.isInteger(stride) || stride < 1) bad('`stride` must be an integer >= 1');
  if (!Number.isInteger(batchFrames) || batchFrames < 1 || batchFrames > 4096) bad('`batchFrames` must be an integer in [1, 4096]');
  const encodeBatchImages = o.encodeBatchImages ?? DEFAULT_ENCODE_BATCH_IMAGES;
  if (!Number.isInteger(encodeBatchImages) || encodeBatchImages < 1 || encodeBatchImages > 65536)
    bad('`encodeBatchImages` must be an integer in [1, 65536]');
  const source = o.progress ?? SCORE_OPTION_DEFAULTS.progress;
  const dense = o.dense ?? false;
  if (dense && !model.card.grm.present) bad(`dense progress needs a GRM head, and model ${model.card.name} has none`);
  const shaping = o.shaping ?? SCORE_OPTION_DEFAULTS.shaping;
  if (!SHAPING_MODES.includes(shaping)) bad(`\`shaping\` must be one of ${SHAPING_MODES.join(', ')}`);
  const gamma = o.gamma ?? SCORE_OPTION_DEFAULTS.gamma;
  return {
    task: o.task,
    stride,
    batchFrames,
    encodeBatchImages,
    source,
    dense,
    grm: dense || source !== 'sarm',
    shaping: { mode: shaping, gamma, scale: 1, transform: { kind: 'identity' } },
    composition: o.composition,
    smoothing: checkSmoothing(o.smoothing),
    limits: o.limits ?? DEFAULT_PREPROCESS_LIMITS,
    envReward: o.envReward ?? (() => 0),
  };
}

interface Runner {
  replay: ReplayModel;
  episode: Episode;
}

/** Score one episode's frame sets (views named as the card's, any size the engine accepts). */
export async function scoreFrames(
  model: ProgressModel,
  frames: AsyncIterable<FrameSet> | Iterable<FrameSet>,
  options: ScoreOptions,
): Promise<EpisodeScore> {
  const r = resolve(model, options);
  const card = model.card;
  const taskIndex = card.tasks.indexOf(r.task);
  const startOptions = {
    task: r.task,
    gamma: r.shaping.gamma,
    shaping: r.shaping.mode,
    ...(r.composition ? { composition: r.composition } : {}),
    ...(r.smoothing.kind !== 'none' ? { smoothing: r.smoothing } : {}),
  };
  // The main episode gives progress and reward; a second one gives GRM progress when the main one's
  // source is SARM alone. Both replay the same batched results.
  const runners: Runner[] = [];
  const addRunner = async (source: ProgressSource) => {
    const replay = new ReplayModel(card, source !== 'sarm');
    runners.push({ replay, episode: await new RewardEngine(replay, { limits: r.limits }).start({ ...startOptions, progress: source }) });
  };
  await addRunner(r.source);
  if (r.dense && r.source === 'sarm') await addRunner('grm');

  const V = card.views.length;
  const D = card.featureDim;
  const VD = V * D;
  const T = card.window.length;
  const K = card.maxStages;
  const imageBytes = card.image.height * card.image.width * 3;
  const retained = framesRetained(card.window);
  const lag = r.stride > 1 && !r.grm ? windowLookback(card.window) + 1 : 1;
  const store = new Map<number, Float32Array>();
  const zeros = new Float32Array(VD);
  const timing: ScoreTiming = { wait_ms: 0, preprocess_ms: 0, encode_ms: 0, heads_ms: 0, engine_ms: 0, encoded_frames: 0, sarm_windows: 0 };
  const out: EpisodeScore = {
    frames: 0,
    task: r.task,
    stageNames: card.stages[taskIndex]!.map((s) => s.name),
    scored: [],
    progress: [],
    sparse: [],
    dense: r.grm ? [] : null,
    uncertainty: null,
    stage: [],
    tau: [],
    envReward: [],
    reward: [],
    timing,
  };

  const processChunk = async (chunk: FrameSet[], start: number, last: number | undefined): Promise<void> => {
    const n = chunk.length;
    // 1. encode the frames some window (or GRM) reads, a few time steps per call
    let t0 = performance.now();
    const needed: number[] = [];
    for (let i = 0; i < n; i++) {
      checkViews(chunk[i]!, card.views);
      if (frameNeeded(start + i, { stride: r.stride, spec: card.window, grm: r.grm, last })) needed.push(i);
    }
    const pixels = new Uint8Array(needed.length * V * imageBytes);
    await Promise.all(
      needed.flatMap((i, j) =>
        card.views.map((view, v) =>
          preprocessInto(chunk[i]![view]!, card.image, pixels, (j * V + v) * imageBytes, r.limits, `frame ${start + i} view "${view}"`),
        ),
      ),
    );
    let t1 = performance.now();
    timing.preprocess_ms += t1 - t0;
    // Whole time steps per call (at least one), at most encodeBatchImages images; all calls are
    // issued at once so a worker-thread model never waits between them.
    const perCall = Math.max(1, Math.floor(r.encodeBatchImages / V));
    const calls: Promise<void>[] = [];
    for (let a = 0; a < needed.length; a += perCall) {
      const b = Math.min(needed.length, a + perCall);
      calls.push(
        model.encode(pixels.subarray(a * V * imageBytes, b * V * imageBytes), (b - a) * V).then((features) => {
          for (let j = a; j < b; j++) store.set(start + needed[j]!, features.subarray((j - a) * VD, (j - a + 1) * VD));
        }),
      );
    }
    await Promise.all(calls);
    timing.encoded_frames += needed.length;
    t0 = performance.now();
    timing.encode_ms += t0 - t1;

    // 2. heads: SARM windows of the scored frames, GRM pairs of every frame (when wanted)
    const scored = Array.from({ length: n }, (_, i) => isScored(start + i, r.stride, last));
    const sarmRows = scored.reduce((a, s) => a + (s ? 1 : 0), 0);
    const sarmBatch: SarmBatch = {
      features: new Float32Array(sarmRows * T * VD),
      valid: new Float32Array(sarmRows * T),
      task: new Array<number>(sarmRows).fill(taskIndex),
    };
    const sarmRowOf: number[] = [];
    let row = 0;
    for (let i = 0; i < n; i++) {
      if (!scored[i]) continue;
      windowIndices(start + i, card.window).forEach((frame, j) => {
        if (frame < 0) return; // padding: zeros, valid 0
        sarmBatch.features.set(mustHave(store, frame), (row * T + j) * VD);
        sarmBatch.valid[row * T + j] = 1;
      });
      sarmRowOf[i] = row++;
    }
    let grmBatch: GrmBatch | undefined;
    if (r.grm) {
      const rows = 2 * n; // (previous -> current), (start -> current); no goal frames offline
      grmBatch = {
        start: new Float32Array(rows * VD),
        goal: new Float32Array(rows * VD),
        before: new Float32Array(rows * VD),
        after: new Float32Array(rows * VD),
        task: new Array<number>(rows).fill(taskIndex),
      };
      for (let i = 0; i < n; i++) {
        const t = start + i;
        const current = mustHave(store, t);
        const first = t === 0 ? current : mustHave(store, 0);
        const previous = t === 0 ? current : mustHave(store, t - 1);
        for (const [k, before] of [previous, first].entries()) {
          const at = (2 * i + k) * VD;
          grmBatch.start.set(first, at);
          grmBatch.goal.set(first, at);
          grmBatch.before.set(before, at);
          grmBatch.after.set(current, at);
        }
      }
    }
    const [sarmOut, hops] = await Promise.all([
      sarmRows > 0 ? model.sarm(sarmBatch) : undefined,
      grmBatch ? model.grm(grmBatch) : undefined,
    ]);
    t1 = performance.now();
    timing.heads_ms += t1 - t0;
    timing.sarm_windows += sarmRows;

    // 3. step the engine through the chunk
    const steps: ReplayStep[] = chunk.map((_, i) => {
      const t = start + i;
      const step: ReplayStep = { frame: t, features: store.get(t) ?? zeros };
      if (scored[i]) {
        const b = sarmRowOf[i]!;
        step.sarm = {
          input: { batch: sarmBatch, row: b, rows: 1 },
          stageLogits: sarmOut!.stageLogits.subarray(b * K, (b + 1) * K),
          tau: sarmOut!.tau[b]!,
          ...(sarmOut!.uncertainty ? { uncertainty: sarmOut!.uncertainty[b]! } : {}),
        };
      }
      if (grmBatch) step.grm = { input: { batch: grmBatch, row: 2 * i, rows: 2 }, hops: hops!.subarray(2 * i, 2 * i + 2) };
      return step;
    });
    for (const runner of runners) runner.replay.push(...steps);
    for (let i = 0; i < n; i++) {
      const t = start + i;
      const env = t === 0 ? 0 : r.envReward(t);
      const results: StepResult[] = [];
      for (const runner of runners) results.push(await runner.episode.step({ frames: chunk[i]!, reward: env }));
      record(out, results, scored[i]!, env);
      options.onStep?.(t, chunk[i]!, scored[i] ? results[0]!.stage.index : null);
      options.onFrame?.();
    }
    for (const runner of runners) runner.replay.compact();
    for (const f of store.keys()) if (f !== 0 && f <= start + n - 1 - retained) store.delete(f);
    timing.engine_ms += performance.now() - t1;
  };

  const it = (Symbol.asyncIterator in frames ? frames[Symbol.asyncIterator]() : (frames as Iterable<FrameSet>)[Symbol.iterator]()) as
    AsyncIterator<FrameSet> | Iterator<FrameSet>;
  const buffer: FrameSet[] = [];
  let bufferStart = 0;
  let ended = false;
  let inflight: Promise<void> | undefined;
  try {
    for (;;) {
      while (!ended && buffer.length < r.batchFrames + lag) {
        const t0 = performance.now();
        const next = await it.next();
        timing.wait_ms += performance.now() - t0;
        if (next.done) ended = true;
        else buffer.push(next.value);
      }
      if (inflight) await inflight;
      inflight = undefined;
      if (buffer.length === 0) break;
      const last = ended ? bufferStart + buffer.length - 1 : undefined;
      const take = ended ? Math.min(r.batchFrames, buffer.length) : Math.min(r.batchFrames, buffer.length - lag);
      const chunk = buffer.splice(0, take);
      inflight = processChunk(chunk, bufferStart, last);
      inflight.catch(() => {}); // awaited above, before the next chunk; this only silences the interim
      bufferStart += take;
    }
  } finally {
    if (!ended) await it.return?.();
    await inflight?.catch(() => {}); // a failed read leaves no chunk computing behind it
    for (const runner of runners) await runner.episode.end();
  }
  if (out.frames === 0) throw new StagewardError('SW_ERR_DATASET_EPISODE', 'no frames to score');
  if (r.stride > 1) finishStrided(out, r);
  return out;
}

function mustHave(store: Map<number, Float32Array>, frame: number): Float32Array {
  const f = store.get(frame);
  if (f === undefined) throw new StagewardError('SW_ERR_INTERNAL', `offline scoring: features of frame ${frame} were not kept`);
  return f;
}

function record(out: EpisodeScore, results: StepResult[], scored: boolean, env: number): void {
  const main = results[0]!;
  out.frames++;
  out.scored.push(scored);
  out.progress.push(main.progress);
  out.sparse.push(main.heads.sarm);
  out.dense?.push((results[1] ?? main).heads.grm!);
  // Whether the model reports uncertainty is known at frame 0 (always scored); an unscored frame of a
  // strided run has none (its SARM did not run) and gets a placeholder that finishStrided interpolates.
  if (main.uncertainty !== null || out.uncertainty !== null) (out.uncertainty ??= []).push(main.uncertainty ?? 0);
  out.stage.push(main.stage.index);
  out.tau.push(main.tau);
  out.envReward.push(env);
  out.reward.push(main.shaped);
}

/** Strided run: interpolate SARM progress, hold stage and tau, rebuild progress and rewards. */
function finishStrided(out: EpisodeScore, r: Resolved): void {
  interpolateUnscored(out.sparse, out.scored);
  if (out.uncertainty) interpolateUnscored(out.uncertainty, out.scored);
  holdUnscored(out.stage, out.scored);
  holdUnscored(out.tau, out.scored);
  for (let t = 0; t < out.frames; t++) {
    // The same choice of source as the engine's (models/engine.ts): "both" is the mean of the heads,
    // then the same causal smoothing, over the interpolated values and uncertainties.
    const raw = r.source === 'sarm' ? out.sparse[t]! : r.source === 'grm' ? out.dense![t]! : (out.sparse[t]! + out.dense![t]!) / 2;
    out.progress[t] = smoothProgress(t === 0 ? undefined : out.progress[t - 1], raw, out.uncertainty?.[t] ?? 0, r.smoothing);
    out.reward[t] =
      t === 0
        ? out.envReward[0]!
        : shapedReward(
            { phiBefore: out.progress[t - 1]!, phiAfter: out.progress[t]!, reward: out.envReward[t]!, terminated: false },
            r.shaping,
          );
  }
}
