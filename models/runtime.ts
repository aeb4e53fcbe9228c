// ONNX Runtime sessions: one per graph, shared by every episode. Picks execution providers from the
// configuration in order, falls back to CPU with a logged reason. `run` returns a promise, but
// onnxruntime-node 1.30 computes on the calling thread: a large batch holds the event loop (46 ms for
// 512 frames). Servers therefore host the model on a worker thread (models/worker-model.ts).

import * as ort from 'onnxruntime-node';
import { StagewardError } from '../core/errors.ts';

export type ExecutionProvider = 'cpu' | 'webgpu' | 'cuda' | 'tensorrt';
export const EXECUTION_PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'webgpu', 'cuda', 'tensorrt'];

export interface RuntimeOptions {
  /** Providers to try, in order; CPU is always the last resort. Default ['cpu']. */
  providers?: ExecutionProvider[];
  /**
   * Threads inside one operator. Default 1: a reward step is a handful of small batches, and the
   * graphs already run in parallel on libuv's threads; ONNX Runtime's own pool (0 = one per core)
   * spins and, on a small machine, multiplies tail latency (bench engine: p99 9.3 ms vs 1.1 ms on
   * 2 cores). Raise it for large batches.
   */
  intraOpThreads?: number;
  /** Threads across operators (0: ONNX Runtime decides). */
  interOpThreads?: number;
  /** Log sink for provider fallbacks; default console.warn. */
  log?: (message: string) => void;
}

export type TensorFeed = Record<string, ort.Tensor>;

const ORT_LOG_LEVELS = ['verbose', 'info', 'warning', 'error', 'fatal'] as const;
type OrtLogLevel = (typeof ORT_LOG_LEVELS)[number];

/**
 * ONNX Runtime's own stderr logging: 'fatal' by default, because every failure it would print (a
 * provider that cannot load) reaches the caller as an error or one clear log line of ours.
 * STAGEWARD_ORT_LOG_LEVEL=warning (or verbose, info, error) brings its messages back for debugging.
 */
function configureOrtLogging(): void {
  const wanted = process.env.STAGEWARD_ORT_LOG_LEVEL;
  ort.env.logLevel = ORT_LOG_LEVELS.includes(wanted as OrtLogLevel) ? (wanted as OrtLogLevel) : 'fatal';
}

export interface GraphValueInfo {
  name: string;
  type: string;
  /** Fixed sizes as numbers, symbolic (dynamic) axes as strings. */
  shape: ReadonlyArray<number | string>;
}

/** One opened graph. */
export class OnnxGraph {
  readonly provider: ExecutionProvider;
  readonly inputs: GraphValueInfo[];
  readonly outputs: GraphValueInfo[];
  readonly #session: ort.InferenceSession;

  private constructor(session: ort.InferenceSession, provider: ExecutionProvider) {
    this.#session = session;
    this.provider = provider;
    const info = (m: ort.InferenceSession.ValueMetadata): GraphValueInfo =>
      m.isTensor ? { name: m.name, type: m.type, shape: m.shape } : { name: m.name, type: 'non-tensor', shape: [] };
    this.inputs = session.inputMetadata.map(info);
    this.outputs = session.outputMetadata.map(info);
  }

  /** Open `path` on the first provider of `options.providers` that works, CPU last. */
  static async open(path: string, options: RuntimeOptions = {}): Promise<OnnxGraph> {
    const providers = validateProviders(options.providers ?? ['cpu']);
    configureOrtLogging();
    const log = options.log ?? ((m: string) => console.warn(m));
    const base: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads(options.intraOpThreads ?? 1, 'intraOpThreads'),
      interOpNumThreads: threads(options.interOpThreads, 'interOpThreads'),
    };
    const failures: string[] = [];
    for (const provider of providers) {
      try {
        const session = await ort.InferenceSession.create(path, { ...base, executionProviders: [provider] });
        return new OnnxGraph(session, provider);
      } catch (err) {
        const reason = shortReason(err);
        failures.push(`${provider}: ${reason}`);
        if (provider !== 'cpu') log(`stageward: execution provider "${provider}" failed for ${path} (${reason}); trying the next one`);
      }
    }
    throw new StagewardError('SW_ERR_MODEL_LOAD', `could not open ${path}: ${failures.join('; ')}`);
  }

  async run(feed: TensorFeed): Promise<Record<string, ort.Tensor>> {
    try {
      return await this.#session.run(feed);
    } catch (err) {
      const reason = shortReason(err);
      throw new StagewardError('SW_ERR_INFERENCE', `inference failed: ${reason}`, { cause: err });
    }
  }

  async release(): Promise<void> {
    await this.#session.release();
  }
}

/** First line of an ONNX Runtime error, without its source-location prefixes. */
function shortReason(err: unknown): string {
  const line = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
  return line.replace(/\/onnxruntime_src\/\S+:\d+ (\S+\([^)]*\)(::<lambda\(\)>)? )?/g, '').trim();
}

/** `list` from `provider` on: a graph opened after another need not retry providers that failed. */
export function providersFrom(list: readonly ExecutionProvider[], provider: ExecutionProvider): ExecutionProvider[] {
  const i = list.indexOf(provider);
  return i < 0 ? [provider] : list.slice(i);
}

function validateProviders(list: readonly string[]): ExecutionProvider[] {
  if (!Array.isArray(list) || list.length === 0) throw new StagewardError('SW_ERR_RUNTIME_CONFIG', '`providers` must be a non-empty list');
  for (const p of list) {
    if (!EXECUTION_PROVIDERS.includes(p as ExecutionProvider)) {
      throw new StagewardError(
        'SW_ERR_RUNTIME_CONFIG',
        `\`providers\`: unknown execution provider "${p}" (use ${EXECUTION_PROVIDERS.join(', ')})`,
      );
    }
  }
  const out = [...list] as ExecutionProvider[];
  if (!out.includes('cpu')) out.push('cpu');
  return out;
}

function threads(v: number | undefined, field: string): number {
  if (v === undefined) return 0;
  if (!Number.isInteger(v) || v < 0 || v > 1024)
    throw new StagewardError('SW_ERR_RUNTIME_CONFIG', `\`${field}\` must be an integer in [0, 1024]`);
  return v;
}

export function float32Tensor(data: Float32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}
export function uint8Tensor(data: Uint8Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('uint8', data, dims);
}
export function int64Tensor(values: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [values.length]);
}
