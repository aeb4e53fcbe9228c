// A ProgressModel whose graphs run on a worker thread (models/inference-worker.ts), so ONNX Runtime's
// synchronous `run` never stalls the server's event loop: sockets keep being read and answered, and
// images keep being decoded on libuv's threads, while a batch computes. Requests are posted to the
// worker in call order; their arrays are copied (structured clone), results come back the same way.
//
//   const model = await WorkerProgressModel.load(dir, { providers: ['cpu'] });
//
// Load errors keep their codes (SW_ERR_MODEL_NOT_FOUND, SW_ERR_MODEL_CARD, ...). If the worker dies,
// every pending and later call fails with SW_ERR_INFERENCE.

import { Worker } from 'node:worker_threads';
import type { ModelCard } from './card.ts';
import { ERROR_CODES, StagewardError, type ErrorCode } from '../core/errors.ts';
import type { GrmBatch, LoadOptions, ProgressModel, SarmBatch, SarmOutput } from './package.ts';
import type { ExecutionProvider } from './runtime.ts';

const BOOT = new URL('../core/worker-boot.mjs', import.meta.url);
const ENTRY = new URL('./inference-worker.ts', import.meta.url).href;

interface Pending {
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
}

function errorOf(code: string, message: string): StagewardError {
  return new StagewardError(Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : 'SW_ERR_INTERNAL', message);
}

/** A typed array that owns exactly its bytes (structured clone copies a view's whole buffer). */
function own<T extends Float32Array | Uint8Array>(a: T): T {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : (a.slice() as T);
}

export class WorkerProgressModel implements ProgressModel {
  readonly card: ModelCard;
  readonly providers: Record<string, ExecutionProvider>;
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #dead: StagewardError | undefined;

  private constructor(worker: Worker, card: ModelCard, providers: Record<string, ExecutionProvider>) {
    this.#worker = worker;
    this.card = card;
    this.providers = providers;
    worker.on('message', (m: { id?: number; ok?: boolean; result?: unknown; code?: string; message?: string }) => {
      if (m.id === undefined) return;
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(errorOf(m.code!, m.message!));
    });
    const die = (why: string) => {
      this.#dead ??= new StagewardError('SW_ERR_INFERENCE', `the inference thread stopped (${why})`);
      for (const p of this.#pending.values()) p.reject(this.#dead);
      this.#pending.clear();
    };
    worker.on('error', (err) => die(err.message.split('\n')[0]!));
    worker.on('exit', (code) => die(`exit code ${code}`));
  }

  /** Start a worker thread and load the package in it. */
  static load(dir: string, options: Omit<LoadOptions, 'log'> & { log?: (m: string) => void } = {}): Promise<WorkerProgressModel> {
    const { log = (m: string) => console.warn(m), ...rest } = options;
    const worker = new Worker(BOOT, { workerData: { entry: ENTRY, dir, options: rest } });
    return new Promise((resolve, reject) => {
      const onMessage = (m: {
        type?: string;
        card?: ModelCard;
        providers?: Record<string, ExecutionProvider>;
        code?: string;
        message?: string;
      }) => {
        if (m.type === 'log') log(m.message!);
        else if (m.type === 'ready') {
          cleanup();
          resolve(new WorkerProgressModel(worker, m.card!, m.providers!));
        } else if (m.type === 'failed') {
          cleanup();
          reject(errorOf(m.code!, m.message!));
          void worker.terminate();
        }
      };
      const onError = (err: Error) => {
        cleanup();
        reject(new StagewardError('SW_ERR_MODEL_LOAD', `the inference thread failed to start: ${err.message.split('\n')[0]}`));
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new StagewardError('SW_ERR_MODEL_LOAD', `the inference thread exited while loading (code ${code})`));
      };
      const cleanup = () => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        worker.off('message', onMessage);
        worker.on('message', (m: { type?: string; message?: string }) => {
          if (m.type === 'log') log(m.message!);
        });
      };
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
    });
  }

  #call<T>(op: 'encode' | 'sarm' | 'grm' | 'close', args: unknown): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, op, args });
    });
  }

  encode(pixels: Uint8Array, n: number): Promise<Float32Array> {
    return this.#call('encode', { pixels: own(pixels), n });
  }

  /** `uncertainty` comes back when the package's SARM graph has it (the worker posts the whole output). */
  sarm(batch: SarmBatch): Promise<SarmOutput> {
    return this.#call('sarm', { features: own(batch.features), valid: own(batch.valid), task: batch.task });
  }

  grm(batch: GrmBatch): Promise<Float32Array> {
    return this.#call('grm', {
      start: own(batch.start),
      goal: own(batch.goal),
      before: own(batch.before),
      after: own(batch.after),
      task: batch.task,
    });
  }

  /** Close the model in the worker, then end the thread. */
  async close(): Promise<void> {
    if (!this.#dead) await this.#call('close', null).catch(() => undefined);
    this.#dead ??= new StagewardError('SW_ERR_SHUTTING_DOWN', 'the model is closed');
    await this.#worker.terminate();
  }
}
