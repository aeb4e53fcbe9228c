// Offline scoring of a package whose SARM graph reports `uncertainty` (test/ensemble-package.ts):
// the per-frame uncertainty equals stepping the engine directly, bit for bit (batched and strided runs
// included: interpolated between scored frames), the per-frame CSV/JSON carry it (empty/null for a
// model without it), and sarm_progress.parquet gets `progress_uncertainty` only when a model reports it.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoEpisode } from '../../../bench/demo-episode.ts';
import type { LeRobotDataset } from '../../../datasets/reader.ts';
import { RewardEngine, type StepResult } from '../../../models/engine.ts';
import { OnnxProgressModel } from '../../../models/package.ts';
import { smoothProgress } from '../../../models/progress.ts';
import type { FrameSet } from '../../../models/preprocess.ts';
import { scoreFrames } from '../../../offline/score/batch-scorer.ts';
import { writeProgressParquet } from '../../../offline/score/progress-parquet.ts';
import { frameRows, toCsv } from '../../../offline/score/report.ts';
import { ensemblePackage } from '../../ensemble-package.ts';
import { expectCode, FIXTURE_MODEL_DIR } from '../../helpers.ts';

const VIEWS = ['front', 'side', 'wrist'];
const FRAMES: FrameSet[] = [...demoEpisode(VIEWS, 23, 48, 80, 5)].map((f) => f.views);
const OPTIONS = { task: 'pick_place', gamma: 0.99, shaping: 'pbrs' } as const;

let work: string;
let ensembleDir: string;
let ensemble: OnnxProgressModel;
let plain: OnnxProgressModel;
let direct: StepResult[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-score-uncertainty-'));
  ensembleDir = await ensemblePackage();
  ensemble = await OnnxProgressModel.load(ensembleDir, { log: () => {} });
  plain = await OnnxProgressModel.load(FIXTURE_MODEL_DIR, { log: () => {} });
  const episode = await new RewardEngine(ensemble).start(OPTIONS);
  direct = [];
  for (const frames of FRAMES) direct.push(await episode.step({ frames }));
});

afterAll(async () => {
  await ensemble?.close();
  await plain?.close();
  await rm(join(ensembleDir, '..'), { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

describe('scoring with an ensemble package', () => {
  it("gives each frame the engine's uncertainty, bit for bit, in batches", async () => {
    const score = await scoreFrames(ensemble, FRAMES, { task: 'pick_place', batchFrames: 5, encodeBatchImages: 6 });
    expect(score.uncertainty).toEqual(direct.map((r) => r.uncertainty));
    expect(score.sparse).toEqual(direct.map((r) => r.heads.sarm));
  });

  it('--stride: scored frames keep the exact uncertainty, the frames between are interpolated', async () => {
    const stride = 4;
    const score = await scoreFrames(ensemble, FRAMES, { task: 'pick_place', stride, batchFrames: 6 });
    const u = score.uncertainty!;
    expect(u).toHaveLength(FRAMES.length);
    const last = FRAMES.length - 1;
    for (let t = 0; t < FRAMES.length; t++) {
      if (t % stride === 0 || t === last) {
        expect(score.scored[t]).toBe(true);
        expect(u[t]).toBe(direct[t]!.uncertainty);
      } else {
        const a = t - (t % stride);
        const b = Math.min(a + stride, last);
        expect(u[t]).toBeCloseTo(direct[a]!.uncertainty! + ((direct[b]!.uncertainty! - direct[a]!.uncertainty!) * (t - a)) / (b - a), 12);
      }
    }
  });

  it('writes an uncertainty column in the per-frame CSV and JSON rows, empty for a model without it', async () => {
    const score = await scoreFrames(ensemble, FRAMES.slice(0, 4), { task: 'pick_place' });
    const rows = frameRows(score, (t) => t / 10, null);
    expect(rows.map((r) => r.uncertainty)).toEqual(direct.slice(0, 4).map((r) => r.uncertainty));
    const csv = toCsv(rows).trim().split('\n');
    expect(csv[0]).toBe('frame_index,time_s,stage,stage_name,tau,progress,progress_sparse,uncertainty,env_reward,reward,scored');
    expect(Number(csv[1]!.split(',')[7])).toBe(direct[0]!.uncertainty);

    const none = await scoreFrames(plain, FRAMES.slice(0, 4), { task: 'pick_place' });
    expect(none.uncertainty).toBeNull();
    const plainRows = frameRows(none, (t) => t / 10, null);
    expect(plainRows.every((r) => r.uncertainty === null)).toBe(true);
    expect(toCsv(plainRows).split('\n')[1]!.split(',')[7]).toBe('');
  });
});

describe('scoring with smoothing', () => {
  const smoothing = { kind: 'ema', alpha: 0.4, u0: 0.1 } as const;

  it("gives the engine's smoothed progress and reward, weighted by the uncertainty, with progress_sparse raw", async () => {
    const episode = await new RewardEngine(ensemble).start({ ...OPTIONS, smoothing });
    const want: StepResult[] = [];
    for (const frames of FRAMES) want.push(await episode.step({ frames }));
    const score = await scoreFrames(ensemble, FRAMES, { task: 'pick_place', batchFrames: 5, smoothing });
    expect(score.progress).toEqual(want.map((r) => r.progress));
    expect(score.reward).toEqual(want.map((r) => r.shaped));
    expect(score.sparse).toEqual(direct.map((r) => r.heads.sarm));
    expect(score.progress.some((p, t) => p !== score.sparse[t])).toBe(true);
  });

  it('--stride: smooths the interpolated series frame by frame, with the interpolated uncertainty', async () => {
    const score = await scoreFrames(ensemble, FRAMES, { task: 'pick_place', stride: 3, smoothing });
    let prev: number | undefined;
    for (let t = 0; t < score.frames; t++) {
      prev = smoothProgress(prev, score.sparse[t]!, score.uncertainty![t]!, smoothing);
      expect(score.progress[t]).toBe(prev);
    }
  });

  it('refuses a bad smoothing option with SW_ERR_BAD_OPTION', async () => {
    await expectCode(
      scoreFrames(ensemble, FRAMES, { task: 'pick_place', smoothing: { kind: 'ema', alpha: 2 } }),
      'SW_ERR_BAD_OPTION',
      'alpha',
    );
  });
});

describe('sarm_progress.parquet: progress_uncertainty', () => {
  async function readTable(path: string) {
    const file = await asyncBufferFromFile(path);
    const metadata = await parquetMetadataAsync(file);
    const rows = (await parquetReadObjects({ file, metadata })) as Record<string, unknown>[];
    return { columns: metadata.schema.slice(1).map((s) => s.name), rows };
  }
  /** The part of a dataset writeProgressParquet reads: its root and its episodes' spans. */
  const dataset = (root: string) =>
    ({
      root,
      episodes: [
        { index: 0, length: 3, datasetFrom: 0 },
        { index: 1, length: 2, datasetFrom: 3 },
      ],
    }) as unknown as LeRobotDataset;

  it('is written beside progress_sparse only when the model reports uncertainty, and kept for episodes scored earlier', async () => {
    const withIt = dataset(join(work, 'with'));
    const withoutIt = dataset(join(work, 'without'));
    await mkdir(withIt.root, { recursive: true });
    await mkdir(withoutIt.root, { recursive: true });

    await writeProgressParquet(
      withoutIt,
      [{ episode: 0, index: [0, 1, 2], sparse: [0.1, 0.2, 0.3], dense: null, uncertainty: null }],
      false,
    );
    expect((await readTable(join(withoutIt.root, 'sarm_progress.parquet'))).columns).toEqual([
      'index',
      'episode_index',
      'frame_index',
      'progress_sparse',
    ]);

    await writeProgressParquet(
      withIt,
      [{ episode: 0, index: [0, 1, 2], sparse: [0.1, 0.2, 0.3], dense: null, uncertainty: [0.01, 0.02, 0.3] }],
      false,
    );
    let table = await readTable(join(withIt.root, 'sarm_progress.parquet'));
    expect(table.columns).toEqual(['index', 'episode_index', 'frame_index', 'progress_sparse', 'progress_uncertainty']);
    expect(table.rows.map((r) => r.progress_uncertainty)).toEqual([Math.fround(0.01), Math.fround(0.02), Math.fround(0.3), null, null]);

    // episode 1 scored later by a model without uncertainty: episode 0's values stay, episode 1's are null
    await writeProgressParquet(withIt, [{ episode: 1, index: [3, 4], sparse: [0.5, 0.6], dense: null, uncertainty: null }], false);
    table = await readTable(join(withIt.root, 'sarm_progress.parquet'));
    expect(table.columns).toContain('progress_uncertainty');
    expect(table.rows.map((r) => r.progress_uncertainty)).toEqual([Math.fround(0.01), Math.fround(0.02), Math.fround(0.3), null, null]);
    expect(table.rows.map((r) => r.progress_sparse)).toEqual([0.1, 0.2, 0.3, 0.5, 0.6].map(Math.fround));
  });
});
