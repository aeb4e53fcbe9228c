// The ProgressModel contract (test/contracts/progress-model.ts) run against every implementation,
// all on the tiny fixture package: ONNX Runtime in process, the worker thread, the batching wrapper
// (over either), the replay model of offline scoring (its recording made from the ONNX model's
// outputs), and the fakes the server tests use.

import { cp, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { BatchingProgressModel, type BatchingOptions } from '../../models/batching.ts';
import { parseCard, type ModelCard } from '../../models/card.ts';
import { OnnxProgressModel, type GrmBatch, type ProgressModel, type SarmBatch } from '../../models/package.ts';
import { WorkerProgressModel } from '../../models/worker-model.ts';
import { FIXTURE_MODEL_DIR } from '../../core/paths.ts';
import { ReplayModel, type ReplayStep } from '../../offline/score/replay-model.ts';
import { FakeProgressModel } from '../server/helpers.ts';
import { progressModelContract, type ProbeCall, type ProgressModelSubject } from './progress-model.ts';

type Json = Record<string, any>;
const fixtureJson = JSON.parse(await readFile(join(FIXTURE_MODEL_DIR, 'model.json'), 'utf8')) as Json;
const withoutGrm = (c: Json): Json => {
  const out = structuredClone(c);
  out.grm = { present: false, goal: 'none' };
  delete out.graphs.grm;
  return out;
};
const CARD = parseCard(fixtureJson);
const CARD_WITHOUT_GRM = parseCard(withoutGrm(fixtureJson));

// The fixture package without its GRM head (model.json edited, grm.onnx removed), made on first use.
let sarmOnlyDir: Promise<string> | undefined;
function packageDir(grm: boolean): Promise<string> {
  if (grm) return Promise.resolve(FIXTURE_MODEL_DIR);
  sarmOnlyDir ??= (async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'stageward-contract-')), 'model');
    await cp(FIXTURE_MODEL_DIR, dir, { recursive: true });
    await writeFile(join(dir, 'model.json'), JSON.stringify(withoutGrm(fixtureJson)));
    await unlink(join(dir, 'grm.onnx'));
    return dir;
  })();
  return sarmOnlyDir;
}

// One ONNX model per package, shared by the subjects that only read from it (the replay recordings,
// the keep-open wrapper); closed when the file is done.
const references = new Map<boolean, Promise<OnnxProgressModel>>();
function reference(grm: boolean): Promise<OnnxProgressModel> {
  let m = references.get(grm);
  if (!m) references.set(grm, (m = packageDir(grm).then((dir) => OnnxProgressModel.load(dir))));
  return m;
}

afterAll(async () => {
  for (const m of references.values()) await (await m).close();
  if (sarmOnlyDir) await rm(join(await sarmOnlyDir, '..'), { recursive: true, force: true });
});

const quiet = { log: () => {} };

function concat<T extends Float32Array | Uint8Array>(parts: T[], make: (n: number) => T): T {
  const out = make(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * A replay model recorded as offline scoring records one: one reference call per graph over every
 * row of the script, split back into one step per call (encode call i -> step i's features, SARM
 * call i -> step i's window rows, GRM call i -> step i's pairs).
 */
async function recordedReplay(ref: ProgressModel, script: readonly ProbeCall[], usesGrm: boolean): Promise<ReplayModel> {
  const card = ref.card;
  const D = card.featureDim;
  const K = card.maxStages;
  const encodes = script.flatMap((c) => (c.graph === 'encode' ? [c] : []));
  const windows = script.flatMap((c) => (c.graph === 'sarm' ? [c.batch] : []));
  const pairs = script.flatMap((c) => (c.graph === 'grm' ? [c.batch] : []));

  const features: Float32Array[] = [];
  if (encodes.length > 0) {
    const n = encodes.reduce((a, c) => a + c.n, 0);
    const all = await ref.encode(
      concat(
        encodes.map((c) => c.pixels),
        (m) => new Uint8Array(m),
      ),
      n,
    );
    let o = 0;
    for (const c of encodes) {
      features.push(all.subarray(o * D, (o + c.n) * D));
      o += c.n;
    }
  }
  const sarm: NonNullable<ReplayStep['sarm']>[] = [];
  if (windows.length > 0) {
    const batch: SarmBatch = {
      features: concat(
        windows.map((w) => w.features),
        (m) => new Float32Array(m),
      ),
      valid: concat(
        windows.map((w) => w.valid),
        (m) => new Float32Array(m),
      ),
      task: windows.flatMap((w) => w.task),
    };
    const out = await ref.sarm(batch);
    let o = 0;
    for (const w of windows) {
      const b = w.task.length;
      sarm.push({ input: { batch, row: o, rows: b }, stageLogits: out.stageLogits.subarray(o * K, (o + b) * K), tau: out.tau[o]! });
      o += b;
    }
  }
  const grm: NonNullable<ReplayStep['grm']>[] = [];
  if (pairs.length > 0 && card.grm.present) {
    const f32 = (m: number) => new Float32Array(m);
    const batch: GrmBatch = {
      start: concat(
        pairs.map((p) => p.start),
        f32,
      ),
      goal: concat(
        pairs.map((p) => p.goal),
        f32,
      ),
      before: concat(
        pairs.map((p) => p.before),
        f32,
      ),
      after: concat(
        pairs.map((p) => p.after),
        f32,
      ),
      task: pairs.flatMap((p) => p.task),
    };
    const hops = await ref.grm(batch);
    let o = 0;
    for (const p of pairs) {
      const b = p.task.length;
      grm.push({ input: { batch, row: o, rows: b }, hops: hops.subarray(o, o + b) });
      o += b;
    }
  }
  const replay = new ReplayModel(card, usesGrm);
  const steps = Math.max(features.length, sarm.length, grm.length);
  replay.push(
    ...Array.from({ length: steps }, (_, i): ReplayStep => ({
      frame: i,
      features: features[i] ?? new Float32Array(card.views.length * D),
      ...(sarm[i] ? { sarm: sarm[i] } : {}),
      ...(grm[i] ? { grm: grm[i] } : {}),
    })),
  );
  return replay;
}

/** FakeProgressModel with the card of the package without a GRM head. */
class FakeWithoutGrm extends FakeProgressModel {
  override readonly card: ModelCard = CARD_WITHOUT_GRM;
}

const MERGE_ALL: BatchingOptions = { maxBatch: 32, maxBatchWaitMs: 0, maxConcurrentBatches: 1 };
/** Small batches, two at a time: merged calls split across several calls of the wrapped model. */
const SMALL_BATCHES: BatchingOptions = { maxBatch: 3, maxBatchWaitMs: 1, maxConcurrentBatches: 2 };

const base = { card: CARD, cardWithoutGrm: CARD_WITHOUT_GRM, rows: 'any', batchTolerance: 0, stateless: true } as const;

const SUBJECTS: [string, ProgressModelSubject][] = [
  [
    'OnnxProgressModel (ONNX Runtime in process)',
    {
      ...base,
      open: async (_s, { grm }) => OnnxProgressModel.load(await packageDir(grm), quiet),
      closedCode: 'SW_ERR_SHUTTING_DOWN',
    },
  ],
  [
    'WorkerProgressModel (worker thread)',
    {
      ...base,
      open: async (_s, { grm }) => WorkerProgressModel.load(await packageDir(grm), quiet),
      closedCode: 'SW_ERR_SHUTTING_DOWN',
    },
  ],
  [
    'BatchingProgressModel over OnnxProgressModel (one batch per turn)',
    {
      ...base,
      open: async (_s, { grm }) => new BatchingProgressModel(await OnnxProgressModel.load(await packageDir(grm), quiet), MERGE_ALL),
      closedCode: 'SW_ERR_SHUTTING_DOWN',
    },
  ],
  [
    'BatchingProgressModel over WorkerProgressModel (maxBatch 3, two batches at once)',
    {
      ...base,
      open: async (_s, { grm }) => new BatchingProgressModel(await WorkerProgressModel.load(await packageDir(grm), quiet), SMALL_BATCHES),
      closedCode: 'SW_ERR_SHUTTING_DOWN',
    },
  ],
  [
    'ReplayModel (offline scoring, recorded from OnnxProgressModel)',
    {
      ...base,
      stateless: false,
      rows: 'per-step',
      open: async (script, { grm }) => recordedReplay(await reference(grm), script, grm),
      closedCode: 'SW_ERR_SHUTTING_DOWN',
    },
  ],
  [
    'FakeProgressModel (server tests)',
    {
      ...base,
      open: async (_s, { grm }) => (grm ? new FakeProgressModel() : new FakeWithoutGrm()),
      closedCode: 'SW_ERR_SHUTTING_DOWN',
    },
  ],
];

for (const [name, subject] of SUBJECTS) progressModelContract(name, subject);
