import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxProgressModel } from '../../models/package.ts';
import { WorkerProgressModel } from '../../models/worker-model.ts';
import { expectCode, FIXTURE_MODEL_DIR, maxAbsDiff } from '../helpers.ts';

let worker: WorkerProgressModel;
let main: OnnxProgressModel;
beforeAll(async () => {
  [worker, main] = await Promise.all([WorkerProgressModel.load(FIXTURE_MODEL_DIR), OnnxProgressModel.load(FIXTURE_MODEL_DIR)]);
});
afterAll(async () => {
  await Promise.all([worker.close(), main.close()]);
});

describe('inference on a worker thread', () => {
  it('gives the same outputs as the model on the main thread, for every graph', async () => {
    expect(worker.card).toEqual(main.card);
    expect(worker.providers).toEqual(main.providers);
    const { height, width } = main.card.image;
    const v = main.card.views.length;
    const d = main.card.featureDim;
    const t = main.card.window.length;
    const pixels = new Uint8Array(2 * v * height * width * 3).map((_, i) => (i * 13) % 256);
    expect(maxAbsDiff(await worker.encode(pixels, 2 * v), await main.encode(pixels, 2 * v))).toBe(0);
    // A view into a larger buffer is sent as its own bytes only.
    const view = new Uint8Array(pixels.length + 10).subarray(5, 5 + pixels.length);
    view.set(pixels);
    expect(maxAbsDiff(await worker.encode(view, 2 * v), await main.encode(pixels, 2 * v))).toBe(0);
    const features = new Float32Array(2 * t * v * d).map((_, i) => Math.sin(i));
    const sarm = { features, valid: new Float32Array(2 * t).fill(1), task: [0, 1] };
    const [a, b] = await Promise.all([worker.sarm(sarm), main.sarm(sarm)]);
    expect(maxAbsDiff(a.stageLogits, b.stageLogits)).toBe(0);
    expect(maxAbsDiff(a.tau, b.tau)).toBe(0);
    const f = (k: number) => new Float32Array(3 * v * d).map((_, i) => Math.cos(i * k));
    const grm = { start: f(1), goal: f(2), before: f(3), after: f(4), task: [0, 0, 1] };
    expect(maxAbsDiff(await worker.grm(grm), await main.grm(grm))).toBe(0);
  });

  it('keeps the event loop running while a large batch computes', async () => {
    const { height, width } = main.card.image;
    // A batch that takes the in-thread model at least 40 ms, so that the worker's has time for ticks to count.
    let n = 64;
    let pixels = new Uint8Array(n * height * width * 3).fill(7);
    await main.encode(pixels, n); // warm-up: the first run is slower
    for (;;) {
      const t = performance.now();
      await main.encode(pixels, n);
      if (performance.now() - t >= 40 || n >= 16384) break;
      n *= 2;
      pixels = new Uint8Array(n * height * width * 3).fill(7);
    }
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const t0 = performance.now();
    await worker.encode(pixels, n);
    const ms = performance.now() - t0;
    clearInterval(timer);
    expect(ms).toBeGreaterThanOrEqual(10);
    // A 1 ms timer fires about every millisecond on a free loop; a blocked loop would fire it once at most.
    expect(ticks).toBeGreaterThanOrEqual(Math.max(3, Math.floor(ms / 8)));
  });

  it('keeps error codes across the thread boundary and keeps serving after an inference error', async () => {
    const { length: t } = main.card.window;
    const vd = main.card.views.length * main.card.featureDim;
    await expectCode(worker.sarm({ features: new Float32Array(t * vd), valid: new Float32Array(t), task: [99] }), 'SW_ERR_INFERENCE');
    const { height, width } = main.card.image;
    expect((await worker.encode(new Uint8Array(height * width * 3), 1)).length).toBe(main.card.featureDim);
    await expectCode(WorkerProgressModel.load('/nonexistent/model'), 'SW_ERR_MODEL_NOT_FOUND');
  });

  it('refuses calls once closed', async () => {
    const m = await WorkerProgressModel.load(FIXTURE_MODEL_DIR);
    await m.close();
    await expectCode(m.encode(new Uint8Array(1), 1), 'SW_ERR_SHUTTING_DOWN');
  });
});
