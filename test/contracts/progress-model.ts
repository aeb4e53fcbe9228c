// The ProgressModel contract (models/package.ts), one suite for every implementation: outputs have
// the sizes the card implies, the same input twice gives bit-identical output, a batch of N rows
// gives each row what N single-row calls give, calls after close() fail with a stageward error, and
// a card without a GRM head makes GRM calls fail with SW_ERR_BAD_OPTION (the code the engine gives a
// GRM progress option on such a model), and SARM reports `uncertainty` exactly when the subject's
// package has that output (then finite, >= 0, one per window, and held to the same rules as tau:
// deterministic, and each row of a batch what its single-row call gives).
//
//   progressModelContract('worker thread', { card, open: () => WorkerProgressModel.load(dir), ... });
//
// Each test says beforehand which calls it will make (its script), so a model that answers from a
// recording (the replay model of offline scoring) can be built to answer exactly those.

import { afterAll, describe, expect, it } from 'vitest';
import type { ModelCard } from '../../models/card.ts';
import type { GrmBatch, ProgressModel, SarmBatch, SarmOutput } from '../../models/package.ts';
import { EXECUTION_PROVIDERS } from '../../models/runtime.ts';
import { windowIndices } from '../../models/window.ts';
import { ERROR_CODES, isStagewardError, type ErrorCode } from '../../core/errors.ts';
import { SeededRandom } from '../../core/random.ts';

export type ProbeCall =
  { graph: 'encode'; pixels: Uint8Array; n: number } | { graph: 'sarm'; batch: SarmBatch } | { graph: 'grm'; batch: GrmBatch };

export type ProbeResult = Float32Array | SarmOutput;

export interface ProgressModelSubject {
  /** The card the model is opened with (the fixture's); probe inputs are sized from it. */
  card: ModelCard;
  /** The same card without a GRM head (grm.present false, no grm graph). */
  cardWithoutGrm: ModelCard;
  /**
   * A new model for one test. `script` lists the calls the test makes, in the order it makes them
   * (calls the subject must refuse come last); `grm: false` asks for the package without a GRM head.
   */
  open(script: readonly ProbeCall[], options: { grm: boolean }): Promise<ProgressModel>;
  /**
   * Answers do not depend on earlier calls, so one model may serve the shape, determinism and
   * batching tests (opened once with an empty script, closed after them).
   */
  stateless: boolean;
  /**
   * 'any': encode takes any number of images, SARM any number of windows, GRM any number of pairs.
   * 'per-step': only what an engine Episode asks per step (one image per view, one window; GRM any
   * number of pairs); a batch of time steps or windows must be refused with a stageward error.
   */
  rows: 'any' | 'per-step';
  /** Largest |difference| allowed between a row of a batch and its single-row call; 0: bit-identical. */
  batchTolerance: number;
  /** The code calls fail with after close(). */
  closedCode: ErrorCode;
  /** SARM calls return `uncertainty` (the package's sarm.onnx has that output, or the fake makes one). */
  uncertainty: boolean;
}

/** The documented code of a GRM call on a package without a GRM head. */
export const MISSING_GRM_CODE: ErrorCode = 'SW_ERR_BAD_OPTION';

/** Probe inputs sized from a card, from a seeded source (the same seed gives the same bytes). */
export class Probes {
  readonly card: ModelCard;
  readonly V: number;
  readonly D: number;
  readonly T: number;
  readonly K: number;
  readonly imageBytes: number;
  readonly #rng: SeededRandom;

  constructor(card: ModelCard, seed: number) {
    this.card = card;
    this.V = card.views.length;
    this.D = card.featureDim;
    this.T = card.window.length;
    this.K = card.maxStages;
    this.imageBytes = card.image.height * card.image.width * 3;
    this.#rng = new SeededRandom(seed);
  }

  /** `n` noise images at the card's resolution. */
  encode(n: number): ProbeCall & { graph: 'encode' } {
    const pixels = new Uint8Array(n * this.imageBytes);
    for (let i = 0; i < pixels.length; i++) pixels[i] = this.#rng.int(0, 255);
    return { graph: 'encode', pixels, n };
  }

  /** SARM windows at episode steps `steps` (early steps are padded as the engine pads them), tasks in turn. */
  sarm(steps: readonly number[]): ProbeCall & { graph: 'sarm' } {
    const b = steps.length;
    const vd = this.V * this.D;
    const batch: SarmBatch = { features: new Float32Array(b * this.T * vd), valid: new Float32Array(b * this.T), task: [] };
    steps.forEach((t, row) => {
      windowIndices(t, this.card.window).forEach((frame, j) => {
        if (frame < 0) return; // padding: zeros, valid 0
        for (let i = 0; i < vd; i++) batch.features[(row * this.T + j) * vd + i] = this.#rng.normal();
        batch.valid[row * this.T + j] = 1;
      });
      batch.task.push(row % this.card.tasks.length);
    });
    return { graph: 'sarm', batch };
  }

  /** `p` GRM pairs, tasks in turn. */
  grm(p: number): ProbeCall & { graph: 'grm' } {
    const f = () => Float32Array.from({ length: p * this.V * this.D }, () => this.#rng.normal());
    return {
      graph: 'grm',
      batch: { start: f(), goal: f(), before: f(), after: f(), task: Array.from({ length: p }, (_, i) => i % this.card.tasks.length) },
    };
  }
}

/** Rows of a call: images, windows or pairs. */
export function rowsOf(call: ProbeCall): number {
  return call.graph === 'encode' ? call.n : call.batch.task.length;
}

export function runCall(model: ProgressModel, call: ProbeCall): Promise<ProbeResult> {
  if (call.graph === 'encode') return model.encode(call.pixels, call.n);
  if (call.graph === 'sarm') return model.sarm(call.batch);
  return model.grm(call.batch);
}

/** Row `r` of a call, as a single-row call of the same graph. */
export function rowOf(call: ProbeCall, r: number, card: ModelCard): ProbeCall {
  const vd = card.views.length * card.featureDim;
  if (call.graph === 'encode') {
    const bytes = call.pixels.length / call.n;
    return { graph: 'encode', pixels: call.pixels.slice(r * bytes, (r + 1) * bytes), n: 1 };
  }
  if (call.graph === 'sarm') {
    const t = card.window.length;
    const b = call.batch;
    return {
      graph: 'sarm',
      batch: { features: b.features.slice(r * t * vd, (r + 1) * t * vd), valid: b.valid.slice(r * t, (r + 1) * t), task: [b.task[r]!] },
    };
  }
  const b = call.batch;
  const part = (a: Float32Array) => a.slice(r * vd, (r + 1) * vd);
  return {
    graph: 'grm',
    batch: { start: part(b.start), goal: part(b.goal), before: part(b.before), after: part(b.after), task: [b.task[r]!] },
  };
}

/** The output arrays of a result, named. */
function arraysOf(result: ProbeResult): [string, Float32Array][] {
  if (result instanceof Float32Array) return [['output', result]];
  const out: [string, Float32Array][] = [
    ['stageLogits', result.stageLogits],
    ['tau', result.tau],
  ];
  if (result.uncertainty) out.push(['uncertainty', result.uncertainty]);
  return out;
}

/** Row `r` of a result, given each output's values per row. */
function resultRow(result: ProbeResult, r: number, card: ModelCard, graph: ProbeCall['graph']): ProbeResult {
  if (result instanceof Float32Array) {
    const w = graph === 'encode' ? card.featureDim : 1;
    return result.subarray(r * w, (r + 1) * w);
  }
  const k = card.maxStages;
  const row: SarmOutput = { stageLogits: result.stageLogits.subarray(r * k, (r + 1) * k), tau: result.tau.subarray(r, r + 1) };
  if (result.uncertainty) row.uncertainty = result.uncertainty.subarray(r, r + 1);
  return row;
}

function snapshot(result: ProbeResult): ProbeResult {
  if (result instanceof Float32Array) return result.slice();
  const copy: SarmOutput = { stageLogits: result.stageLogits.slice(), tau: result.tau.slice() };
  if (result.uncertainty) copy.uncertainty = result.uncertainty.slice();
  return copy;
}

const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

/** Equal bit for bit (tolerance 0), or within `tolerance` everywhere; names the first differing value. */
export function expectSame(got: ProbeResult, want: ProbeResult, tolerance: number, what: string): void {
  const g = arraysOf(got);
  const w = arraysOf(want);
  expect(
    g.map(([n, a]) => [n, a.length]),
    `${what}: output sizes`,
  ).toEqual(w.map(([n, a]) => [n, a.length]));
  g.forEach(([name, a], j) => {
    const b = w[j]![1];
    const ab = bitsOf(a);
    const bb = bitsOf(b);
    for (let i = 0; i < a.length; i++) {
      const ok = tolerance === 0 ? ab[i] === bb[i] : Math.abs(a[i]! - b[i]!) <= tolerance;
      if (!ok)
        expect.fail(`${what}: ${name}[${i}] is ${a[i]}, expected ${b[i]}${tolerance === 0 ? ' (bit-identical)' : ` within ${tolerance}`}`);
    }
  });
}

/**
 * Sizes the card implies for a call's outputs, and finite values; a SARM result has `uncertainty`
 * exactly when `uncertainty` says so, one value >= 0 per window.
 */
function expectShape(result: ProbeResult, call: ProbeCall, card: ModelCard, uncertainty: boolean): void {
  const rows = rowsOf(call);
  const what = `${call.graph} of ${rows} row(s)`;
  if (call.graph === 'encode') {
    expect(result, what).toBeInstanceOf(Float32Array);
    expect((result as Float32Array).length, `${what}: features [n, feature_dim]`).toBe(rows * card.featureDim);
  } else if (call.graph === 'sarm') {
    const r = result as SarmOutput;
    expect(r.stageLogits, what).toBeInstanceOf(Float32Array);
    expect(r.tau, what).toBeInstanceOf(Float32Array);
    expect(r.stageLogits.length, `${what}: stage_logits [B, largest stage count]`).toBe(rows * card.maxStages);
    expect(r.tau.length, `${what}: tau [B]`).toBe(rows);
    if (uncertainty) {
      expect(r.uncertainty, `${what}: uncertainty`).toBeInstanceOf(Float32Array);
      expect(r.uncertainty!.length, `${what}: uncertainty [B], one per window`).toBe(rows);
      for (const u of r.uncertainty!) expect(u, `${what}: uncertainty >= 0`).toBeGreaterThanOrEqual(0);
    } else {
      expect(r.uncertainty, `${what}: no uncertainty from a package without that output`).toBeUndefined();
    }
  } else {
    expect(result, what).toBeInstanceOf(Float32Array);
    expect((result as Float32Array).length, `${what}: hop [B]`).toBe(rows);
    for (const h of result as Float32Array) expect(Math.abs(h), `${what}: hop in [-1, 1]`).toBeLessThanOrEqual(1);
  }
  for (const [name, a] of arraysOf(result)) expect(a.every(Number.isFinite), `${what}: ${name} finite`).toBe(true);
}

/** The error a promise (or a function that throws) ends with; fails when it does not. */
async function errorOf(p: () => Promise<unknown>): Promise<unknown> {
  try {
    await p();
  } catch (err) {
    return err;
  }
  return expect.fail('expected the call to fail');
}

async function expectStagewardCode(p: () => Promise<unknown>, code: ErrorCode, what: string): Promise<void> {
  const err = await errorOf(p);
  expect(isStagewardError(err), `${what}: expected a StagewardError ${code}, got ${String(err)}`).toBe(true);
  expect(Object.hasOwn(ERROR_CODES, (err as { code: string }).code), `${what}: a listed code`).toBe(true);
  expect((err as { code: string }).code, what).toBe(code);
}

export function progressModelContract(name: string, subject: ProgressModelSubject): void {
  const { card } = subject;
  const probes = (seed: number) => new Probes(card, seed);
  const V = card.views.length;
  const perStep = subject.rows === 'per-step';

  let shared: Promise<ProgressModel> | undefined;
  /** A model for a test's script: the shared one for a stateless subject, else a new one closed afterwards. */
  const withModel = async (script: readonly ProbeCall[], body: (m: ProgressModel) => Promise<void>): Promise<void> => {
    if (subject.stateless) {
      shared ??= subject.open([], { grm: true });
      return body(await shared);
    }
    const m = await subject.open(script, { grm: true });
    try {
      await body(m);
    } finally {
      await m.close();
    }
  };

  describe(`ProgressModel contract: ${name}`, () => {
    it('has the card it was opened with, and outputs of the sizes that card implies', async () => {
      const p = probes(1);
      const script: ProbeCall[] = perStep
        ? [p.encode(V), p.encode(V), p.sarm([0]), p.sarm([7]), p.grm(1), p.grm(3)]
        : [p.encode(1), p.encode(V), p.encode(2 * V + 1), p.sarm([0]), p.sarm([0, 3, 9]), p.grm(1), p.grm(3)];
      await withModel(script, async (m) => {
        expect(m.card).toEqual(card);
        expect(EXECUTION_PROVIDERS).toContain(m.providers.encoder);
        expect(EXECUTION_PROVIDERS).toContain(m.providers.sarm);
        for (const call of script) expectShape(await runCall(m, call), call, card, subject.uncertainty);
      });
    });

    it('gives bit-identical output for the same input twice, and leaves an earlier result untouched', async () => {
      const p = probes(2);
      const calls: ProbeCall[] = perStep ? [p.encode(V), p.sarm([4]), p.grm(3)] : [p.encode(V), p.sarm([1, 8]), p.grm(3)];
      const script = calls.flatMap((c) => [c, c]);
      await withModel(script, async (m) => {
        for (const call of calls) {
          const first = await runCall(m, call);
          const kept = snapshot(first);
          const second = await runCall(m, call);
          expectSame(second, kept, 0, `${call.graph}: second call`);
          expectSame(first, kept, 0, `${call.graph}: first result after the second call`);
        }
      });
    });

    it(`gives each row of a batch what single-row calls give (${subject.batchTolerance === 0 ? 'bit-identical' : `within ${subject.batchTolerance}`})`, async () => {
      const p = probes(3);
      // 'per-step' subjects: a batch of time steps or windows is refused; GRM pairs still batch.
      const batches: ProbeCall[] = perStep ? [p.grm(4)] : [p.encode(2 * V), p.sarm([0, 2, 5, 11]), p.grm(4)];
      const refused: ProbeCall[] = perStep ? [p.encode(2 * V), p.sarm([0, 5])] : [];
      const singles = (b: ProbeCall) => Array.from({ length: rowsOf(b) }, (_, r) => rowOf(b, r, card));
      // each batch, then its rows one at a time, then its rows all at once (a batching model merges those)
      const script = [...batches.flatMap((b) => [b, ...singles(b), ...singles(b)]), ...refused];
      await withModel(script, async (m) => {
        for (const batch of batches) {
          const whole = snapshot(await runCall(m, batch));
          const rows = singles(batch);
          const oneByOne: ProbeResult[] = [];
          for (const row of rows) oneByOne.push(snapshot(await runCall(m, row)));
          const together = await Promise.all(rows.map((row) => runCall(m, row)));
          rows.forEach((row, r) => {
            const want = resultRow(whole, r, card, batch.graph);
            expectShape(oneByOne[r]!, row, card, subject.uncertainty);
            expectSame(oneByOne[r]!, want, subject.batchTolerance, `${batch.graph} row ${r} of ${rows.length}, called alone`);
            expectSame(
              together[r]!,
              want,
              subject.batchTolerance,
              `${batch.graph} row ${r} of ${rows.length}, called with the others at once`,
            );
          });
          // the rows differ from one another, so the comparison above could tell them apart
          const [a, b] = [arraysOf(resultRow(whole, 0, card, batch.graph))[0]![1], arraysOf(resultRow(whole, 1, card, batch.graph))[0]![1]];
          expect(Array.from(bitsOf(a)), `${batch.graph}: rows 0 and 1 give different outputs`).not.toEqual(Array.from(bitsOf(b)));
        }
        for (const call of refused) {
          const err = await errorOf(() => runCall(m, call));
          expect(isStagewardError(err), `${call.graph} of ${rowsOf(call)} rows: refused with a StagewardError, got ${String(err)}`).toBe(
            true,
          );
        }
      });
    });

    it(
      subject.uncertainty
        ? 'reports SARM uncertainty: finite, >= 0, one per window, and not the same for every window'
        : 'reports no SARM uncertainty (its package has no such output)',
      async () => {
        const p = probes(6);
        const calls: ProbeCall[] = perStep ? [p.sarm([0]), p.sarm([9])] : [p.sarm([0, 3, 9])];
        await withModel(calls, async (m) => {
          const values: number[] = [];
          for (const call of calls) {
            const out = (await runCall(m, call)) as SarmOutput;
            expectShape(out, call, card, subject.uncertainty);
            if (out.uncertainty) values.push(...out.uncertainty);
          }
          // distinct windows give distinct values, so the batching and replay comparisons can tell rows apart
          if (subject.uncertainty) expect(new Set(values).size, 'uncertainty varies between windows').toBeGreaterThan(1);
        });
      },
    );

    it(`fails every call after close() with ${subject.closedCode}`, async () => {
      const p = probes(4);
      const script: ProbeCall[] = [p.encode(V), p.sarm([3]), p.grm(2)];
      const m = await subject.open([...script, ...script], { grm: true });
      try {
        for (const call of script) expectShape(await runCall(m, call), call, card, subject.uncertainty); // it answered while open
      } finally {
        await m.close();
      }
      for (const call of script) await expectStagewardCode(() => runCall(m, call), subject.closedCode, `${call.graph} after close()`);
    });

    it(`fails GRM calls with ${MISSING_GRM_CODE} when the card has no GRM head, and still encodes and runs SARM`, async () => {
      const p = new Probes(subject.cardWithoutGrm, 5);
      const script: ProbeCall[] = [p.encode(V), p.sarm([2]), p.grm(1)];
      const m = await subject.open(script, { grm: false });
      try {
        expect(m.card.grm.present).toBe(false);
        expect(m.card).toEqual(subject.cardWithoutGrm);
        for (const call of script.slice(0, 2)) expectShape(await runCall(m, call), call, subject.cardWithoutGrm, subject.uncertainty);
        await expectStagewardCode(() => runCall(m, script[2]!), MISSING_GRM_CODE, 'grm without a GRM head');
      } finally {
        await m.close();
      }
    });

    afterAll(async () => {
      if (shared) await (await shared).close();
    });
  });
}
