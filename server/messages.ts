// The native protocol's messages (`/v1/stream`, described in native-session.ts): field-by-field
// checks of decoded client messages into typed requests, and the server's reply shapes. Types and
// presence are checked here (SW_ERR_PROTOCOL naming the field; unknown fields are refused so a typo
// never passes silently); ranges and meanings (gamma, shaping, views, rewards) are the engine's.

import type { EpisodeSummary, StepResult } from '../models/engine.ts';
import { echo, StagewardError } from '../core/errors.ts';
import type { FrameSet, ImageInput } from '../models/preprocess.ts';
import { base64Bytes, NdArray, toRawImage } from './ndarray.ts';

export const PROTOCOL_VERSION = 1;

/** Most values a step's `state` may carry (a robot's joint state is tens; an action chunk hundreds). */
export const STATE_MAX_VALUES = 4096;
/** Longest episode label, characters. */
export const EPISODE_LABEL_MAX_CHARS = 256;

export interface FrameLimits {
  maxViews: number;
  maxImagePixels: number;
}

export interface HelloRequest {
  model?: string;
  task: string;
  views?: string[];
  gamma: number;
  shaping: string;
  progress?: string;
  fps?: number;
  scale?: number;
  composition?: string;
  apiKey?: string;
}
export interface ResetRequest {
  episode?: string | number;
  goal?: FrameSet;
}
export interface StepRequest {
  seq?: number;
  t?: number;
  frames: FrameSet;
  reward?: unknown;
  terminated?: unknown;
  truncated?: unknown;
}
export interface EndRequest {
  terminated?: boolean;
  truncated?: boolean;
  success?: boolean;
}

const ALLOWED: Record<string, readonly string[]> = {
  hello: ['type', 'protocol', 'model', 'task', 'views', 'gamma', 'shaping', 'progress', 'fps', 'scale', 'composition', 'api_key'],
  reset: ['type', 'episode', 'goal'],
  step: ['type', 'seq', 't', 'frames', 'reward', 'terminated', 'truncated', 'state'],
  end: ['type', 'terminated', 'truncated', 'success'],
};

function protocolError(message: string): never {
  throw new StagewardError('SW_ERR_PROTOCOL', message);
}

/** The message's `type`, after checking its fields are ones that type may carry. */
export function messageType(m: Record<string, unknown>): 'hello' | 'reset' | 'step' | 'end' {
  const type = m.type;
  if (typeof type !== 'string') protocolError('a message needs a string `type` (hello, reset, step or end)');
  const allowed = ALLOWED[type];
  if (!Object.hasOwn(ALLOWED, type) || allowed === undefined)
    protocolError(`unknown message type ${echo(type)} (use hello, reset, step or end)`);
  for (const key of Object.keys(m)) {
    if (!allowed.includes(key)) protocolError(`a ${type} message has the unknown field ${echo(key)} (allowed: ${allowed.join(', ')})`);
  }
  return type as 'hello' | 'reset' | 'step' | 'end';
}

function optString(m: Record<string, unknown>, key: string): string | undefined {
  const v = m[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') protocolError(`\`${key}\` must be a string`);
  return v;
}
function optNumber(m: Record<string, unknown>, key: string): number | undefined {
  const v = m[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') protocolError(`\`${key}\` must be a number`);
  return v;
}
function optBool(m: Record<string, unknown>, key: string): boolean | undefined {
  const v = m[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') protocolError(`\`${key}\` must be true or false`);
  return v;
}
function optIndex(m: Record<string, unknown>, key: string): number | undefined {
  const v = optNumber(m, key);
  if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) protocolError(`\`${key}\` must be a non-negative integer`);
  return v;
}

export function parseHello(m: Record<string, unknown>, limits: FrameLimits): HelloRequest {
  if (m.protocol !== PROTOCOL_VERSION)
    protocolError(`\`protocol\` must be ${PROTOCOL_VERSION} (this server speaks protocol ${PROTOCOL_VERSION})`);
  const task = optString(m, 'task');
  if (task === undefined) protocolError('hello needs `task`');
  const gamma = optNumber(m, 'gamma');
  if (gamma === undefined) protocolError("hello needs `gamma`, the learner's discount");
  const shaping = optString(m, 'shaping');
  if (shaping === undefined) protocolError('hello needs `shaping` (pbrs, delta, progress or sparse)');
  const out: HelloRequest = { task, gamma, shaping };
  const views = m.views;
  if (views !== undefined && views !== null) {
    if (!Array.isArray(views) || views.some((v) => typeof v !== 'string')) protocolError('`views` must be a list of view names');
    if (views.length > limits.maxViews)
      throw new StagewardError('SW_ERR_LIMIT', `hello names ${views.length} views, above maxViews (${limits.maxViews})`);
    const twice = views.find((v, i) => views.indexOf(v) !== i) as string | undefined;
    if (twice !== undefined) throw new StagewardError('SW_ERR_BAD_OPTION', `\`views\` names the view ${echo(twice)} twice`);
    out.views = views as string[];
  }
  const opt = {
    model: optString(m, 'model'),
    progress: optString(m, 'progress'),
    fps: optNumber(m, 'fps'),
    scale: optNumber(m, 'scale'),
    composition: optString(m, 'composition'),
    apiKey: optString(m, 'api_key'),
  };
  for (const [k, v] of Object.entries(opt)) if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  if (out.fps !== undefined && !(out.fps > 0 && Number.isFinite(out.fps)))
    throw new StagewardError('SW_ERR_BAD_OPTION', '`fps` must be a positive number');
  return out;
}

/** A client's episode label (native reset, openpi observation): a short string or a non-negative integer. */
export function parseEpisodeLabel(v: unknown): string | number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') {
    if (v.length > EPISODE_LABEL_MAX_CHARS) protocolError(`\`episode\` must be at most ${EPISODE_LABEL_MAX_CHARS} characters`);
    return v;
  }
  if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) protocolError('`episode` must be a string or a non-negative integer');
  return v;
}

export function parseReset(m: Record<string, unknown>, limits: FrameLimits): ResetRequest {
  const out: ResetRequest = {};
  const episode = parseEpisodeLabel(m.episode);
  if (episode !== undefined) out.episode = episode;
  if (m.goal !== undefined && m.goal !== null) out.goal = parseFrames(m.goal, limits, 'goal');
  return out;
}

export function parseStep(m: Record<string, unknown>, limits: FrameLimits): StepRequest {
  const out: StepRequest = { frames: {} };
  const seq = optIndex(m, 'seq');
  if (seq !== undefined) out.seq = seq;
  const t = optIndex(m, 't');
  if (t !== undefined) out.t = t;
  if (m.frames === undefined || m.frames === null) protocolError('a step needs `frames`, a map of view name to image');
  out.frames = parseFrames(m.frames, limits, 'frames');
  if (m.state !== undefined && m.state !== null) checkState(m.state);
  // The engine checks these (finite reward, booleans) and answers SW_ERR_BAD_VALUE.
  if (m.reward !== undefined && m.reward !== null) out.reward = m.reward;
  if (m.terminated !== undefined && m.terminated !== null) out.terminated = m.terminated;
  if (m.truncated !== undefined && m.truncated !== null) out.truncated = m.truncated;
  return out;
}

export function parseEnd(m: Record<string, unknown>): EndRequest {
  const out: EndRequest = {};
  for (const key of ['terminated', 'truncated', 'success'] as const) {
    const v = optBool(m, key);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/**
 * A step's `state` is not used by the reward, but it is checked like every field: numbers only (a
 * list of finite numbers, or a numeric numpy array), at most STATE_MAX_VALUES of them.
 */
export function checkState(v: unknown): void {
  if (v instanceof NdArray) {
    if (v.dtype === '|b1' || !v.numeric) protocolError(`\`state\` must be numeric, not ${v.dtype}`);
    const n = v.shape.reduce((a, b) => a * b, 1);
    if (n > STATE_MAX_VALUES) throw new StagewardError('SW_ERR_LIMIT', `\`state\` holds ${n} values, above ${STATE_MAX_VALUES}`);
    return;
  }
  if (!Array.isArray(v)) protocolError('`state` must be a list of numbers or a numeric numpy array');
  if (v.length > STATE_MAX_VALUES)
    throw new StagewardError('SW_ERR_LIMIT', `\`state\` holds ${v.length} values, above ${STATE_MAX_VALUES}`);
  if (!v.every((x) => typeof x === 'number' && Number.isFinite(x))) protocolError('`state` must hold finite numbers only');
}

/** The seq of a step message, when it has a valid one (to label an error reply). */
export function seqOf(m: unknown): number | undefined {
  if (m === null || typeof m !== 'object') return undefined;
  const seq = (m as Record<string, unknown>).seq;
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
}

/** A map view name -> image (bytes, base64 text from JSON, or a uint8 HWC numpy array). */
export function parseFrames(v: unknown, limits: FrameLimits, label: string): FrameSet {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array || v instanceof NdArray) {
    throw new StagewardError('SW_ERR_VIEW_MISSING', `\`${label}\` must be a map of view name to image`);
  }
  const entries = Object.entries(v);
  if (entries.length > limits.maxViews)
    throw new StagewardError('SW_ERR_LIMIT', `\`${label}\` has ${entries.length} views, above maxViews (${limits.maxViews})`);
  const out: FrameSet = {};
  for (const [view, img] of entries) {
    const where = `${label}[${echo(view)}]`;
    let image: ImageInput;
    if (img instanceof Uint8Array) image = img;
    else if (typeof img === 'string') image = base64Bytes(img);
    else if (img instanceof NdArray) image = toRawImage(img, limits.maxImagePixels, where);
    else throw new StagewardError('SW_ERR_IMAGE_DECODE', `${where} must be JPEG/PNG bytes, base64 text (JSON) or a uint8 HWC array`);
    out[view] = image;
  }
  return out;
}

// -- replies ---------------------------------------------------------------------------------

export interface StepTiming {
  /** Received -> the session started on it (waiting behind earlier messages of the connection). */
  queueMs: number;
  /** The engine's time for the step (preprocess, encode, heads; batching waits included). */
  inferMs: number;
  /** Received -> reply ready. */
  totalMs: number;
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

/** The fields a `reward` reply and an openpi reply share. */
export function rewardFields(r: StepResult, episode: string | number, timing: StepTiming): Record<string, unknown> {
  const out: Record<string, unknown> = {
    episode,
    step: r.step,
    progress: r.progress,
    stage: { index: r.stage.index, name: r.stage.name, probs: r.stage.probs },
    tau: r.tau,
  };
  if (r.hop !== undefined) out.hop = r.hop;
  Object.assign(out, {
    heads: r.heads,
    // always present, null for a package without an ensemble, so clients read one shape of reply
    uncertainty: r.uncertainty,
    reward: r.reward,
    shaped: r.shaped,
    done: r.done,
    timing: { queue_ms: round(timing.queueMs), infer_ms: round(timing.inferMs), total_ms: round(timing.totalMs) },
  });
  return out;
}

export function summaryFields(s: EpisodeSummary, episode: string | number, end: EndRequest): Record<string, unknown> {
  const out: Record<string, unknown> = {
    episode,
    steps: s.steps,
    final_progress: s.finalProgress,
    max_progress: s.maxProgress,
    shaped_return: s.shapedReturn,
    env_return: s.envReturn,
    terminated: end.terminated ?? s.terminated,
    truncated: end.truncated ?? s.truncated,
  };
  if (end.success !== undefined) out.success = end.success;
  return out;
}
