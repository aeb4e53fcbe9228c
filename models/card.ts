// The model card (model.json, models/PACKAGE.md): parsed and validated into a typed `ModelCard`.
// Pure: takes the parsed JSON, returns the card or throws SW_ERR_MODEL_CARD naming the field.

import { StagewardError } from '../core/errors.ts';
import type { Composition } from './progress.ts';
import type { WindowSpec } from './window.ts';

export type ResizeMode = 'stretch' | 'pad' | 'crop';
const RESIZE_MODES: readonly ResizeMode[] = ['stretch', 'pad', 'crop'];
const COMPOSITIONS: readonly Composition[] = ['argmax', 'expected'];
/** `black`: a frame of zeros at the model's image size, in place of the missing camera. */
export type MissingViewFill = 'black';
const MISSING_VIEW_FILLS: readonly MissingViewFill[] = ['black'];

export const CARD_FORMAT = 1;
/** Priors must sum to 1 within this. */
export const PRIOR_SUM_TOLERANCE = 1e-3;
/** Sanity bounds on what a card may declare, so a hostile card cannot make the server allocate wildly. */
const MAX_IMAGE_SIDE = 4096;
const MAX_FEATURE_DIM = 65536;
const MAX_WINDOW = 1024;
const MAX_INSTRUCTION_CHARS = 1024;

export interface Stage {
  name: string;
  prior: number;
}

export interface ModelCard {
  format: number;
  name: string;
  version: string;
  views: string[];
  image: { height: number; width: number; resize: ResizeMode };
  featureDim: number;
  window: WindowSpec;
  fps: number;
  tasks: string[];
  /**
   * Per task id, the natural-language instruction it was trained on first, then aliases (prompts
   * robots send, e.g. "put the red cube in the blue bowl"); tasks without any map to nothing here.
   * models/tasks.ts resolves a prompt against them.
   */
  instructions: Record<string, string[]>;
  /** Per task (same order as `tasks`), its ordered stages. */
  stages: Stage[][];
  /** K: the width of the SARM head's stage logits, the largest stage count over the tasks. */
  maxStages: number;
  composition: Composition;
  /**
   * How a view the client lacks may be filled, as the model was measured to tolerate (`metrics`
   * records the cost per view); null: the card declares none, and a missing view is refused.
   */
  missingViews: { fill: MissingViewFill } | null;
  grm: { present: boolean; goal: 'client' | 'none' };
  graphs: { encoder: string; sarm: string; grm?: string };
  provenance: Record<string, unknown>;
  metrics: Record<string, unknown>;
}

function fail(field: string, problem: string): never {
  throw new StagewardError('SW_ERR_MODEL_CARD', `model.json: \`${field}\` ${problem}`);
}

type Json = Record<string, unknown>;

function obj(v: unknown, field: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, 'must be an object');
  return v as Json;
}
function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) fail(field, 'must be a non-empty string');
  return v;
}
function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(field, `must be an integer in [${min}, ${max}]`);
  return v;
}
function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') fail(field, 'must be true or false');
  return v;
}
function oneOf<T extends string>(v: unknown, field: string, options: readonly T[]): T {
  if (typeof v !== 'string' || !options.includes(v as T)) fail(field, `must be one of ${options.map((o) => `"${o}"`).join(', ')}`);
  return v as T;
}
function uniqueStrings(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.length === 0) fail(field, 'must be a non-empty array of strings');
  const out = v.map((s, i) => str(s, `${field}[${i}]`));
  if (new Set(out).size !== out.length) fail(field, 'must not repeat a name');
  return out;
}
function fileName(v: unknown, field: string): string {
  const s = str(v, field);
  if (s.includes('/') || s.includes('\\') || s.startsWith('.')) fail(field, 'must be a plain file name inside the model folder');
  return s;
}

export function parseCard(raw: unknown): ModelCard {
  const c = obj(raw, '(root)');
  if (c.format !== CARD_FORMAT) fail('format', `must be ${CARD_FORMAT} (this stageward reads model package format ${CARD_FORMAT})`);
  const name = str(c.name, 'name');
  if (!/^[a-z0-9_.-]+$/.test(name)) fail('name', 'must match [a-z0-9_.-]+');
  const version = str(c.version, 'version');
  const views = uniqueStrings(c.views, 'views');

  const image = obj(c.image, 'image');
  const height = int(image.height, 'image.height', 1, MAX_IMAGE_SIDE);
  const width = int(image.width, 'image.width', 1, MAX_IMAGE_SIDE);
  const resize = oneOf(image.resize, 'image.resize', RESIZE_MODES);

  const featureDim = int(c.feature_dim, 'feature_dim', 1, MAX_FEATURE_DIM);
  const w = obj(c.window, 'window');
  const window: WindowSpec = {
    length: int(w.length, 'window.length', 1, MAX_WINDOW),
    strideFrames: int(w.stride_frames, 'window.stride_frames', 1, 100_000),
    includeInitial: bool(w.include_initial, 'window.include_initial'),
  };
  if (window.includeInitial && window.length < 2) fail('window.length', 'must be at least 2 when include_initial is true');
  if (typeof c.fps !== 'number' || !(c.fps > 0) || c.fps > 1000) fail('fps', 'must be a number in (0, 1000]');

  const tasks = uniqueStrings(c.tasks, 'tasks');
  const stageMap = obj(c.stages, 'stages');
  for (const key of Object.keys(stageMap)) if (!tasks.includes(key)) fail(`stages.${key}`, 'names a task that is not in `tasks`');
  const stages = tasks.map((task) => parseStages(stageMap[task], `stages.${task}`));
  const instructions = c.instructions === undefined ? {} : parseInstructions(c.instructions, tasks);

  const progress = obj(c.progress, 'progress');
  const composition = oneOf(progress.composition, 'progress.composition', COMPOSITIONS);
  const missingViews =
    c.missing_views === undefined
      ? null
      : { fill: oneOf(obj(c.missing_views, 'missing_views').fill, 'missing_views.fill', MISSING_VIEW_FILLS) };
  const g = obj(c.grm, 'grm');
  const grm = { present: bool(g.present, 'grm.present'), goal: oneOf(g.goal, 'grm.goal', ['client', 'none'] as const) };

  const gr = obj(c.graphs, 'graphs');
  const graphs: ModelCard['graphs'] = { encoder: fileName(gr.encoder, 'graphs.encoder'), sarm: fileName(gr.sarm, 'graphs.sarm') };
  if (grm.present) graphs.grm = fileName(gr.grm, 'graphs.grm');
  else if (gr.grm !== undefined) fail('graphs.grm', 'is given but grm.present is false');

  return {
    format: CARD_FORMAT,
    name,
    version,
    views,
    image: { height, width, resize },
    featureDim,
    window,
    fps: c.fps,
    tasks,
    instructions,
    stages,
    maxStages: Math.max(...stages.map((s) => s.length)),
    composition,
    missingViews,
    grm,
    graphs,
    provenance: c.provenance === undefined ? {} : obj(c.provenance, 'provenance'),
    metrics: c.metrics === undefined ? {} : obj(c.metrics, 'metrics'),
  };
}

function parseStages(v: unknown, field: string): Stage[] {
  if (!Array.isArray(v) || v.length === 0) fail(field, 'must be a non-empty array of {name, prior}');
  const stages = v.map((s, i) => {
    const o = obj(s, `${field}[${i}]`);
    const prior = o.prior;
    if (typeof prior !== 'number' || !(prior > 0) || prior > 1) fail(`${field}[${i}].prior`, 'must be a number in (0, 1]');
    return { name: str(o.name, `${field}[${i}].name`), prior };
  });
  if (new Set(stages.map((s) => s.name)).size !== stages.length) fail(field, 'must not repeat a stage name');
  const sum = stages.reduce((a, s) => a + s.prior, 0);
  if (Math.abs(sum - 1) > PRIOR_SUM_TOLERANCE) fail(`${field}[*].prior`, `must sum to 1 (they sum to ${sum.toFixed(6)})`);
  return stages;
}

/** An instruction as prompts are compared to it: case, extra whitespace and one trailing `.`/`!` ignored. */
export function normalizeInstruction(text: string): string {
  return text.trim().replace(/\s+/g, ' ').replace(/[.!]$/, '').trim().toLowerCase();
}

/** `instructions`: {task: [instruction, ...aliases]}; one text names one task, and no text is another task's id. */
function parseInstructions(raw: unknown, tasks: readonly string[]): Record<string, string[]> {
  const map = obj(raw, 'instructions');
  const owner = new Map<string, string>();
  const out: Record<string, string[]> = {};
  for (const [task, texts] of Object.entries(map)) {
    const field = `instructions.${task}`;
    if (!tasks.includes(task)) fail(field, 'names a task that is not in `tasks`');
    const list = uniqueStrings(texts, field);
    for (const [i, text] of list.entries()) {
      if (text.length > MAX_INSTRUCTION_CHARS) fail(`${field}[${i}]`, `must be at most ${MAX_INSTRUCTION_CHARS} characters`);
      const key = normalizeInstruction(text);
      if (key === '') fail(`${field}[${i}]`, 'must have words');
      const other = owner.get(key) ?? (tasks.includes(text) && text !== task ? text : undefined);
      if (other !== undefined && other !== task) fail(`${field}[${i}]`, `is also task "${other}"'s; one text must name one task`);
      owner.set(key, task);
    }
    out[task] = list;
  }
  return out;
}
