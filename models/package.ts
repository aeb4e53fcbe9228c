// Model package loading (models/PACKAGE.md): read model.json, open the graphs, check the card against
// the graphs' declared inputs and outputs, warm up. A package the engine cannot serve never loads.
//
// `ProgressModel` is the interface the engine calls; `OnnxProgressModel` is its ONNX Runtime
// implementation, holding one session per graph for all episodes.

import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseCard, type ModelCard } from './card.ts';
import { StagewardError } from '../core/errors.ts';
import {
  OnnxGraph,
  providersFrom,
  float32Tensor,
  int64Tensor,
  uint8Tensor,
  type ExecutionProvider,
  type GraphValueInfo,
  type RuntimeOptions,
} from './runtime.ts';

/** SARM head inputs for B windows. */
export interface SarmBatch {
  /** [B, T, V, D] */
  features: Float32Array;
  /** [B, T], 1 = real frame, 0 = padding */
  valid: Float32Array;
  /** [B] task indices */
  task: number[];
}

/** GRM head inputs for B pairs; each [B, V, D]. */
export interface GrmBatch {
  start: Float32Array;
  goal: Float32Array;
  before: Float32Array;
  after: Float32Array;
  task: number[];
}

/** What the SARM head gives per window; `uncertainty` only from a package with an ensemble (PACKAGE.md). */
export interface SarmOutput {
  stageLogits: Float32Array;
  tau: Float32Array;
  uncertainty?: Float32Array;
}

export interface ProgressModel {
  readonly card: ModelCard;
  /** Which provider each graph runs on. */
  readonly providers: Record<string, ExecutionProvider>;
  /** pixels uint8 [N, H, W, 3] at the card's resolution -> features float32 [N, D]. */
  encode(pixels: Uint8Array, n: number): Promise<Float32Array>;
  /** -> stage_logits [B, K], tau [B], and uncertainty [B] when the package's SARM graph has that output. */
  sarm(batch: SarmBatch): Promise<SarmOutput>;
  /** -> hop [B]; throws when the package has no GRM graph. */
  grm(batch: GrmBatch): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface LoadOptions extends RuntimeOptions {
  /** Run each graph once at load so the first real step is not slow. Default true. */
  warmup?: boolean;
}

export class OnnxProgressModel implements ProgressModel {
  readonly card: ModelCard;
  readonly dir: string;
  readonly #encoder: OnnxGraph;
  readonly #sarm: OnnxGraph;
  readonly #grm: OnnxGraph | undefined;
  #closing: Promise<void> | undefined;

  private constructor(dir: string, card: ModelCard, encoder: OnnxGraph, sarm: OnnxGraph, grm: OnnxGraph | undefined) {
    this.dir = dir;
    this.card = card;
    this.#encoder = encoder;
    this.#sarm = sarm;
    this.#grm = grm;
  }

  static async load(dir: string, options: LoadOptions = {}): Promise<OnnxProgressModel> {
    const root = resolve(dir);
    const card = parseCard(await readJson(join(root, 'model.json')));
    const open = async (file: string, providers = options.providers) => {
      const path = join(root, file);
      await mustExist(path, `graph ${file} named in model.json`);
      return OnnxGraph.open(path, { ...options, providers });
    };
    const encoder = await open(card.graphs.encoder);
    // The heads start from the provider the encoder got, so a missing provider is tried (and logged) once.
    const rest = providersFrom(options.providers ?? ['cpu'], encoder.provider);
    const sarm = await open(card.graphs.sarm, rest);
    const grm = card.graphs.grm === undefined ? undefined : await open(card.graphs.grm, rest);
    const model = new OnnxProgressModel(root, card, encoder, sarm, grm);
    try {
      checkGraphs(card, encoder, sarm, grm);
      if (options.warmup ?? true) await model.warmup();
    } catch (err) {
      await model.close();
      throw err;
    }
    return model;
  }

  get providers(): Record<string, ExecutionProvider> {
    const out: Record<string, ExecutionProvider> = { encoder: this.#encoder.provider, sarm: this.#sarm.provider };
    if (this.#grm) out.grm = this.#grm.provider;
    return out;
  }

  /** Calls after close() fail with the code every ProgressModel uses for it. */
  #open(): void {
    if (this.#closing) throw new StagewardError('SW_ERR_SHUTTING_DOWN', `model ${this.card.name} is closed`);
  }

  async encode(pixels: Uint8Array, n: number): Promise<Float32Array> {
    this.#open();
    const { height, width } = this.card.image;
    const out = await this.#encoder.run({ pixels: uint8Tensor(pixels, [n, height, width, 3]) });
    return out.features!.data as Float32Array;
  }

  async sarm(batch: SarmBatch): Promise<SarmOutput> {
    this.#open();
    const { length } = this.card.window;
    const b = batch.task.length;
    const out = await this.#sarm.run({
      features: float32Tensor(batch.features, [b, length, this.card.views.length, this.card.featureDim]),
      valid: float32Tensor(batch.valid, [b, length]),
      task: int64Tensor(batch.task),
    });
    const result: SarmOutput = { stageLogits: out.stage_logits!.data as Float32Array, tau: out.tau!.data as Float32Array };
    if (out.uncertainty) result.uncertainty = out.uncertainty.data as Float32Array;
    return result;
  }

  async grm(batch: GrmBatch): Promise<Float32Array> {
    this.#open();
    if (!this.#grm) throw new StagewardError('SW_ERR_BAD_OPTION', `model ${this.card.name} has no GRM head`);
    const dims = [batch.task.length, this.card.views.length, this.card.featureDim];
    const out = await this.#grm.run({
      start: float32Tensor(batch.start, dims),
      goal: float32Tensor(batch.goal, dims),
      before: float32Tensor(batch.before, dims),
      after: float32Tensor(batch.after, dims),
      task: int64Tensor(batch.task),
    });
    return out.hop!.data as Float32Array;
  }

  /** One call per graph with the shapes a real step uses. */
  async warmup(): Promise<void> {
    const { height, width } = this.card.image;
    const v = this.card.views.length;
    const d = this.card.featureDim;
    const t = this.card.window.length;
    await this.encode(new Uint8Array(v * height * width * 3), v);
    await this.sarm({ features: new Float32Array(t * v * d), valid: new Float32Array(t).fill(1), task: [0] });
    if (this.#grm) {
      const z = () => new Float32Array(3 * v * d);
      await this.grm({ start: z(), goal: z(), before: z(), after: z(), task: [0, 0, 0] });
    }
  }

  /** Release the sessions; a second call waits for the first. */
  close(): Promise<void> {
    this.#closing ??= Promise.all([this.#encoder.release(), this.#sarm.release(), this.#grm?.release()]).then(() => undefined);
    return this.#closing;
  }
}

async function readJson(path: string): Promise<unknown> {
  await mustExist(path, 'model.json');
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new StagewardError('SW_ERR_MODEL_CARD', `model.json is not valid JSON: ${(err as Error).message}`);
  }
}

async function mustExist(path: string, what: string): Promise<void> {
  try {
    await stat(path);
  } catch {
    throw new StagewardError('SW_ERR_MODEL_NOT_FOUND', `${what} not found at ${path}`);
  }
}

type Dim = number | 'batch';
interface Expected {
  name: string;
  type: string;
  shape: Dim[];
  /** The card field a size comes from, per axis, for the error message. */
  fields: string[];
}

/** Compare each graph's declared inputs/outputs with what the card implies; refuse any mismatch. */
export function checkGraphs(card: ModelCard, encoder: OnnxGraph, sarm: OnnxGraph, grm: OnnxGraph | undefined): void {
  const { height, width } = card.image;
  const v = card.views.length;
  const d = card.featureDim;
  const t = card.window.length;
  const k = card.maxStages;
  const vd: Dim[] = ['batch', v, d];
  const vdFields = ['', 'views', 'feature_dim'];
  checkGraph(
    'encoder',
    encoder,
    [{ name: 'pixels', type: 'uint8', shape: ['batch', height, width, 3], fields: ['', 'image.height', 'image.width', '(RGB channels)'] }],
    [{ name: 'features', type: 'float32', shape: ['batch', d], fields: ['', 'feature_dim'] }],
  );
  checkGraph(
    'sarm',
    sarm,
    [
      { name: 'features', type: 'float32', shape: ['batch', t, v, d], fields: ['', 'window.length', 'views', 'feature_dim'] },
      { name: 'valid', type: 'float32', shape: ['batch', t], fields: ['', 'window.length'] },
      { name: 'task', type: 'int64', shape: ['batch'], fields: [''] },
    ],
    [
      { name: 'stage_logits', type: 'float32', shape: ['batch', k], fields: ['', 'stages (largest stage count)'] },
      { name: 'tau', type: 'float32', shape: ['batch'], fields: [''] },
      // optional: an ensemble package's per-window spread of the members' progress
      ...(sarm.outputs.some((o) => o.name === 'uncertainty')
        ? [{ name: 'uncertainty', type: 'float32', shape: ['batch' as Dim], fields: [''] }]
        : []),
    ],
  );
  if (grm) {
    checkGraph(
      'grm',
      grm,
      ['start', 'goal', 'before', 'after']
        .map((name) => ({ name, type: 'float32', shape: vd, fields: vdFields }))
        .concat([{ name: 'task', type: 'int64', shape: ['batch'], fields: [''] }]),
      [{ name: 'hop', type: 'float32', shape: ['batch'], fields: [''] }],
    );
  }
}

function checkGraph(graph: string, g: OnnxGraph, inputs: Expected[], outputs: Expected[]): void {
  const bad = (msg: string): never => {
    throw new StagewardError('SW_ERR_MODEL_GRAPH', `${graph}.onnx: ${msg}`);
  };
  const compare = (kind: 'input' | 'output', declared: GraphValueInfo[], expected: Expected[]) => {
    const names = declared
      .map((x) => x.name)
      .sort()
      .join(', ');
    const want = expected
      .map((x) => x.name)
      .sort()
      .join(', ');
    if (names !== want) bad(`${kind}s are [${names}], the contract needs [${want}]`);
    for (const e of expected) {
      const got = declared.find((x) => x.name === e.name)!;
      if (got.type !== e.type) bad(`${kind} \`${e.name}\` has dtype ${got.type}, the contract needs ${e.type}`);
      if (got.shape.length !== e.shape.length)
        bad(`${kind} \`${e.name}\` has rank ${got.shape.length}, the contract needs ${e.shape.length}`);
      e.shape.forEach((want, i) => {
        const have = got.shape[i];
        if (want === 'batch') {
          if (typeof have === 'number' && have !== -1)
            bad(`${kind} \`${e.name}\` axis ${i} must be a dynamic batch axis, it is fixed at ${have}`);
        } else if (have !== want) {
          bad(`${kind} \`${e.name}\` axis ${i} is ${String(have)}, but model.json \`${e.fields[i]}\` says ${want}`);
        }
      });
    }
  };
  compare('input', g.inputs, inputs);
  compare('output', g.outputs, outputs);
}
