// Dynamic batching: a `ProgressModel` that queues encode / sarm / grm requests from every episode and
// runs each queue as one call of the wrapped model per batch (so one ONNX Runtime call per graph per
// batch), then splits the outputs back to the callers.
//
// Per graph, queued requests launch together when they hold `maxBatch` rows (images for the encoder,
// windows for SARM, pairs for GRM), or when the oldest has waited `maxBatchWaitMs`, whichever comes
// first, as long as fewer than `maxConcurrentBatches` batches of that graph are running; otherwise
// they launch as soon as one finishes (they have waited already). A request is never split: one
// larger than `maxBatch` runs as a batch of its own. `maxBatchWaitMs` 0 launches what arrived in the
// same event-loop turn. A failed call fails every request of its batch with the same error.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelCard } from './card.ts';
import { StagewardError } from '../core/errors.ts';
import { REPO_ROOT } from '../core/paths.ts';
import type { GrmBatch, ProgressModel, SarmBatch, SarmOutput } from './package.ts';
import type { ExecutionProvider } from './runtime.ts';

export interface BatchingOptions {
  /** Most rows in one call: images (encoder), windows (SARM) or pairs (GRM). */
  maxBatch: number;
  /** Longest a request waits for others to join its batch, in ms (when a batch slot is free). */
  maxBatchWaitMs: number;
  /** Batches of one graph that may run at once (1 suits a GPU; 2 lets two CPU cores overlap). */
  maxConcurrentBatches: number;
  /** Called after each call of the wrapped model (metrics). */
  onBatch?: (event: BatchEvent) => void;
}

export type GraphName = 'encoder' | 'sarm' | 'grm';

export interface BatchEvent {
  graph: GraphName;
  /** Rows in the call. */
  rows: number;
  /** Requests merged into it. */
  requests: number;
  /** Wall time of the call, ms. */
  ms: number;
  /** Longest time a request of the batch waited in the queue, ms. */
  waitedMs: number;
  ok: boolean;
}

/**
 * The `batching` section of configs/default.json, read once when this module loads: the one source
 * of the batching defaults, for the server (through its config) and for library callers alike.
 */
export const DEFAULT_BATCHING: BatchingOptions = readDefaultBatching(join(REPO_ROOT, 'configs', 'default.json'));

function readDefaultBatching(file: string): BatchingOptions {
  let json: { batching?: Record<string, unknown> };
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new StagewardError('SW_ERR_CONFIG', `${file} cannot be read as JSON: ${(err as Error).message}`);
  }
  const b = json.batching ?? {};
  const options = {
    maxBatch: b.maxBatch,
    maxBatchWaitMs: b.maxBatchWaitMs,
    maxConcurrentBatches: b.maxConcurrentBatches,
  } as BatchingOptions;
  try {
    checkBatchingOptions(options);
  } catch (err) {
    throw new StagewardError('SW_ERR_CONFIG', `${file} \`batching\`: ${(err as Error).message}`);
  }
  return Object.freeze(options);
}

export function checkBatchingOptions(o: BatchingOptions): void {
  const bad = (m: string): never => {
    throw new StagewardError('SW_ERR_RUNTIME_CONFIG', m);
  };
  if (!Number.isInteger(o.maxBatch) || o.maxBatch < 1 || o.maxBatch > 4096) bad('`maxBatch` must be an integer in [1, 4096]');
  if (typeof o.maxBatchWaitMs !== 'number' || !(o.maxBatchWaitMs >= 0 && o.maxBatchWaitMs <= 1000))
    bad('`maxBatchWaitMs` must be a number in [0, 1000]');
  if (!Number.isInteger(o.maxConcurrentBatches) || o.maxConcurrentBatches < 1 || o.maxConcurrentBatches > 64)
    bad('`maxConcurrentBatches` must be an integer in [1, 64]');
}

interface Pending<Req, Res> {
  req: Req;
  rows: number;
  at: number;
  resolve: (r: Res) => void;
  reject: (e: unknown) => void;
}

/** One graph's queue: merges requests, runs them, splits the result. */
class BatchQueue<Req, Res> {
  readonly #graph: GraphName;
  readonly #opts: BatchingOptions;
  readonly #run: (reqs: Req[], rows: number[]) => Promise<Res[]>;
  #queue: Pending<Req, Res>[] = [];
  #rows = 0;
  #running = 0;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #closed = false;

  constructor(graph: GraphName, opts: BatchingOptions, run: (reqs: Req[], rows: number[]) => Promise<Res[]>) {
    this.#graph = graph;
    this.#opts = opts;
    this.#run = run;
  }

  get depth(): number {
    return this.#queue.length;
  }

  get running(): number {
    return this.#running;
  }

  push(req: Req, rows: number): Promise<Res> {
    if (this.#closed) return Promise.reject(new StagewardError('SW_ERR_SHUTTING_DOWN', 'the model is closing'));
    return new Promise<Res>((resolve, reject) => {
      this.#queue.push({ req, rows, at: performance.now(), resolve, reject });
      this.#rows += rows;
      this.#schedule();
    });
  }

  /** Launch now if a batch is full or overdue and a slot is free; else wait for the oldest's deadline. */
  #schedule(): void {
    this.#clearTimer();
    while (this.#queue.length > 0 && this.#running < this.#opts.maxConcurrentBatches) {
      const waited = performance.now() - this.#queue[0]!.at;
      if (this.#rows < this.#opts.maxBatch && waited < this.#opts.maxBatchWaitMs) break;
      this.#launch();
    }
    if (this.#queue.length === 0 || this.#running >= this.#opts.maxConcurrentBatches) return;
    const wait = this.#opts.maxBatchWaitMs - (performance.now() - this.#queue[0]!.at);
    if (this.#opts.maxBatchWaitMs === 0) this.#immediate = setImmediate(() => this.#fire());
    else this.#timer = setTimeout(() => this.#fire(), Math.max(0, wait));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#immediate = undefined;
    while (this.#queue.length > 0 && this.#running < this.#opts.maxConcurrentBatches) this.#launch();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }

  #launch(): void {
    const batch: Pending<Req, Res>[] = [];
    let rows = 0;
    while (this.#queue.length > 0) {
      const next = this.#queue[0]!;
      if (batch.length > 0 && rows + next.rows > this.#opts.maxBatch) break;
      batch.push(this.#queue.shift()!);
      rows += next.rows;
    }
    this.#rows -= rows;
    this.#running++;
    const t0 = performance.now();
    const waitedMs = t0 - batch[0]!.at;
    const done = (ok: boolean) => {
      this.#running--;
      this.#opts.onBatch?.({ graph: this.#graph, rows, requests: batch.length, ms: performance.now() - t0, waitedMs, ok });
      if (this.#queue.length > 0) this.#schedule();
    };
    this.#run(
      batch.map((p) => p.req),
      batch.map((p) => p.rows),
    ).then(
      (results) => {
        done(true);
        batch.forEach((p, i) => p.resolve(results[i]!));
      },
      (err: unknown) => {
        done(false);
        for (const p of batch) p.reject(err);
      },
    );
  }

  /** Run what is queued now (no more waiting), refuse new requests. */
  close(): void {
    this.#closed = true;
    this.#clearTimer();
    while (this.#queue.length > 0) this.#launch();
  }
}

function concat<T extends Float32Array | Uint8Array>(parts: T[], make: (n: number) => T): T {
  if (parts.length === 1) return parts[0]!;
  const out = make(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Split `data` into consecutive pieces of rows[i] * width values (views: no copy). */
function split(data: Float32Array, rows: number[], width: number): Float32Array[] {
  let o = 0;
  return rows.map((r) => {
    const piece = data.subarray(o, o + r * width);
    o += r * width;
    return piece;
  });
}

/** One float field of every request, end to end. */
function joined<R, K extends keyof R>(reqs: R[], key: K): Float32Array {
  return concat(
    reqs.map((r) => r[key] as Float32Array),
    (n) => new Float32Array(n),
  );
}

export class BatchingProgressModel implements ProgressModel {
  readonly card: ModelCard;
  readonly inner: ProgressModel;
  readonly options: BatchingOptions;
  readonly #encode: BatchQueue<{ pixels: Uint8Array }, Float32Array>;
  readonly #sarm: BatchQueue<SarmBatch, SarmOutput>;
  readonly #grm: BatchQueue<GrmBatch, Float32Array>;

  constructor(inner: ProgressModel, options: BatchingOptions = DEFAULT_BATCHING) {
    checkBatchingOptions(options);
    this.inner = inner;
    this.card = inner.card;
    this.options = options;
    const d = this.card.featureDim;
    const k = this.card.maxStages;
    this.#encode = new BatchQueue('encoder', options, async (reqs, rows) => {
      const n = rows.reduce((a, b) => a + b, 0);
      const features = await inner.encode(
        concat(
          reqs.map((r) => r.pixels),
          (m) => new Uint8Array(m),
        ),
        n,
      );
      return split(features, rows, d);
    });
    this.#sarm = new BatchQueue('sarm', options, async (reqs, rows) => {
      const out = await inner.sarm({
        features: joined(reqs, 'features'),
        valid: joined(reqs, 'valid'),
        task: reqs.flatMap((r) => r.task),
      });
      const logits = split(out.stageLogits, rows, k);
      const tau = split(out.tau, rows, 1);
      // an ensemble package's uncertainty is one value per window, split like tau
      const uncertainty = out.uncertainty && split(out.uncertainty, rows, 1);
      return rows.map((_, i): SarmOutput => {
        const r: SarmOutput = { stageLogits: logits[i]!, tau: tau[i]! };
        if (uncertainty) r.uncertainty = uncertainty[i]!;
        return r;
      });
    });
    this.#grm = new BatchQueue('grm', options, async (reqs, rows) => {
      const hop = await inner.grm({
        start: joined(reqs, 'start'),
        goal: joined(reqs, 'goal'),
        before: joined(reqs, 'before'),
        after: joined(reqs, 'after'),
        task: reqs.flatMap((r) => r.task),
      });
      return split(hop, rows, 1);
    });
  }

  get providers(): Record<string, ExecutionProvider> {
    return this.inner.providers;
  }

  /** Requests waiting per graph (not yet in a running call). */
  get queueDepth(): Record<GraphName, number> {
    return { encoder: this.#encode.depth, sarm: this.#sarm.depth, grm: this.#grm.depth };
  }

  /** Calls of the wrapped model running now, per graph. */
  get running(): Record<GraphName, number> {
    return { encoder: this.#encode.running, sarm: this.#sarm.running, grm: this.#grm.running };
  }

  encode(pixels: Uint8Array, n: number): Promise<Float32Array> {
    return this.#encode.push({ pixels }, n);
  }

  sarm(batch: SarmBatch): Promise<SarmOutput> {
    return this.#sarm.push(batch, batch.task.length);
  }

  grm(batch: GrmBatch): Promise<Float32Array> {
    if (!this.card.grm.present) return this.inner.grm(batch); // the wrapped model's own refusal
    return this.#grm.push(batch, batch.task.length);
  }

  /** Run what is queued, then close the wrapped model once its calls are done. */
  async close(): Promise<void> {
    this.#encode.close();
    this.#sarm.close();
    this.#grm.close();
    while (this.#encode.running + this.#sarm.running + this.#grm.running > 0) await new Promise((r) => setTimeout(r, 1));
    await this.inner.close();
  }
}
