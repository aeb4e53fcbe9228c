// Rendering off the main thread: a few worker threads (render-worker.ts) that turn scene snapshots into
// frames, so the simulator's physics, the reward model and the renders use the machine's cores at
// once. A request goes to the thread with the fewest pending requests; frames are byte-identical to
// rendering on the main thread (the same ray caster, the same snapshot).
//
//   const pool = await RenderPool.start(2);
//   const frames = await pool.render(env.snapshot(), ['front', 'side', 'wrist'], 96, 96);
//   await pool.close();
//
// If a thread dies, its pending and later requests fail with SW_ERR_INTERNAL.

import { Worker } from 'node:worker_threads';
import { ERROR_CODES, StagewardError, type ErrorCode } from '../../core/errors.ts';
import type { RawImage } from '../../core/image.ts';
import type { SceneSnapshot } from '../types.ts';

const BOOT = new URL('../../core/worker-boot.mjs', import.meta.url);
const ENTRY = new URL('./render-worker.ts', import.meta.url).href;
/** Most render threads a pool starts. */
export const MAX_RENDER_THREADS = 16;

interface Pending {
  resolve: (frames: Record<string, RawImage>) => void;
  reject: (err: unknown) => void;
  views: string[];
}

class RenderThread {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  dead: StagewardError | undefined;

  constructor(worker: Worker) {
    this.worker = worker;
    worker.on('message', (m: { id?: number; ok?: boolean; frames?: RawImage[]; code?: string; message?: string }) => {
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(Object.fromEntries(p.views.map((v, i) => [v, m.frames![i]!])));
      else p.reject(new StagewardError(Object.hasOwn(ERROR_CODES, m.code!) ? (m.code as ErrorCode) : 'SW_ERR_INTERNAL', m.message!));
    });
    const die = (why: string) => {
      this.dead ??= new StagewardError('SW_ERR_INTERNAL', `a render thread stopped (${why})`);
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    };
    worker.on('error', (err) => die(err.message.split('\n')[0]!));
    worker.on('exit', (code) => die(`exit code ${code}`));
  }
}

export class RenderPool {
  readonly #threads: RenderThread[];
  #nextId = 1;

  private constructor(threads: RenderThread[]) {
    this.#threads = threads;
  }

  /** Start `threads` render threads and wait until each is ready. */
  static async start(threads: number): Promise<RenderPool> {
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_RENDER_THREADS) {
      throw new StagewardError('SW_ERR_BAD_OPTION', `render threads must be an integer in [1, ${MAX_RENDER_THREADS}]`);
    }
    const workers = Array.from({ length: threads }, () => new Worker(BOOT, { workerData: { entry: ENTRY } }));
    try {
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve, reject) => {
              const onMessage = (m: { type?: string }) => {
                if (m.type !== 'ready') return;
                w.off('message', onMessage);
                w.off('error', onError);
                resolve();
              };
              const onError = (err: Error) =>
                reject(new StagewardError('SW_ERR_INTERNAL', `a render thread failed to start: ${err.message.split('\n')[0]}`));
              w.on('message', onMessage);
              w.once('error', onError);
            }),
        ),
      );
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw err;
    }
    return new RenderPool(workers.map((w) => new RenderThread(w)));
  }

  get threads(): number {
    return this.#threads.length;
  }

  /** RGB uint8 frames of `views` (camera names of the snapshot), each width x height. */
  render(scene: SceneSnapshot, views: readonly string[], width: number, height: number): Promise<Record<string, RawImage>> {
    let thread = this.#threads[0]!;
    for (const t of this.#threads) if (t.pending.size < thread.pending.size) thread = t;
    if (thread.dead) return Promise.reject(thread.dead);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      thread.pending.set(id, { resolve, reject, views: [...views] });
      thread.worker.postMessage({ id, scene, views, width, height });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#threads.map((t) => t.worker.terminate()));
  }
}
