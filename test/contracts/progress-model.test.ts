// The ProgressModel contract (test/contracts/progress-model.ts) run against every implementation,
// all on the tiny fixture package: ONNX Runtime in process, the worker thread, the batching wrapper
// (over either), the replay model of offline scoring (its recording made from the ONNX model's
// outputs), and the fakes the server tests use; then again on the fixture with sarm.onnx's optional
// `uncertainty` output (test/ensemble-package.ts), and a check that every path gives the same
// uncertainty bits as ONNX Runtime in process.

import { cp, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchingProgressModel, type BatchingOptions } from '../../models/batching.ts';
import { parseCard, type ModelCard } from '../../models/card.ts';
import { OnnxProgressModel, type GrmBatch, type ProgressModel, type SarmBatch } from '../../models/package.ts';
import { WorkerProgressModel } from '../../models/worker-model.ts';
import { FIXTURE_MODEL_DIR } from '../../core/paths.ts';
import { ReplayModel, type ReplayStep } from '../../offline/score/replay-model.ts';
import { ensemblePackage } from '../ensemble-package.ts';
import { FakeProgressModel } from '../server/helpers.ts';
import { Probes, progressModelContract, type ProbeCall, type ProgressModelSubject } from './progress-model.ts';

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

// The fixture package with sarm.onnx's `uncertainty` output, and either package without its GRM head
// (model.json edited, grm.onnx removed); each made on first use.
let ensembleDir: Promise<string> | undefined;
const sarmOnlyDirs = new Map<boolean, Promise<string>>();
function packageDir(grm: boolean, ensemble = false): Promise<string> {
  const full = ensemble ? (ensembleDir ??= ensemblePackage()) : Promise.resolve(FIXTURE_MODEL_DIR);
  if (grm) return full;
  let dir = sarmOnlyDirs.get(ensemble);
  if (!dir)
    sarmOnlyDirs.set(
      ensemble,
      (dir = (async () => {
        const out = join(await mkdtemp(join(tmpdir(), 'stageward-contract-')), 'model');
        await cp(await full, out, { recursive: true });
        await writeFile(join(out, 'model.json'), JSON.stringify(withoutGrm(JSON.parse(await readFile(join(out, 'model.json'), 'utf8')))));
        await unlink(join(out, 'grm.onnx'));
        return out;
      })()),
    );
  return dir;
}

// One ONNX model per package, shared by the subjects that only read from it (the replay recordings,
// the keep-open wrapper); closed when the file is done.
const references = new Map<string, Promise<OnnxProgressModel>>();
function reference(grm: boolean, ensemble = false): Promise<OnnxProgressModel> {
  const key = `${grm}/${ensemble}`;
  let m = references.get(key);
  if (!m) references.set(key, (m = packageDir(grm, ensemble).then((dir) => OnnxProgressModel.load(dir, quiet))));
  return m;
}

afterAll(async () => {
  for (const m of references.values()) await (await m).close();
  for (const dir of [...sarmOnlyDirs.values(), ...(ensembleDir ? [ensembleDir] : [])])
    await rm(join(await dir, '..'), { recursive: true, force: true });
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
      sarm.push({
        input: { batch, row: o, rows: b },
        stageLogits: out.stageLogits.subarray(o * K, (o + b) * K),
        tau: out.tau[o]!,
        ...(out.uncertainty ? { uncertainty: out.uncertainty[o]! } : {}),
      });
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

const base = { card: CARD, cardWithoutGrm: CARD_WITHOUT_GRM, rows: 'any', batchTolerance: 0, stateless: true, uncertainty: false } as const;

// The ensemble package's card (its model.json also names `architecture.ensemble`).
const ensembleJson = JSON.parse(await readFile(join(await packageDir(true, true), 'model.json'), 'utf8')) as Json;
const ensemble = {
  ...base,
  card: parseCard(ensembleJson),
  cardWithoutGrm: parseCard(withoutGrm(ensembleJson)),
  uncertainty: true,
  closedCode: 'SW_ERR_SHUTTING_DOWN',
} as const;

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
  // The same implementations over a package whose SARM graph also outputs `uncertainty`.
  [
    'OnnxProgressModel, ensemble package (uncertainty output)',
    { ...ensemble, open: async (_s, { grm }) => OnnxProgressModel.load(await packageDir(grm, true), quiet) },
  ],
  [
    'WorkerProgressModel, ensemble package',
    { ...ensemble, open: async (_s, { grm }) => WorkerProgressModel.load(await packageDir(grm, true), quiet) },
  ],
  [
    'BatchingProgressModel over WorkerProgressModel, ensemble package (maxBatch 3, two batches at once)',
    {
      ...ensemble,
      open: async (_s, { grm }) =>
        new BatchingProgressModel(await WorkerProgressModel.load(await packageDir(grm, true), quiet), SMALL_BATCHES),
    },
  ],
  [
    'ReplayModel, recorded from the ensemble package',
    {
      ...ensemble,
      stateless: false,
      rows: 'per-step',
      open: async (script, { grm }) => recordedReplay(await reference(grm, true), script, grm),
    },
  ],
  [
    'FakeProgressModel with uncertainty',
    {
      ...base,
      uncertainty: true,
      open: async (_s, { grm }) => (grm ? new FakeProgressModel({ uncertainty: true }) : new FakeWithoutGrm({ uncertainty: true })),
      closedCode: 'SW_ERR_SHUTTING_DOWN',
    },
  ],
];

for (const [name, subject] of SUBJECTS) progressModelContract(name, subject);

describe('SARM uncertainty: the same bits through the worker thread, batching and replay as in process', () => {
  it('gives each window the uncertainty ONNX Runtime gives it in process', async () => {
    const direct = await reference(true, true);
    const p = new Probes(ensemble.card, 11);
    const steps = [0, 1, 4, 9, 13, 20];
    const windows = steps.map((t) => p.sarm([t]));
    const want = await Promise.all(windows.map(async (w) => (await direct.sarm(w.batch)).uncertainty!.slice()));
    expect(want.every((u) => u.length === 1 && Number.isFinite(u[0]) && u[0]! >= 0)).toBe(true);

    const dir = await packageDir(true, true);
    const worker = await WorkerProgressModel.load(dir, quiet);
    const batching = new BatchingProgressModel(await WorkerProgressModel.load(dir, quiet), SMALL_BATCHES);
    const merged = new BatchingProgressModel(await OnnxProgressModel.load(dir, quiet), MERGE_ALL);
    const replay = await recordedReplay(direct, windows, false);
    try {
      const bits = (a: Float32Array | undefined) => Array.from(new Uint32Array(a!.slice().buffer));
      const viaWorker = await Promise.all(windows.map((w) => worker.sarm(w.batch)));
      // all at once, so the batching models merge and split them (over several calls of maxBatch 3)
      const viaBatching = await Promise.all(windows.map((w) => batching.sarm(w.batch)));
      const viaMerged = await Promise.all(windows.map((w) => merged.sarm(w.batch)));
      const viaReplay: Float32Array[] = [];
      for (const w of windows) viaReplay.push((await replay.sarm(w.batch)).uncertainty!);
      windows.forEach((_, i) => {
        expect(bits(viaWorker[i]!.uncertainty), `window ${i}, worker thread`).toEqual(bits(want[i]));
        expect(bits(viaBatching[i]!.uncertainty), `window ${i}, batching over the worker`).toEqual(bits(want[i]));
        expect(bits(viaMerged[i]!.uncertainty), `window ${i}, batching in process`).toEqual(bits(want[i]));
        expect(bits(viaReplay[i]), `window ${i}, replay`).toEqual(bits(want[i]));
      });
    } finally {
      await Promise.all([worker.close(), batching.close(), merged.close(), replay.close()]);
    }
  });
});
