// LeRobot v2.1 datasets (per-episode parquet and mp4 under chunk-{episode_chunk:03d}, meta/*.jsonl),
// laid out as LeRobot writes them: the reader gives the same API as for v3.0 (episodes, tasks,
// global ranges, rows, frames, aggregated stats), and `stageward dataset info`, `dataset export`,
// `score` and `eval` run on them; other versions are refused with SW_ERR_DATASET_FORMAT.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeRobotDataset } from '../../datasets/reader.ts';
import { readNpy } from '../../datasets/npy.ts';
import { expectCode, runCli } from '../helpers.ts';
import { evalFixture, FIXTURE_SIZE, fixturePixels, scoreFixture, writeLeRobotFixture } from './lerobot-fixture.ts';

const VIEWS = ['front', 'side', 'wrist'];
const LENGTHS = [5, 7];
const TASKS = ['pick the cube', 'place the cube'];

let work: string;
let root: string;

function mae(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-v21-'));
  root = join(work, 'v21');
  await writeLeRobotFixture(root, {
    version: 'v2.1',
    lengths: LENGTHS,
    tasks: TASKS,
    taskOf: [0, 1],
    cameras: VIEWS.map((view) => ({ view, storage: 'video' as const })),
    chunksSize: 1, // episode 1 lives in chunk-001, as LeRobot puts episode 1000 with the default size
    extras: {
      sparse_subtask_names: {
        leaf: 'STRING',
        values: [
          ['reach', 'grasp'],
          ['reach', 'grasp'],
        ],
      },
      sparse_subtask_start_frames: {
        leaf: 'INT64',
        values: [
          [0, 2],
          [0, 3],
        ],
      },
      sparse_subtask_end_frames: {
        leaf: 'INT64',
        values: [
          [2, 5],
          [3, 7],
        ],
      },
    },
  });
}, 60_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('reading a v2.1 dataset', () => {
  it('lists episodes, tasks, global frame ranges and files as LeRobot lays them out', async () => {
    const ds = await LeRobotDataset.open(root);
    expect(ds.info.codebase_version).toBe('v2.1');
    expect(ds.tasks).toEqual(TASKS);
    expect(ds.views).toEqual(VIEWS);
    expect(ds.fps).toBe(10);
    expect(
      ds.episodes.map((e) => [
        e.index,
        e.length,
        e.tasks,
        e.datasetFrom,
        e.datasetTo,
        e.dataPath.slice(root.length + 1),
        e.videos.front!.path.slice(root.length + 1),
      ]),
    ).toEqual([
      [
        0,
        5,
        ['pick the cube'],
        0,
        5,
        'data/chunk-000/episode_000000.parquet',
        'videos/chunk-000/observation.images.front/episode_000000.mp4',
      ],
      [
        1,
        7,
        ['place the cube'],
        5,
        12,
        'data/chunk-001/episode_000001.parquet',
        'videos/chunk-001/observation.images.front/episode_000001.mp4',
      ],
    ]);
    // annotations from episodes.jsonl; an end equal to the length is the exclusive end of the last frame
    expect(ds.episodes.map((e) => e.subtasks)).toEqual([
      [
        { name: 'reach', start: 0, end: 2 },
        { name: 'grasp', start: 2, end: 4 },
      ],
      [
        { name: 'reach', start: 0, end: 3 },
        { name: 'grasp', start: 3, end: 6 },
      ],
    ]);
    expect(ds.stageNames).toEqual(['reach', 'grasp']);
  });

  it("gives the episode's data rows", async () => {
    const ds = await LeRobotDataset.open(root);
    const data = await ds.episodeData(1);
    expect(Array.from(data.frameIndex)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(Array.from(data.taskIndex)).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(data.columns.index!.map(Number)).toEqual([5, 6, 7, 8, 9, 10, 11]);
    expect(data.state!.map((s) => Array.from(s))).toEqual([0, 1, 2, 3, 4, 5, 6].map((t) => [t, 1]));
    expect(Array.from(data.timestamp)).toEqual([0, 1, 2, 3, 4, 5, 6].map((t) => Math.fround(t / 10)));
  });

  it("decodes each episode's own mp4, close to the frames recorded", async () => {
    const ds = await LeRobotDataset.open(root);
    for (const e of [0, 1]) {
      let t = 0;
      for await (const set of ds.frameSets(e)) {
        VIEWS.forEach((view, v) => {
          expect([set[view]!.width, set[view]!.height]).toEqual([FIXTURE_SIZE, FIXTURE_SIZE]);
          expect(mae(set[view]!.data, fixturePixels(e, v, t))).toBeLessThan(6);
        });
        t++;
      }
      expect(t).toBe(LENGTHS[e]);
    }
  });

  it('aggregates meta/episodes_stats.jsonl when there is no stats.json', async () => {
    const ds = await LeRobotDataset.open(root);
    const s = ds.stats!['observation.state'] as Record<string, number[]>;
    expect(s.count).toEqual([12]);
    expect(s.min).toEqual([0, 0]);
    expect(s.max).toEqual([6, 1]);
    // frames 0..4 of episode 0 and 0..6 of episode 1: mean (10 + 21) / 12, and episode index 7/12
    expect(s.mean![0]).toBeCloseTo(31 / 12, 12);
    expect(s.mean![1]).toBeCloseTo(7 / 12, 12);
    const all = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6];
    const m = 31 / 12;
    expect(s.std![0]).toBeCloseTo(Math.sqrt(all.reduce((a, x) => a + (x - m) ** 2, 0) / 12), 12);
    expect(s.std![1]).toBeCloseTo(Math.sqrt((5 * 7 * 7 + 7 * 5 * 5) / 1728), 12);
  });
});

describe('the commands on a v2.1 dataset', () => {
  it('`dataset info` prints its version, fps, cameras, episodes, frames, tasks and annotations', async () => {
    const run = await runCli(['dataset', 'info', '--dataset', root]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout.join('\n'))).toEqual({
      codebase_version: 'v2.1',
      robot_type: 'so100',
      fps: 10,
      cameras: VIEWS.map((v) => ({ key: `observation.images.${v}`, storage: 'video' })),
      tasks: TASKS,
      annotated_episodes: 2,
      stages: ['reach', 'grasp'],
      priors: null,
      episodes: 2,
      frames: 12,
      success: 0,
    });
  });

  it('`dataset export` writes a bundle of every frame with its labels', async () => {
    const out = join(work, 'bundle');
    const run = await runCli(['dataset', 'export', '--dataset', root, '--out', out, '--size', '8']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.join('\n')).toContain('wrote');
    const header = JSON.parse(await readFile(join(out, 'bundle.json'), 'utf8'));
    expect(header.source.codebase_version).toBe('v2.1');
    expect(header.tasks).toEqual(TASKS);
    expect(header.episodes.map((e: { index: number; length: number; offset: number }) => [e.index, e.length, e.offset])).toEqual([
      [0, 5, 0],
      [1, 7, 5],
    ]);
    expect(header.arrays.frames.shape).toEqual([12, 3, 8, 8, 3]);
    const stage = await readNpy(join(out, 'stage.npy'));
    expect(Array.from(stage.data as BigInt64Array, Number)).toEqual([0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1]);
    const tau = await readNpy(join(out, 'tau.npy'));
    expect(Array.from(tau.data as Float32Array)).toEqual([0, 0.5, 1, 0.5, 1, 0, 1 / 3, 2 / 3, 1, 1 / 3, 2 / 3, 1].map(Math.fround));
  });

  it('`score` scores every episode and writes sarm_progress.parquet over the global indices', async () => {
    const summary = await scoreFixture(root, join(work, 'score'));
    expect(summary.totals).toMatchObject({ episodes: 2, scored: 2, failed: 0 });
    const rows = (await parquetReadObjects({ file: await asyncBufferFromFile(join(root, 'sarm_progress.parquet')) })) as Record<
      string,
      unknown
    >[];
    expect(rows.map((r) => [Number(r.index), Number(r.episode_index), Number(r.frame_index)])).toEqual([
      ...[0, 1, 2, 3, 4].map((t) => [t, 0, t]),
      ...[0, 1, 2, 3, 4, 5, 6].map((t) => [5 + t, 1, t]),
    ]);
    expect(rows.every((r) => typeof r.progress_sparse === 'number' && r.progress_sparse >= 0 && r.progress_sparse <= 1)).toBe(true);
  }, 60_000);

  it('`eval` evaluates every episode', async () => {
    expect(await evalFixture(root, join(work, 'eval'))).toContain('"frames":7');
  }, 60_000);
});

describe('refusals', () => {
  it('refuses a codebase version it does not read, naming it', async () => {
    const info = JSON.parse(await readFile(join(root, 'meta/info.json'), 'utf8'));
    const dir = join(work, 'v20');
    await writeLeRobotFixture(dir, { version: 'v2.1', lengths: [3], tasks: ['t'], cameras: [] });
    await writeFile(join(dir, 'meta/info.json'), JSON.stringify({ ...info, codebase_version: 'v2.0' }));
    await expectCode(LeRobotDataset.open(dir), 'SW_ERR_DATASET_FORMAT', 'codebase_version is "v2.0"; stageward reads v3.0 and v2.1');
  });

  it('names a missing episodes.jsonl, and a bad line in it', async () => {
    const dir = join(work, 'broken');
    await writeLeRobotFixture(dir, { version: 'v2.1', lengths: [3], tasks: ['t'], cameras: [] });
    await writeFile(join(dir, 'meta/episodes.jsonl'), '{"episode_index": 0, "tasks": ["t"], "length": 3}\n{"episode_index": 1,\n');
    await expectCode(LeRobotDataset.open(dir), 'SW_ERR_DATASET_FORMAT', 'meta/episodes.jsonl line 2 is not valid JSON');
    await rm(join(dir, 'meta/episodes.jsonl'));
    await expectCode(LeRobotDataset.open(dir), 'SW_ERR_DATASET_NOT_FOUND', 'meta/episodes.jsonl is missing');
  });

  it('names a missing episode file where the template puts it', async () => {
    const dir = join(work, 'nodata');
    await writeLeRobotFixture(dir, { version: 'v2.1', lengths: [3, 4], tasks: ['t'], cameras: [] });
    await rm(join(dir, 'data/chunk-000/episode_000001.parquet'));
    const ds = await LeRobotDataset.open(dir);
    expect((await ds.episodeData(0)).frameIndex.length).toBe(3);
    await expectCode(ds.episodeData(1), 'SW_ERR_DATASET_NOT_FOUND', 'data/chunk-000/episode_000001.parquet');
  });
});
