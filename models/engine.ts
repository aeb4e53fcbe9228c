// The episode engine: the programmatic API that the server, the simulator bridge and offline scoring
// call. One `RewardEngine` per loaded model; one `Episode` per robot episode. A step runs a fixed
// pipeline: check views -> preprocess -> encode the new frames once (per-episode feature cache) ->
// build the causal window -> SARM (and GRM) heads -> progress -> smoothing (optional) -> shaping.
//
// Step 0 of an episode is its initial observation s_0: it yields Phi(s_0) and no shaping term (there
// is no transition yet). Step t >= 1 carries s_t and the env reward of the transition s_(t-1) -> s_t.

import type { RawImage } from '../core/image.ts';
import { performance } from 'node:perf_hooks';
import type { ModelCard, Stage } from './card.ts';
import { echo, StagewardError } from '../core/errors.ts';
import type { ProgressModel } from './package.ts';
import { FairQueue, type FairQueueOptions } from '../core/fair-queue.ts';
import {
  DEFAULT_PREPROCESS_LIMITS,
  checkViews,
  preprocessFrames,
  type DecodeScheduler,
  type FrameSet,
  type PreprocessLimits,
} from './preprocess.ts';
import {
  DEFAULT_EMA,
  SMOOTHING_KINDS,
  argmax,
  fuseGrm,
  sarmProgress,
  smoothProgress,
  stageProbabilities,
  type Composition,
  type ProgressSmoothing,
} from './progress.ts';
import {
  SHAPING_MODES,
  TRANSFORM_KINDS,
  potential,
  shapedReward,
  type PotentialTransform,
  type ShapingConfig,
  type ShapingMode,
} from './shaping.ts';
import { framesRetained, windowIndices } from './window.ts';

/** Which head gives an episode's progress: SARM, GRM, or both (their mean). The one list of head choices. */
export const PROGRESS_SOURCES = ['sarm', 'grm', 'both'] as const;

/**
 * Bounds that keep every sum an episode reports finite: |reward| per step and |scale| (lambda). With
 * these, a return overflows only after ~1e296 steps, so no reply ever carries Infinity (or JSON's null).
 */
export const REWARD_ABS_MAX = 1e12;
export const SHAPING_SCALE_MAX = 1e6;
export type ProgressSource = (typeof PROGRESS_SOURCES)[number];

/** `EpisodeOptions.smoothing`: `ema`'s alpha and u0 default to DEFAULT_EMA (models/progress.ts). */
export type SmoothingOption = { kind: 'none' } | { kind: 'ema'; alpha?: number; u0?: number };

export interface EpisodeOptions {
  /** One of the card's tasks. */
  task: string;
  /** The camera views the client will send; checked against the card's now, not at the first step. */
  views?: string[];
  /**
   * Views the client does not have: each step (and the goal) gets them filled as the card's
   * `missing_views` says (a black frame); a card that declares no fill refuses this. Default none.
   */
  fill?: string[];
  /** The learner's discount, in [0, 1]. */
  gamma: number;
  shaping: ShapingMode;
  /** Which head gives Phi; default "sarm". "both" averages SARM and GRM. */
  progress?: ProgressSource;
  /** SARM composition; default the card's. */
  composition?: Composition;
  /** lambda, the shaping scale; default 1. */
  scale?: number;
  /** Bounded transform of Phi (identity, sigmoid, or conservative: minus k * uncertainty); default identity. */
  transform?: PotentialTransform;
  /** Causal smoothing of Phi before shaping (models/SHAPING.md, "Smoothing"); default none. */
  smoothing?: SmoothingOption;
  /** Goal frames per view for GRM's backward-anchored perspective. */
  goal?: FrameSet;
  /**
   * Who the episode's image decoding is charged to when the engine queues decodes fairly
   * (EngineOptions.decode): a server passes its session id. Default: one shared tenant.
   */
  tenant?: string;
}

export interface StepInput {
  frames: FrameSet;
  /** Env reward of the transition into this observation; default 0. */
  reward?: number;
  terminated?: boolean;
  truncated?: boolean;
}

export interface StepResult {
  episode: number;
  /** Frame index within the episode; 0 is the initial observation. */
  step: number;
  /**
   * Phi(s_t) in [0, 1] from the chosen head(s), after the episode's smoothing when it has one (the
   * value the shaped reward is built on; `heads` stay raw). Before any potential transform.
   */
  progress: number;
  stage: { index: number; name: string; probs: number[] };
  tau: number;
  /** Incremental GRM hop (previous frame -> this one), when GRM ran. */
  hop?: number;
  /** Progress per head that ran, raw (never smoothed). */
  heads: { sarm: number; grm?: number };
  /**
   * The SARM head's uncertainty of this step's progress, >= 0: the population std over the package's
   * ensemble members of each member's own P_k + a_k * tau (models/PACKAGE.md). null when the package's
   * sarm.onnx has no `uncertainty` output. GRM does not change it, whatever the progress source.
   */
  uncertainty: number | null;
  /** The env reward as received (0 when absent). */
  reward: number;
  /** The reward for the learner, from the episode's shaping mode. */
  shaped: number;
  /** The episode is over (terminated or truncated); further steps are refused. */
  done: boolean;
  timing: { preprocess_ms: number; encode_ms: number; heads_ms: number; total_ms: number };
}

export interface EpisodeSummary {
  episode: number;
  steps: number;
  finalProgress: number;
  maxProgress: number;
  /** Undiscounted sum of shaped rewards. */
  shapedReturn: number;
  envReturn: number;
  terminated: boolean;
  truncated: boolean;
}

export interface EngineOptions {
  limits?: PreprocessLimits;
  /**
   * Queue image decodes fairly between tenants (core/fair-queue.ts): each episode's decodes are
   * charged their bytes to its `tenant`, so one client's large frames cannot hold the decoder while
   * others wait. Default: none (each decode starts at once).
   */
  decode?: FairQueueOptions;
}

export class RewardEngine {
  readonly model: ProgressModel;
  readonly limits: PreprocessLimits;
  readonly decodeQueue: FairQueue | undefined;
  #nextEpisode = 0;

  constructor(model: ProgressModel, options: EngineOptions = {}) {
    this.model = model;
    this.limits = options.limits ?? DEFAULT_PREPROCESS_LIMITS;
    this.decodeQueue = options.decode === undefined ? undefined : new FairQueue(options.decode);
  }

  /** The decode scheduler for a tenant's images (immediate without a queue). */
  scheduler(tenant: string | undefined): DecodeScheduler {
    const q = this.decodeQueue;
    if (q === undefined) return (_cost, fn) => fn();
    const who = tenant ?? '';
    return (cost, fn) => q.run(who, cost, fn);
  }

  get card(): ModelCard {
    return this.model.card;
  }

  /** Start an episode; encodes the goal frames when given. */
  async start(options: EpisodeOptions): Promise<Episode> {
    const settings = resolveOptions(this.card, options);
    let goal: Float32Array | undefined;
    if (options.goal !== undefined && settings.useGrm) {
      const pixels = await preprocessFrames(withFill(options.goal, settings.fill), this.card, this.limits, this.scheduler(options.tenant));
      goal = await this.model.encode(pixels, this.card.views.length);
    }
    return new Episode(this, this.#nextEpisode++, settings, goal, this.scheduler(options.tenant));
  }
}

interface EpisodeSettings {
  taskIndex: number;
  stages: Stage[];
  priors: number[];
  source: ProgressSource;
  useGrm: boolean;
  composition: Composition;
  shaping: ShapingConfig;
  smoothing: ProgressSmoothing;
  /** Filled view -> its frame (empty: the client sends every view). */
  fill: Record<string, RawImage>;
}

/** A frame of zeros at the model's input size: the `black` fill of a missing view. */
function blackFrame(card: ModelCard): RawImage {
  const { height, width } = card.image;
  return { data: new Uint8Array(height * width * 3), height, width, channels: 3 };
}

function resolveFill(card: ModelCard, fill: unknown, bad: (msg: string) => never): Record<string, RawImage> {
  if (fill === undefined) return {};
  if (!Array.isArray(fill) || fill.some((v) => typeof v !== 'string')) bad('`fill` must be a list of view names');
  const views = fill as string[];
  if (views.length === 0) return {};
  if (card.missingViews === null)
    bad(
      `model ${card.name}'s card declares no fill for missing views (\`missing_views\`): every view (${card.views.join(', ')}) must be sent`,
    );
  for (const v of views)
    if (!card.views.includes(v)) bad(`\`fill\` names ${echo(v)}, not one of the model's views (${card.views.join(', ')})`);
  if (new Set(views).size !== views.length) bad('`fill` names a view twice');
  if (views.length >= card.views.length) bad('`fill` must leave at least one view that the client sends');
  const frame = blackFrame(card);
  return Object.fromEntries(views.map((v) => [v, frame]));
}

/** The frames a step is scored on: the client's, plus the episode's filled views (which the client must not send). */
function withFill(frames: FrameSet, fill: Record<string, RawImage>): FrameSet {
  const filled = Object.keys(fill);
  if (filled.length === 0) return frames;
  for (const v of filled)
    if (frames !== null && typeof frames === 'object' && Object.hasOwn(frames, v))
      throw new StagewardError(
        'SW_ERR_VIEW_UNKNOWN',
        `view "${v}" is filled in this episode (the client declared it missing); do not send it`,
      );
  return { ...frames, ...fill };
}

function resolveOptions(card: ModelCard, o: EpisodeOptions): EpisodeSettings {
  const bad = (msg: string): never => {
    throw new StagewardError('SW_ERR_BAD_OPTION', msg);
  };
  const taskIndex = card.tasks.indexOf(o.task);
  if (taskIndex < 0)
    throw new StagewardError(
      'SW_ERR_TASK_UNKNOWN',
      `unknown task ${typeof o.task === 'string' ? echo(o.task) : typeof o.task}; the model knows ${card.tasks.map((t) => `"${t}"`).join(', ')}`,
    );
  if (typeof o.gamma !== 'number' || !(o.gamma >= 0 && o.gamma <= 1)) bad('`gamma` must be a number in [0, 1]');
  if (!SHAPING_MODES.includes(o.shaping)) bad(`\`shaping\` must be one of ${SHAPING_MODES.join(', ')}`);
  const source = o.progress ?? 'sarm';
  if (!PROGRESS_SOURCES.includes(source)) bad(`\`progress\` must be one of ${PROGRESS_SOURCES.join(', ')}`);
  if (source !== 'sarm' && !card.grm.present) bad(`\`progress\` "${source}" needs a GRM head, and model ${card.name} has none`);
  const composition = o.composition ?? card.composition;
  if (composition !== 'argmax' && composition !== 'expected') bad('`composition` must be "argmax" or "expected"');
  const scale = o.scale ?? 1;
  if (typeof scale !== 'number' || !(Math.abs(scale) <= SHAPING_SCALE_MAX))
    bad(`\`scale\` must be a number in [-${SHAPING_SCALE_MAX}, ${SHAPING_SCALE_MAX}]`);
  const transform = o.transform ?? { kind: 'identity' };
  if (typeof transform !== 'object' || transform === null || !TRANSFORM_KINDS.includes(transform.kind)) {
    bad(`\`transform.kind\` must be one of ${TRANSFORM_KINDS.map((k) => `"${k}"`).join(', ')}`);
  } else if (transform.kind === 'sigmoid' && !(transform.temperature > 0 && Number.isFinite(transform.center))) {
    bad('`transform` sigmoid needs a finite center and a temperature > 0');
  } else if (transform.kind === 'conservative' && !(typeof transform.k === 'number' && transform.k >= 0 && Number.isFinite(transform.k))) {
    bad('`transform` conservative needs a finite k >= 0');
  }
  const smoothing = checkSmoothing(o.smoothing);
  const fill = resolveFill(card, o.fill, bad);
  if (o.views !== undefined) {
    if (!Array.isArray(o.views)) bad('`views` must be a list of view names');
    const declared: Record<string, unknown> = Object.fromEntries(o.views.map((v) => [v, true]));
    for (const v of Object.keys(fill)) {
      if (Object.hasOwn(declared, v)) bad(`view "${v}" is both in \`views\` and in \`fill\``);
      declared[v] = true;
    }
    checkViews(declared, card.views);
  }
  const stages = card.stages[taskIndex]!;
  return {
    taskIndex,
    stages,
    priors: stages.map((s) => s.prior),
    source,
    useGrm: source !== 'sarm',
    composition,
    shaping: { mode: o.shaping, gamma: o.gamma, scale, transform },
    smoothing,
    fill,
  };
}

/**
 * `EpisodeOptions.smoothing` checked, with its defaults filled in (SW_ERR_BAD_OPTION naming the
 * field). Exported so that a caller running many episodes (offline scoring) can refuse it once.
 */
export function checkSmoothing(o: SmoothingOption | undefined): ProgressSmoothing {
  const bad = (msg: string): never => {
    throw new StagewardError('SW_ERR_BAD_OPTION', msg);
  };
  if (o === undefined) return { kind: 'none' };
  if (typeof o !== 'object' || o === null || !SMOOTHING_KINDS.includes(o.kind))
    return bad(`\`smoothing.kind\` must be one of ${SMOOTHING_KINDS.map((k) => `"${k}"`).join(', ')}`);
  if (o.kind === 'none') return { kind: 'none' };
  const alpha = o.alpha ?? DEFAULT_EMA.alpha;
  const u0 = o.u0 ?? DEFAULT_EMA.u0;
  // alpha 0 would freeze Phi at its first value; above 1 the update overshoots the new value.
  if (typeof alpha !== 'number' || !(alpha > 0 && alpha <= 1)) bad('`smoothing` ema needs an alpha in (0, 1]');
  if (typeof u0 !== 'number' || !(u0 > 0 && Number.isFinite(u0))) bad('`smoothing` ema needs a finite u0 > 0');
  return { kind: 'ema', alpha, u0 };
}

export class Episode {
  readonly id: number;
  readonly #engine: RewardEngine;
  readonly #settings: EpisodeSettings;
  readonly #goal: Float32Array | undefined;
  readonly #schedule: DecodeScheduler;
  /** Features [V*D] per frame index: frame 0 and the most recent frames a later step can need. */
  readonly #cache = new Map<number, Float32Array>();
  readonly #retained: number;
  #t = 0;
  /** Phi of the last step as shaping sees it (smoothed when the episode smooths), and its uncertainty. */
  #phi = 0;
  #uncertainty = 0;
  #grmIncremental = 0;
  #done = false;
  #queue: Promise<unknown> = Promise.resolve();
  #summary: Omit<EpisodeSummary, 'episode'> = {
    steps: 0,
    finalProgress: 0,
    maxProgress: 0,
    shapedReturn: 0,
    envReturn: 0,
    terminated: false,
    truncated: false,
  };

  constructor(engine: RewardEngine, id: number, settings: EpisodeSettings, goal: Float32Array | undefined, schedule: DecodeScheduler) {
    this.#engine = engine;
    this.id = id;
    this.#settings = settings;
    this.#goal = goal;
    this.#schedule = schedule;
    this.#retained = framesRetained(engine.card.window);
  }

  get done(): boolean {
    return this.#done;
  }

  /** Frames currently held in the feature cache (bounded by the window, whatever the episode length). */
  get cachedFrames(): number {
    return this.#cache.size;
  }

  /** Steps run one at a time, in call order, even when the caller does not await each one. */
  step(input: StepInput): Promise<StepResult> {
    const run = this.#queue.then(() => this.#step(input));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** End the episode (if no step ended it) and return its summary. */
  async end(): Promise<EpisodeSummary> {
    await this.#queue;
    this.#done = true;
    this.#cache.clear();
    return { episode: this.id, ...this.#summary };
  }

  async #step(input: StepInput): Promise<StepResult> {
    const t0 = performance.now();
    // The message names no episode: `id` counts the engine's episodes, which a server shares between clients.
    if (this.#done) throw new StagewardError('SW_ERR_EPISODE_ENDED', 'this episode has ended; start a new one');
    const reward = input.reward ?? 0;
    if (typeof reward !== 'number' || !(Math.abs(reward) <= REWARD_ABS_MAX))
      throw new StagewardError('SW_ERR_BAD_VALUE', `\`reward\` must be a finite number in [-${REWARD_ABS_MAX}, ${REWARD_ABS_MAX}]`);
    const terminated = flag(input.terminated, 'terminated');
    const truncated = flag(input.truncated, 'truncated');
    const engine = this.#engine;
    const card = engine.card;
    const s = this.#settings;

    const pixels = await preprocessFrames(withFill(input.frames, s.fill), card, engine.limits, this.#schedule);
    const t1 = performance.now();
    const features = await engine.model.encode(pixels, card.views.length);
    const t2 = performance.now();

    const t = this.#t;
    const [sarm, hops] = await Promise.all([this.#runSarm(t, features), s.useGrm ? this.#runGrm(t, features) : undefined]);
    const t3 = performance.now();

    // Everything below is pure and cannot fail: the episode's state changes only now.
    const probs = stageProbabilities(sarm.stageLogits, s.stages.length);
    const stageIndex = argmax(probs);
    const tau = Math.min(1, Math.max(0, sarm.tau[0]!));
    const heads: StepResult['heads'] = { sarm: sarmProgress(probs, tau, s.priors, s.composition) };
    if (hops) {
      const fused = fuseGrm(t === 0 ? 0 : this.#grmIncremental, hops);
      this.#grmIncremental = fused.incremental;
      heads.grm = fused.progress;
    }
    // A std is never negative; float noise in the graph could still round a tiny one below 0.
    const uncertainty = sarm.uncertainty === undefined ? null : Math.max(0, sarm.uncertainty[0]!);
    const u = uncertainty ?? 0;
    const raw = s.source === 'sarm' ? heads.sarm : s.source === 'grm' ? heads.grm! : (heads.sarm + heads.grm!) / 2;
    const progress = smoothProgress(t === 0 ? undefined : this.#phi, raw, u, s.smoothing);
    const shaped =
      t === 0
        ? reward
        : shapedReward(
            { phiBefore: this.#phi, phiAfter: progress, reward, terminated, uncertaintyBefore: this.#uncertainty, uncertaintyAfter: u },
            s.shaping,
          );

    this.#cache.set(t, features);
    const stale = t - this.#retained; // frame 0 stays: slot 0 and GRM's start need it all episode
    if (stale > 0) this.#cache.delete(stale);
    this.#phi = progress;
    this.#uncertainty = u;
    this.#t = t + 1;
    this.#done = terminated || truncated;
    const sum = this.#summary;
    sum.steps = t + 1;
    sum.finalProgress = progress;
    sum.maxProgress = Math.max(sum.maxProgress, progress);
    sum.shapedReturn += shaped;
    sum.envReturn += reward;
    sum.terminated = terminated;
    sum.truncated = truncated;

    const result: StepResult = {
      episode: this.id,
      step: t,
      progress,
      stage: { index: stageIndex, name: s.stages[stageIndex]!.name, probs },
      tau,
      heads,
      uncertainty,
      reward,
      shaped,
      done: this.#done,
      timing: { preprocess_ms: t1 - t0, encode_ms: t2 - t1, heads_ms: t3 - t2, total_ms: performance.now() - t0 },
    };
    if (hops) result.hop = hops.incremental;
    return result;
  }

  /** Potential of the last observation as the learner sees it (after the transform). */
  get potential(): number {
    return potential(this.#phi, this.#settings.shaping.transform, this.#uncertainty);
  }

  #frame(index: number, current: Float32Array, t: number): Float32Array | undefined {
    if (index < 0) return undefined;
    return index === t ? current : this.#cache.get(index);
  }

  async #runSarm(t: number, current: Float32Array) {
    const card = this.#engine.card;
    const vd = card.views.length * card.featureDim;
    const slots = windowIndices(t, card.window);
    const features = new Float32Array(slots.length * vd);
    const valid = new Float32Array(slots.length);
    slots.forEach((frame, j) => {
      const f = this.#frame(frame, current, t);
      if (f === undefined) return; // padding: zeros, valid 0
      features.set(f, j * vd);
      valid[j] = 1;
    });
    return this.#engine.model.sarm({ features, valid, task: [this.#settings.taskIndex] });
  }

  async #runGrm(t: number, current: Float32Array) {
    const start = t === 0 ? current : this.#cache.get(0)!;
    const previous = t === 0 ? current : this.#cache.get(t - 1)!;
    const goal = this.#goal;
    const rows = goal === undefined ? [previous, start] : [previous, start, goal];
    const n = rows.length;
    const vd = current.length;
    const tile = (row: Float32Array) => {
      const out = new Float32Array(n * vd);
      for (let i = 0; i < n; i++) out.set(row, i * vd);
      return out;
    };
    const before = new Float32Array(n * vd);
    rows.forEach((r, i) => before.set(r, i * vd));
    const hop = await this.#engine.model.grm({
      start: tile(start),
      goal: tile(goal ?? start),
      before,
      after: tile(current),
      task: new Array<number>(n).fill(this.#settings.taskIndex),
    });
    return { incremental: hop[0]!, forward: hop[1]!, ...(goal === undefined ? {} : { backward: hop[2]! }) };
  }
}

function flag(v: unknown, name: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new StagewardError('SW_ERR_BAD_VALUE', `\`${name}\` must be true or false`);
  return v;
}
