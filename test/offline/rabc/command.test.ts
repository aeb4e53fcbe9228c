// `stageward rabc` end to end on a tiny LeRobot dataset and a hand-written sarm_progress.parquet:
// the weights parquet beside the dataset reads back with hyparquet and matches the in-memory math,
// the filtered list names the episode that only loses progress, the stats and the histogram land in
// --out, the last stdout line is the stats, and bad inputs fail with their stable codes.

import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../../cli/main.ts';
import { scalarColumn, schemaOf } from '../../../datasets/format.ts';
import { writeParquetTable } from '../../../datasets/parquet-file.ts';
import { LeRobotDatasetWriter } from '../../../datasets/writer.ts';
import { readRabcWeights } from '../../../offline/rabc/files.ts';
import { rabcWeights } from '../../../offline/rabc/weights.ts';
import type { DatasetSpec, RecordedEpisode } from '../../../datasets/types.ts';

const S = 16;
const SPEC: DatasetSpec = {
  robotType: 'stageward_mocap_gripper',
  fps: 10,
  views: ['front'],
  image: { height: S, width: S },
  stateNames: ['x'],
  actionNames: ['dx'],
  stageNames: ['reach', 'place'],
};
const LENGTHS = [100, 4, 12];
const FROM = [0, 100, 104];
const CHUNK = 2;

// episode 0 makes steady progress, episode 1 only loses it, episode 2 lacks scores at odd frames < 8
const PROGRESS: number[][] = [
  Array.from({ length: 100 }, (_, t) => 0.01 * t),
  [0.3, 0.29, 0.28, 0.27],
  Array.from({ length: 12 }, (_, t) => (t === 3 || t === 7 ? NaN : 0.01 * t)),
];
const ABSENT = { episode: 2, frame: 1 }; // no row at all; frame 5 has a null value

function episode(e: number): RecordedEpisode {
  const T = LENGTHS[e]!;
  return {
    task: 'put the red cube in the bowl',
    frames: {
      front: Array.from({ length: T }, (_, t) => ({
        data: new Uint8Array(S * S * 3).fill((t * 13 + e * 50) % 255),
        height: S,
        width: S,
        channels: 3 as const,
      })),
    },
    state: Array.from({ length: T }, (_, t) => Float32Array.from([t])),
    action: Array.from({ length: T }, () => Float32Array.from([0.1])),
    reward: Array.from({ length: T }, () => 0),
    trueStage: Array.from({ length: T }, (_, t) => (t < T / 2 ? 0 : 1)),
    trueProgress: Array.from({ length: T }, (_, t) => t / (T - 1)),
    subtasks: [
      { name: 'reach', start: 0, end: Math.floor(T / 2) - 1 },
      { name: 'place', start: Math.floor(T / 2), end: T - 1 },
    ],
    success: e !== 1,
    meta: {},
  };
}

interface Row {
  index: number;
  episode_index: number;
  frame_index: number;
  progress_sparse: number | null;
  progress_dense?: number;
}

function progressRows(): Row[] {
  const rows: Row[] = [];
  PROGRESS.forEach((p, e) =>
    p.forEach((v, t) => {
      if (e === ABSENT.episode && t === ABSENT.frame) return;
      rows.push({ index: FROM[e]! + t, episode_index: e, frame_index: t, progress_sparse: e === 2 && t === 5 ? null : v });
    }),
  );
  return rows;
}

async function writeProgress(path: string, rows: Row[], dense = false): Promise<void> {
  const cols = [
    scalarColumn('index', 'INT64'),
    scalarColumn('episode_index', 'INT64'),
    scalarColumn('frame_index', 'INT64'),
    scalarColumn('progress_sparse', 'FLOAT'),
  ];
  const data = [
    { name: 'index', data: BigInt64Array.from(rows, (r) => BigInt(r.index)) },
    { name: 'episode_index', data: BigInt64Array.from(rows, (r) => BigInt(r.episode_index)) },
    { name: 'frame_index', data: BigInt64Array.from(rows, (r) => BigInt(r.frame_index)) },
    { name: 'progress_sparse', data: rows.map((r) => r.progress_sparse) },
  ];
  if (dense) {
    cols.push(scalarColumn('progress_dense', 'FLOAT'));
    data.push({ name: 'progress_dense', data: rows.map((r) => r.progress_dense ?? null) });
  }
  await writeParquetTable(path, schemaOf(cols), data);
}

interface Run {
  code: number;
  stdout: string[];
  stderr: string;
}

async function rabc(args: string[]): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void stdout.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void stderr.push(a.join(' ')));
  const code = await main(['rabc', ...args]);
  vi.restoreAllMocks();
  return { code, stdout, stderr: stderr.join('\n') };
}

let dir: string;
let dataset: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stageward-rabc-'));
  dataset = join(dir, 'pp');
  const w = await LeRobotDatasetWriter.create(dataset, SPEC);
  for (let e = 0; e < LENGTHS.length; e++) await w.addEpisode(episode(e));
  await w.finish();
  await writeProgress(join(dataset, 'sarm_progress.parquet'), progressRows());
});

afterEach(() => vi.restoreAllMocks());

describe('stageward rabc', () => {
  it('writes weights and the filtered list beside the dataset and stats plus a histogram into --out', async () => {
    const out = join(dir, 'report');
    const r = await rabc(['--dataset', dataset, '--chunk', String(CHUNK), '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);

    // the in-memory math on the same scores (the absent row and the null value are missing)
    const expected = rabcWeights(
      PROGRESS.map((p, e) => p.map((v, t) => (e === 2 && (t === ABSENT.frame || t === 5) ? NaN : Math.fround(v)))),
      { chunk: CHUNK },
    );
    const stats = JSON.parse(r.stdout.at(-1)!) as Record<string, number>;
    expect(stats).toMatchObject({
      samples: 116,
      missing: 4,
      chunk: CHUNK,
      kappa: 0.01,
      episodes: 3,
      filtered_episodes: 1,
      column: 'progress_sparse',
      progress_rows: 115,
    });
    expect(stats.mean_weight).toBeCloseTo(expected.stats.mean_weight!, 9);
    expect(stats.mu).toBeCloseTo(expected.stats.mu, 9);
    expect(stats.sigma).toBeCloseTo(expected.stats.sigma, 9);
    expect(r.stdout.join('\n')).toContain('episodes filtered out entirely: 1');

    // rabc_weights.parquet, read with hyparquet itself
    const file = await asyncBufferFromFile(join(dataset, 'rabc_weights.parquet'));
    const rows = (await parquetReadObjects({ file })) as Record<string, unknown>[];
    expect(rows).toHaveLength(116);
    expect(Object.keys(rows[0]!).sort()).toEqual(['delta', 'episode_index', 'frame_index', 'index', 'weight']);
    rows.forEach((row) => {
      const e = Number(row.episode_index);
      const t = Number(row.frame_index);
      expect(Number(row.index)).toBe(FROM[e]! + t);
      expect(row.weight).toBeCloseTo(expected.weights[e]![t]!, 9);
    });
    expect(rows.find((row) => Number(row.index) === 105)!.delta).toBeNaN(); // episode 2 frame 1: no score
    const back = await readRabcWeights(join(dataset, 'rabc_weights.parquet'));
    expect(Array.from(back.get(1)!.weight)).toEqual([0, 0, 0, 0]);

    // rabc_filtered.json
    const list = JSON.parse(await readFile(join(dataset, 'rabc_filtered.json'), 'utf8'));
    expect(list.filtered_episodes).toEqual([1]);
    expect(list.episodes[1]).toMatchObject({ episode_index: 1, frames: 4, mean_weight: 0, kept: [], dropped: [[100, 103]] });
    expect(list.episodes[0].kept).toEqual([[0, 98]]); // the last frame looks ahead to itself: r = 0, soft weight 0 here
    expect(list.episodes[2]).toMatchObject({ missing: 4 });
    expect(list.kept_samples + list.dropped_samples).toBe(116);

    // --out
    const saved = JSON.parse(await readFile(join(out, 'rabc_stats.json'), 'utf8'));
    expect(saved).toMatchObject({ ...stats, progress_file: join(dataset, 'sarm_progress.parquet') });
    const png = await sharp(join(out, 'rabc_weights_hist.png')).metadata();
    expect([png.format, png.width, png.height]).toEqual(['png', 960, 720]);
  });

  it('reads another progress file and its dense column with --progress and --column', async () => {
    const path = join(dir, 'scores.parquet');
    // dense progress: episode 1 now progresses too
    await writeProgress(
      path,
      progressRows().map((r) => ({ ...r, progress_dense: r.episode_index === 1 ? 0.1 * r.frame_index : (r.progress_sparse ?? 0) })),
      true,
    );
    const r = await rabc([
      '--dataset',
      dataset,
      '--progress',
      path,
      '--column',
      'progress_dense',
      '--chunk',
      '3',
      '--kappa',
      '0.05',
      '--out',
      join(dir, 'dense'),
      '--no-plot',
    ]);
    expect(r.code).toBe(0);
    const stats = JSON.parse(r.stdout.at(-1)!);
    expect(stats).toMatchObject({ column: 'progress_dense', chunk: 3, kappa: 0.05, filtered_episodes: 0 });
  });

  it('refuses bad inputs with stable codes', async () => {
    const other = join(dir, 'other.parquet');
    const check = async (args: string[], code: string, part: string) => {
      const r = await rabc(['--dataset', dataset, '--out', join(dir, 'bad'), ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(code);
      expect(r.stderr).toContain(part);
    };
    await check(['--chunk', '0'], 'SW_ERR_RABC_OPTION', 'chunk');
    await check(['--chunk', '2', '--kappa=-0.1'], 'SW_ERR_RABC_OPTION', 'kappa');
    await check(['--chunk', '2', '--progress', join(dir, 'nope.parquet')], 'SW_ERR_DATASET_NOT_FOUND', 'nope.parquet');
    await check(['--chunk', '2', '--column', 'progress_dense'], 'SW_ERR_DATASET_FORMAT', 'progress_dense');
    await writeProgress(other, [...progressRows(), { index: 116, episode_index: 7, frame_index: 0, progress_sparse: 0.5 }]);
    await check(['--chunk', '2', '--progress', other], 'SW_ERR_DATASET_EPISODE', 'episode(s) 7');
    await writeProgress(
      other,
      progressRows().map((r) => ({ ...r, index: r.index + 1 })),
    );
    await check(['--chunk', '2', '--progress', other], 'SW_ERR_DATASET_FORMAT', 'another dataset');
    await writeProgress(other, [...progressRows(), { index: 4, episode_index: 0, frame_index: 4, progress_sparse: 0.5 }]);
    await check(['--chunk', '2', '--progress', other], 'SW_ERR_DATASET_FORMAT', 'appears twice');
  });
});
