// Scoring a LeRobot v3.0 dataset recorded by the simulator with the bundled pick_place model: the
// per-frame numbers equal stepping the engine directly (batched and strided runs included),
// sarm_progress.parquet reads back with LeRobot's schema and values (and keeps earlier episodes'
// values when scored in parts), a corrupt video among good ones is reported and skipped, and
// `stageward score --dataset` prints the table, writes a self-contained report.html (a row and key frames
// per episode) and exits 0.

import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readParquetRows } from '../../../datasets/parquet-file.ts';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RewardEngine, type StepResult } from '../../../models/engine.ts';
import { OnnxProgressModel } from '../../../models/package.ts';
import { ZOO_DIR } from '../../../core/paths.ts';
import { main } from '../../../cli/main.ts';
import { LeRobotDataset } from '../../../datasets/reader.ts';
import { LeRobotDatasetWriter } from '../../../datasets/writer.ts';
import { SimEnv } from '../../../sim/env.ts';
import { recordEpisodes } from '../../../sim/record.ts';
import { createRenderer } from '../../../sim/render/index.ts';
import { scoreDataset } from '../../../offline/score/run.ts';
import { expectReport } from '../../html-report-checks.ts';

const MODEL_DIR = join(ZOO_DIR, 'pick_place');
const VIEWS = ['front', 'side', 'wrist'];

let work: string;
let root: string;
let model: OnnxProgressModel;
/** Engine results per episode, stepped directly (progress "both": SARM and GRM), pbrs gamma 0.99. */
const direct: StepResult[][] = [];

async function readTable(path: string) {
  const file = await asyncBufferFromFile(path);
  const metadata = await parquetMetadataAsync(file);
  const rows = (await parquetReadObjects({ file, metadata })) as Record<string, unknown>[];
  return { schema: metadata.schema.slice(1).map((s) => [s.name, s.type]), rows };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-score-dataset-'));
  root = join(work, 'pp');
  const envOptions = { task: 'pick_place', renderer: createRenderer() };
  const probe = await SimEnv.create(envOptions);
  const writer = await LeRobotDatasetWriter.create(root, probe.datasetSpec());
  probe.close();
  await recordEpisodes(envOptions, 3, { seedBase: 41, source: { kind: 'expert', preset: 'mixed', maxIdleSteps: 10 } }, async (ep) => {
    await writer.addEpisode(ep);
  });
  await writer.finish();
  model = await OnnxProgressModel.load(MODEL_DIR);
  const ds = await LeRobotDataset.open(root);
  const engine = new RewardEngine(model);
  for (const ep of ds.episodes) {
    const data = await ds.episodeData(ep.index);
    const episode = await engine.start({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs', progress: 'both' });
    const results: StepResult[] = [];
    let t = 0;
    for await (const frames of ds.frameSets(ep.index, { width: 96, height: 96, views: VIEWS })) {
      results.push(await episode.step({ frames, reward: t === 0 ? 0 : data.reward![t - 1]! }));
      t++;
    }
    direct.push(results);
  }
}, 60_000);

afterAll(async () => {
  await model?.close();
  await rm(work, { recursive: true, force: true });
});

describe('scoring a recorded dataset', () => {
  it('gives the same per-frame progress, stage, tau and shaped reward as stepping the engine directly', async () => {
    const ds = await LeRobotDataset.open(root);
    const run = await scoreDataset(
      model,
      ds,
      {},
      { out: join(work, 'full'), progress: 'both', dense: true, batchFrames: 7, encodeBatchImages: 6, plots: false },
    );
    expect(run.totals).toMatchObject({ episodes: 3, scored: 3, failed: 0 });
    for (const [e, results] of direct.entries()) {
      const doc = JSON.parse(await readFile(join(work, 'full', run.reports[e]!.files!.json), 'utf8')) as {
        frames: Record<string, number>[];
      };
      expect(doc.frames.length).toBe(results.length);
      expect(doc.frames.map((f) => f.progress)).toEqual(results.map((r) => r.progress));
      expect(doc.frames.map((f) => f.progress_sparse)).toEqual(results.map((r) => r.heads.sarm));
      expect(doc.frames.map((f) => f.progress_dense)).toEqual(results.map((r) => r.heads.grm));
      expect(doc.frames.map((f) => f.stage)).toEqual(results.map((r) => r.stage.index));
      expect(doc.frames.map((f) => f.tau)).toEqual(results.map((r) => r.tau));
      // the bundled package is an ensemble: the batched scorer gives the engine's single-window bits
      expect(results.every((r) => typeof r.uncertainty === 'number')).toBe(true);
      expect(doc.frames.map((f) => f.uncertainty)).toEqual(results.map((r) => r.uncertainty));
      expect(doc.frames.map((f) => f.reward)).toEqual(results.map((r) => r.shaped));
      expect(doc.frames.some((f) => f.env_reward !== 0)).toBe(run.reports[e]!.success === true);
      expect(typeof doc.frames[0]!.true_progress).toBe('number');
    }
  });

  it("--stride N: scored frames keep the full run's exact values, the rest are interpolated, and fewer frames are encoded", async () => {
    const ds = await LeRobotDataset.open(root);
    const run = await scoreDataset(model, ds, { episodes: [1] }, { out: join(work, 'strided'), stride: 4, plots: false, parquet: false });
    const report = run.reports[0]!;
    const frames = (JSON.parse(await readFile(join(work, 'strided', report.files!.json), 'utf8')) as { frames: Record<string, number>[] })
      .frames;
    const full = direct[1]!;
    const last = full.length - 1;
    const scored = frames.flatMap((f, t) => (f.scored ? [t] : []));
    expect(scored).toEqual(Array.from({ length: last + 1 }, (_, t) => t).filter((t) => t % 4 === 0 || t === last));
    for (const t of scored) {
      expect(frames[t]!.progress_sparse).toBe(full[t]!.heads.sarm);
      expect(frames[t]!.stage).toBe(full[t]!.stage.index);
      expect(frames[t]!.tau).toBe(full[t]!.tau);
    }
    for (let i = 0; i + 1 < scored.length; i++) {
      const [a, b] = [scored[i]!, scored[i + 1]!];
      for (let t = a + 1; t < b; t++) {
        const expected = full[a]!.heads.sarm + ((full[b]!.heads.sarm - full[a]!.heads.sarm) * (t - a)) / (b - a);
        expect(frames[t]!.progress_sparse).toBeCloseTo(expected, 12);
        expect(frames[t]!.stage).toBe(full[a]!.stage.index);
      }
    }
    expect(report.timing!.sarm_windows).toBe(scored.length);
    expect(report.timing!.encoded_frames).toBeLessThan(full.length);
  });
});

describe('sarm_progress.parquet', () => {
  it("has LeRobot's columns and reads back the scored values (float32), one row per dataset frame", async () => {
    const ds = await LeRobotDataset.open(root);
    await scoreDataset(model, ds, {}, { out: join(work, 'pq'), dense: true, plots: false, batchFrames: 16 });
    const { schema, rows } = await readTable(join(root, 'sarm_progress.parquet'));
    expect(schema).toEqual([
      ['index', 'INT64'],
      ['episode_index', 'INT64'],
      ['frame_index', 'INT64'],
      ['progress_sparse', 'FLOAT'],
      ['progress_dense', 'FLOAT'],
      ['progress_uncertainty', 'FLOAT'],
    ]);
    expect(rows.length).toBe(ds.episodes.reduce((a, e) => a + e.length, 0));
    let i = 0;
    for (const ep of ds.episodes) {
      const data = await ds.episodeData(ep.index);
      for (let t = 0; t < ep.length; t++, i++) {
        const row = rows[i]!;
        expect(row.index).toBe(BigInt(data.columns.index![t] as bigint));
        expect(row.episode_index).toBe(BigInt(ep.index));
        expect(row.frame_index).toBe(BigInt(t));
        expect(row.progress_sparse).toBe(Math.fround(direct[ep.index]![t]!.heads.sarm));
        expect(row.progress_dense).toBe(Math.fround(direct[ep.index]![t]!.heads.grm!));
        expect(row.progress_uncertainty).toBe(Math.fround(direct[ep.index]![t]!.uncertainty!));
      }
    }
  });

  it('a corrupt video among good ones is reported with its code and skipped; scoring in parts keeps earlier values', async () => {
    const copy = join(work, 'corrupt');
    await cp(root, copy, { recursive: true });
    await rm(join(copy, 'sarm_progress.parquet'), { force: true });
    const ds = await LeRobotDataset.open(copy);
    // Episode 1's front camera lives in a file of its own, and that file is garbage.
    const bad = join(copy, 'videos', 'observation.images.front', 'chunk-000', 'file-001.mp4');
    await writeFile(bad, Buffer.alloc(8192, 0x42));
    ds.episode(1).videos.front!.path = bad;
    const run = await scoreDataset(model, ds, {}, { out: join(work, 'corrupt-out'), plots: false });
    expect(run.reports.map((r) => r.status)).toEqual(['scored', 'failed', 'scored']);
    expect(run.reports[1]).toMatchObject({ episode: 1, code: 'SW_ERR_FFMPEG' });
    expect(run.totals).toMatchObject({ scored: 2, failed: 1 });
    const summary = JSON.parse(await readFile(join(work, 'corrupt-out', 'summary.json'), 'utf8'));
    expect(summary.episodes[1]).toMatchObject({ status: 'failed', code: 'SW_ERR_FFMPEG' });
    let { rows } = await readTable(join(copy, 'sarm_progress.parquet'));
    expect(rows.filter((r) => r.episode_index === 1n).every((r) => r.progress_sparse === null)).toBe(true);
    expect(rows.filter((r) => r.episode_index === 2n).every((r) => typeof r.progress_sparse === 'number')).toBe(true);

    // The video is repaired and only episode 1 is scored now: episodes 0 and 2 keep their values.
    ds.episode(1).videos.front!.path = ds.episode(0).videos.front!.path;
    await scoreDataset(model, ds, { episodes: [1] }, { out: join(work, 'corrupt-out2'), plots: false });
    ({ rows } = await readTable(join(copy, 'sarm_progress.parquet')));
    const byEpisode = (e: bigint) => rows.filter((r) => r.episode_index === e).map((r) => r.progress_sparse);
    expect(byEpisode(1n)).toEqual(direct[1]!.map((r) => Math.fround(r.heads.sarm)));
    expect(byEpisode(2n)).toEqual(direct[2]!.map((r) => Math.fround(r.heads.sarm)));
  });
});

describe('stageward score --dataset', () => {
  it('scores the selected episodes, prints the table, writes the parquet and the plots, and refuses a task the card lacks', async () => {
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
    const err = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
    try {
      const out = join(work, 'cli');
      expect(
        await main([
          'score',
          '--model',
          MODEL_DIR,
          '--dataset',
          root,
          '--episodes',
          '0,2',
          '--out',
          out,
          '--inference-thread',
          'main',
          '--no-progress',
        ]),
      ).toBe(0);
      expect(lines.join('\n')).toMatch(/ep\s+task\s+frames\s+final\s+mean\s+max\s+success\s+status/);
      expect(lines.join('\n')).toContain('2 of 2 episode(s) scored');
      // LeRobot's scorer names its model in the file's metadata; so does this run.
      const meta = (await readParquetRows(join(root, 'sarm_progress.parquet'))).metadata.key_value_metadata ?? [];
      expect(meta.map((e) => [e.key, e.value])).toEqual([['reward_model_path', MODEL_DIR]]);
      // The lerobot-train flags that use the file, with its absolute path.
      expect(lines.join('\n')).toContain(
        `lerobot-train <your flags> --sample_weighting.type=rabc --sample_weighting.progress_path=${join(resolve(root), 'sarm_progress.parquet')} --sample_weighting.head_mode=sparse --sample_weighting.kappa=0.01`,
      );
      const png = await readFile(join(out, 'plots', 'episode-0002.png'));
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      // report.html beside them: self-contained, one row per episode, key frames of the scored episodes
      expect(lines.join('\n')).toContain(`wrote ${join(out, 'summary.json')} and ${join(out, 'report.html')}`);
      const html = await readFile(join(out, 'report.html'), 'utf8');
      expectReport(html, { kind: 'score', episodes: 2, link: ['episode-0002', '2'], chart: 'episode-0002-progress', minThumbnails: 2 });
      expect(
        await main(['score', '--model', MODEL_DIR, '--dataset', root, '--task', 'fold the shirt', '--out', out, '--no-progress']),
      ).toBe(2);
      expect(lines.join('\n')).toContain('SW_ERR_TASK_UNKNOWN');
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
  });
});
