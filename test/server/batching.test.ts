import { afterEach, describe, expect, it } from 'vitest';
import { BatchingProgressModel, type BatchEvent, type BatchingOptions } from '../../models/batching.ts';
import { RewardEngine } from '../../models/engine.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import { StagewardClient } from '../../server/client.ts';
import { expectCode, FIXTURE_MODEL_DIR, maxAbsDiff } from '../helpers.ts';
import { FakeProgressModel, jpegFrames, startTestServer } from './helpers.ts';

const card = new FakeProgressModel().card;
const D = card.featureDim;
const V = card.views.length;
const T = card.window.length;
const PIX = card.image.height * card.image.width * 3;

function pixels(n: number, seed: number): Uint8Array {
  const p = new Uint8Array(n * PIX);
  for (let i = 0; i < p.length; i++) p[i] = (i * 31 + seed * 17) % 251;
  return p;
}

/**
 * A batching model for the tests. Requests made in one synchronous burst must merge however loaded
 * the machine is: a request that finds the oldest queued one past maxBatchWaitMs launches the batch,
 * so the wait is generous (a GC pause inside a burst passed 5 ms on a loaded CI machine).
 */
function batching(fake: FakeProgressModel, o: Partial<BatchingOptions> = {}, events: BatchEvent[] = []) {
  return new BatchingProgressModel(fake, {
    maxBatch: 32,
    maxBatchWaitMs: 100,
    maxConcurrentBatches: 1,
    onBatch: (e) => events.push(e),
    ...o,
  });
}

let toClose: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(toClose.map((c) => c.close()));
  toClose = [];
});

describe('dynamic batching', () => {
  it('merges concurrent requests into one call per graph and splits the outputs back exactly', async () => {
    const fake = new FakeProgressModel();
    const events: BatchEvent[] = [];
    const model = batching(fake, {}, events);
    const inputs = [1, 2, 3, 4].map((s) => pixels(V, s));
    const alone = await Promise.all(inputs.map((p) => new FakeProgressModel().encode(p, V)));
    const merged = await Promise.all(inputs.map((p) => model.encode(p, V)));
    expect(fake.calls).toEqual([{ graph: 'encoder', rows: 4 * V }]);
    merged.forEach((m, i) => expect(Array.from(m)).toEqual(Array.from(alone[i]!)));
    expect(events[0]).toMatchObject({ graph: 'encoder', rows: 12, requests: 4, ok: true });

    const windows = [0, 1, 2].map((s) => ({
      features: new Float32Array(T * V * D).fill(s / 10),
      valid: new Float32Array(T).fill(1),
      task: [s % 2],
    }));
    const sarm = await Promise.all(windows.map((w) => model.sarm(w)));
    const sarmAlone = await Promise.all(windows.map((w) => new FakeProgressModel().sarm(w)));
    expect(fake.calls.filter((c) => c.graph === 'sarm')).toEqual([{ graph: 'sarm', rows: 3 }]);
    sarm.forEach((r, i) => {
      expect(Array.from(r.stageLogits)).toEqual(Array.from(sarmAlone[i]!.stageLogits));
      expect(Array.from(r.tau)).toEqual(Array.from(sarmAlone[i]!.tau));
    });

    const pair = (x: number, rows: number) => ({
      start: new Float32Array(rows * V * D),
      goal: new Float32Array(rows * V * D),
      before: new Float32Array(rows * V * D),
      after: new Float32Array(rows * V * D).fill(x),
      task: new Array(rows).fill(0),
    });
    const hops = await Promise.all([model.grm(pair(0.1, 2)), model.grm(pair(0.5, 3))]);
    expect(fake.calls.filter((c) => c.graph === 'grm')).toEqual([{ graph: 'grm', rows: 5 }]);
    expect(hops.map((h) => h.length)).toEqual([2, 3]);
    expect(hops[1]![0]).toBeCloseTo(Math.tanh(0.5), 6);
  });

  it("splits an ensemble model's SARM uncertainty back per request, one value per window, and omits it for a model without", async () => {
    const fake = new FakeProgressModel({ uncertainty: true });
    const model = batching(fake);
    // requests of 1, 2 and 1 windows, merged into one call of 4 rows
    const request = (rows: number, seed: number) => ({
      features: Float32Array.from({ length: rows * T * V * D }, (_, i) => Math.sin(seed + i / 7)),
      valid: new Float32Array(rows * T).fill(1),
      task: new Array<number>(rows).fill(0),
    });
    const requests = [request(1, 1), request(2, 2), request(1, 3)];
    const merged = await Promise.all(requests.map((r) => model.sarm(r)));
    const alone = await Promise.all(requests.map((r) => new FakeProgressModel({ uncertainty: true }).sarm(r)));
    expect(fake.calls).toEqual([{ graph: 'sarm', rows: 4 }]);
    merged.forEach((r, i) => {
      expect(r.uncertainty!.length).toBe(requests[i]!.task.length);
      expect(Array.from(r.uncertainty!)).toEqual(Array.from(alone[i]!.uncertainty!));
    });
    expect(new Set(merged.flatMap((r) => Array.from(r.uncertainty!))).size).toBe(4);
    const without = await Promise.all(requests.map((r) => batching(new FakeProgressModel()).sarm(r)));
    for (const r of without) expect(r.uncertainty).toBeUndefined();
  });

  it('launches at maxBatch rows without waiting, never splits a request, and respects maxBatchWaitMs', async () => {
    const fake = new FakeProgressModel();
    const model = batching(fake, { maxBatch: 6, maxBatchWaitMs: 200 });
    const t0 = performance.now();
    await Promise.all([model.encode(pixels(3, 1), 3), model.encode(pixels(3, 2), 3)]); // 6 rows: full
    expect(performance.now() - t0).toBeLessThan(150);
    await model.encode(pixels(9, 3), 9); // larger than maxBatch: a batch of its own, at once
    expect(fake.calls.map((c) => c.rows)).toEqual([6, 9]);

    const waiting = batching(new FakeProgressModel(), { maxBatch: 32, maxBatchWaitMs: 40 });
    const t1 = performance.now();
    await waiting.encode(pixels(1, 4), 1);
    const waited = performance.now() - t1;
    expect(waited).toBeGreaterThanOrEqual(38);
    expect(waited).toBeLessThan(200);
  });

  it('queues requests while a batch runs and sends them together when it finishes', async () => {
    const fake = new FakeProgressModel();
    fake.delayMs = 30;
    const model = batching(fake, { maxBatchWaitMs: 0 });
    const first = model.encode(pixels(1, 1), 1);
    await new Promise((r) => setTimeout(r, 5)); // the first call is running
    const rest = [2, 3, 4, 5].map((s) => model.encode(pixels(1, s), 1));
    expect(model.queueDepth.encoder).toBe(4);
    await Promise.all([first, ...rest]);
    expect(fake.calls.map((c) => c.rows)).toEqual([1, 4]);
    expect(model.queueDepth.encoder).toBe(0);
  });

  it('fails every request of a failed batch with the model error, and keeps serving', async () => {
    const fake = new FakeProgressModel();
    fake.failGraph = 'encoder';
    const model = batching(fake);
    const results = await Promise.allSettled([model.encode(pixels(1, 1), 1), model.encode(pixels(1, 2), 1)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await expectCode(Promise.reject((results[0] as PromiseRejectedResult).reason), 'SW_ERR_INFERENCE');
    fake.failGraph = undefined;
    expect((await model.encode(pixels(1, 3), 1)).length).toBe(D);
  });

  it('gives the same rewards as the unbatched ONNX model when episodes step together', async () => {
    const onnx = await OnnxProgressModel.load(FIXTURE_MODEL_DIR);
    toClose.push(onnx);
    const direct = new RewardEngine(onnx);
    const batched = new RewardEngine(new BatchingProgressModel(onnx, { maxBatch: 32, maxBatchWaitMs: 2, maxConcurrentBatches: 1 }));
    const opts = { task: 'pick_place', gamma: 0.9, shaping: 'pbrs' as const, progress: 'both' as const };
    const framesAt = async (t: number, e: number) => jpegFrames((t * 7 + e * 13) % 100);
    const a = await Promise.all([0, 1, 2].map(() => direct.start(opts)));
    const b = await Promise.all([0, 1, 2].map(() => batched.start(opts)));
    for (let t = 0; t < 4; t++) {
      const fs = await Promise.all([0, 1, 2].map((e) => framesAt(t, e)));
      const ra = await Promise.all(a.map((ep, e) => ep.step({ frames: fs[e]! })));
      const rb = await Promise.all(b.map((ep, e) => ep.step({ frames: fs[e]! })));
      expect(
        maxAbsDiff(
          ra.map((r) => r.progress),
          rb.map((r) => r.progress),
        ),
      ).toBeLessThan(1e-5);
      expect(
        maxAbsDiff(
          ra.map((r) => r.shaped),
          rb.map((r) => r.shaped),
        ),
      ).toBeLessThan(1e-5);
    }
  });
});

describe('batching in the server', () => {
  it('batches encoder and head calls across sessions stepping at once', async () => {
    const fake = new FakeProgressModel();
    fake.delayMs = 2;
    // A full encoder batch (4 x 3 images) launches at once; the wait is long so that a loaded machine
    // cannot spread the four steps over two windows, and it bounds only the SARM call (4 < 12 rows).
    const server = await startTestServer({ 'batching.maxBatch': 12, 'batching.maxBatchWaitMs': 400 }, fake);
    toClose.push({ close: () => server.shutdown() });
    const clients = await Promise.all([0, 1, 2, 3].map(() => StagewardClient.connect(server.url)));
    for (const c of clients) {
      await c.hello({ task: 'pick_place', gamma: 0.99 });
      await c.reset();
    }
    const frames = await jpegFrames();
    fake.calls.length = 0;
    const replies = await Promise.all(clients.map((c) => c.step(frames)));
    expect(replies.every((r) => r.type === 'reward' && r.step === 0)).toBe(true);
    // Four sessions' steps: one encoder call of 4 x 3 images and one SARM call of 4 windows.
    expect(fake.calls).toEqual([
      { graph: 'encoder', rows: 12 },
      { graph: 'sarm', rows: 4 },
    ]);
    expect(server.metrics.render()).toMatch(/stageward_batch_rows_bucket\{graph="encoder",le="16"\} 1/);
    await Promise.all(clients.map((c) => c.close()));
  });
});
