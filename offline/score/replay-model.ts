// A ProgressModel that answers an engine Episode from results computed beforehand in large batches.
// Offline scoring runs the encoder and the heads over many frames per ONNX Runtime call, then steps a
// real `Episode` (models/engine.ts) frame by frame with this model behind it: every piece of math
// after the graphs (softmax, stage, tau clamp, SARM composition, GRM fusion, shaping) is the
// engine's own code, so the result is the online causal path's by construction.
//
// Each queued step holds the features its encode call returns and, when the head ran for it, the
// head's inputs as batched plus its outputs. When the Episode calls a head, its inputs are compared
// with the batched ones value for value: a mismatch (a window built differently) is an internal
// error, never a silently different number. Steps whose head did not run (unscored frames of a
// strided run) get placeholder outputs that the caller discards (with no uncertainty: the scorer
// interpolates it between scored frames as it does progress).

import type { ModelCard } from '../../models/card.ts';
import { StagewardError } from '../../core/errors.ts';
import type { GrmBatch, ProgressModel, SarmBatch, SarmOutput } from '../../models/package.ts';
import type { ExecutionProvider } from '../../models/runtime.ts';

/** A row range of a batched head call: the batch arrays and the first row, `rows` rows long. */
export interface BatchRows<B> {
  batch: B;
  row: number;
  rows: number;
}

export interface ReplayStep {
  /** Frame index in the episode (checked against the Episode's own order). */
  frame: number;
  /** [V*D] features of the frame, or zeros when no scored window reads it. */
  features: Float32Array;
  /** `uncertainty` when the package's SARM graph has that output. */
  sarm?: { input: BatchRows<SarmBatch>; stageLogits: Float32Array; tau: number; uncertainty?: number };
  grm?: { input: BatchRows<GrmBatch>; hops: Float32Array };
}

export class ReplayModel implements ProgressModel {
  readonly card: ModelCard;
  readonly providers: Record<string, ExecutionProvider> = { encoder: 'cpu', sarm: 'cpu', grm: 'cpu' };
  readonly #steps: ReplayStep[] = [];
  #encodeAt = 0;
  #sarmAt = 0;
  #grmAt = 0;
  readonly #placeholderLogits: Float32Array;
  readonly #usesGrm: boolean;
  #closed = false;

  /** `usesGrm`: the Episode runs the GRM head (its progress source is not "sarm" alone). */
  constructor(card: ModelCard, usesGrm: boolean) {
    this.card = card;
    this.#usesGrm = usesGrm;
    this.#placeholderLogits = new Float32Array(card.maxStages);
  }

  #answered(): number {
    return Math.min(this.#encodeAt, this.#sarmAt, this.#usesGrm ? this.#grmAt : Infinity);
  }

  /** Queue the results of the next frame(s). */
  push(...steps: ReplayStep[]): void {
    this.#steps.push(...steps);
  }

  /** Drop the steps every graph has answered, so memory stays bounded over a long episode. */
  compact(): void {
    const done = this.#answered();
    if (done === 0) return;
    this.#steps.splice(0, done);
    this.#encodeAt -= done;
    this.#sarmAt -= done;
    this.#grmAt -= done;
  }

  #checkOpen(): void {
    if (this.#closed) throw new StagewardError('SW_ERR_SHUTTING_DOWN', 'the model is closed');
  }

  #next(at: number, graph: string): ReplayStep {
    const step = this.#steps[at];
    if (step === undefined)
      throw new StagewardError('SW_ERR_INTERNAL', `offline scoring: the engine asked the ${graph} for a frame that was not computed`);
    return step;
  }

  async encode(_pixels: Uint8Array, n: number): Promise<Float32Array> {
    this.#checkOpen();
    if (n !== this.card.views.length)
      throw new StagewardError('SW_ERR_INTERNAL', `offline scoring: the engine encoded ${n} images, expected one per view`);
    return this.#next(this.#encodeAt++, 'encoder').features;
  }

  async sarm(batch: SarmBatch): Promise<SarmOutput> {
    this.#checkOpen();
    const step = this.#next(this.#sarmAt++, 'SARM head');
    if (step.sarm === undefined) {
      // an unscored frame of a strided run: the caller replaces what the engine makes of this
      return { stageLogits: this.#placeholderLogits, tau: new Float32Array(1) };
    }
    const { input } = step.sarm;
    const t = this.card.window.length;
    const vd = this.card.views.length * this.card.featureDim;
    same(batch.features, input.batch.features, input.row * t * vd, t * vd, step.frame, 'SARM window features');
    same(batch.valid, input.batch.valid, input.row * t, t, step.frame, 'SARM window mask');
    if (batch.task[0] !== input.batch.task[input.row]) mismatch(step.frame, 'SARM task');
    const out: SarmOutput = { stageLogits: step.sarm.stageLogits, tau: Float32Array.of(step.sarm.tau) };
    if (step.sarm.uncertainty !== undefined) out.uncertainty = Float32Array.of(step.sarm.uncertainty);
    return out;
  }

  async grm(batch: GrmBatch): Promise<Float32Array> {
    this.#checkOpen();
    if (!this.card.grm.present) throw new StagewardError('SW_ERR_BAD_OPTION', `model ${this.card.name} has no GRM head`);
    const step = this.#next(this.#grmAt++, 'GRM head');
    if (step.grm === undefined)
      throw new StagewardError('SW_ERR_INTERNAL', `offline scoring: GRM hops of frame ${step.frame} were not computed`);
    const { input, hops } = step.grm;
    const vd = this.card.views.length * this.card.featureDim;
    if (batch.task.length !== input.rows) mismatch(step.frame, 'GRM pair count');
    for (const key of ['start', 'goal', 'before', 'after'] as const)
      same(batch[key], input.batch[key], input.row * vd, input.rows * vd, step.frame, `GRM ${key}`);
    return hops;
  }

  /** Steps not yet answered by every graph (tests). */
  get queued(): number {
    return this.#steps.length - this.#answered();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

function same(got: Float32Array, batched: Float32Array, offset: number, length: number, frame: number, what: string): void {
  if (got.length !== length) mismatch(frame, `${what} length`);
  for (let i = 0; i < length; i++) {
    if (!Object.is(got[i], batched[offset + i])) mismatch(frame, what);
  }
}

function mismatch(frame: number, what: string): never {
  throw new StagewardError('SW_ERR_INTERNAL', `offline scoring: the engine's ${what} for frame ${frame} differ from the batched ones`);
}
