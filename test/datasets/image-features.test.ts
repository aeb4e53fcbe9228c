// Camera features of dtype "image" (frames as PNG/JPEG cells {bytes, path} of the data parquet, as
// LeRobot stores them in v3.0 and v2.1): they are views like video ones, decode to the exact PNG
// pixels (JPEG close), resize on request, read a cell's file when it has no bytes, and can be
// exported, scored and evaluated.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportBundle } from '../../datasets/bundle.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import { readNpy } from '../../datasets/npy.ts';
import { readParquetRows, writeParquetTable } from '../../datasets/parquet-file.ts';
import { listColumn, scalarColumn, schemaOf } from '../../datasets/format.ts';
import { expectCode, runCli } from '../helpers.ts';
import {
  evalFixture,
  FIXTURE_SIZE,
  fixturePixels,
  imageColumn,
  scoreFixture,
  writeLeRobotFixture,
  type FixtureCamera,
} from './lerobot-fixture.ts';

const CAMERAS: FixtureCamera[] = [
  { view: 'front', storage: 'image', format: 'png' },
  { view: 'side', storage: 'image', format: 'jpeg' },
  { view: 'wrist', storage: 'video' },
];
const LENGTHS = [4, 6];

let work: string;
let v30: string;
let v21: string;

function mae(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-images-'));
  v30 = join(work, 'v30');
  v21 = join(work, 'v21');
  const common = { lengths: LENGTHS, tasks: ['pick the cube'], cameras: CAMERAS };
  await writeLeRobotFixture(v30, { version: 'v3.0', ...common });
  await writeLeRobotFixture(v21, { version: 'v2.1', ...common });
}, 60_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('image features', () => {
  it('are views of the dataset, in info.json order, with how they are stored', async () => {
    for (const root of [v30, v21]) {
      const ds = await LeRobotDataset.open(root);
      expect(ds.views).toEqual(['front', 'side', 'wrist']);
      expect(ds.views.map((v) => ds.storage(v))).toEqual(['image', 'image', 'video']);
      expect(Object.keys(ds.episode(1).videos)).toEqual(['wrist']);
      // the data rows come without the image cells (frames() serves those)
      expect(Object.keys((await ds.episodeData(1)).columns)).toEqual([
        'action',
        'observation.state',
        'timestamp',
        'frame_index',
        'episode_index',
        'index',
        'task_index',
      ]);
    }
  });

  it('decode PNG cells to the exact pixels and JPEG ones close, for every episode of v3.0 and v2.1', async () => {
    for (const root of [v30, v21]) {
      const ds = await LeRobotDataset.open(root);
      for (const e of [0, 1]) {
        let t = 0;
        for await (const set of ds.frameSets(e)) {
          expect(set.front).toEqual({ data: fixturePixels(e, 0, t), height: FIXTURE_SIZE, width: FIXTURE_SIZE, channels: 3 });
          expect(mae(set.side!.data, fixturePixels(e, 1, t))).toBeLessThan(8);
          expect(mae(set.wrist!.data, fixturePixels(e, 2, t))).toBeLessThan(6);
          t++;
        }
        expect(t).toBe(LENGTHS[e]);
      }
    }
  });

  it('resize to the size asked for', async () => {
    const ds = await LeRobotDataset.open(v30);
    const frames = [];
    for await (const f of ds.frames(1, 'front', { width: 8, height: 4 })) frames.push(f);
    expect(frames.map((f) => [f.width, f.height, f.data.length])).toEqual(Array.from({ length: 6 }, () => [8, 4, 8 * 4 * 3]));
    // flat quadrants survive the shrink: the top-left pixel keeps its block's colour, give or take the filter's ringing
    const want = fixturePixels(1, 0, 2);
    for (let c = 0; c < 3; c++) expect(Math.abs(frames[2]!.data[c]! - want[c]!)).toBeLessThanOrEqual(4);
  });

  it("read a cell's file when the cell has no bytes, and name a missing one", async () => {
    const dir = join(work, 'paths');
    await writeLeRobotFixture(dir, { version: 'v2.1', lengths: [3], tasks: ['t'], cameras: [{ view: 'front', storage: 'image' }] });
    const file = join(dir, 'data/chunk-000/episode_000000.parquet');
    const { rows } = await readParquetRows(file);
    await mkdir(join(dir, 'images'), { recursive: true });
    for (let t = 0; t < 3; t++) {
      const png = await sharp(fixturePixels(0, 0, t), { raw: { width: FIXTURE_SIZE, height: FIXTURE_SIZE, channels: 3 } })
        .png()
        .toBuffer();
      await writeFile(join(dir, `images/frame_${t}.png`), png);
    }
    await writeParquetTable(
      file,
      schemaOf([
        imageColumn('observation.images.front'),
        listColumn('observation.state', 'FLOAT'),
        ...['frame_index', 'episode_index', 'index', 'task_index'].map((c) => scalarColumn(c, 'INT64')),
      ]),
      [
        {
          name: 'observation.images.front',
          data: [0, 1, 2].map((t) => ({ bytes: null, path: t === 2 ? join(dir, 'images/frame_2.png') : `images/frame_${t}.png` })),
        },
        { name: 'observation.state', data: rows.map((r) => r['observation.state']) },
        ...['frame_index', 'episode_index', 'index', 'task_index'].map((c) => ({
          name: c,
          data: BigInt64Array.from(rows.map((r) => r[c] as bigint)),
        })),
      ],
    );
    const ds = await LeRobotDataset.open(dir);
    const got = [];
    for await (const f of ds.frames(0, 'front')) got.push(f.data);
    expect(got).toEqual([0, 1, 2].map((t) => fixturePixels(0, 0, t)));
    await rm(join(dir, 'images/frame_1.png'));
    await expectCode(
      (async () => {
        for await (const _ of ds.frames(0, 'front'));
      })(),
      'SW_ERR_DATASET_NOT_FOUND',
      'episode 0 view "front" frame 1',
    );
  });

  it('name undecodable bytes with SW_ERR_IMAGE_DECODE, and a video-only call on an image view', async () => {
    const dir = join(work, 'garbage');
    await writeLeRobotFixture(dir, { version: 'v3.0', lengths: [2], tasks: ['t'], cameras: [{ view: 'front', storage: 'image' }] });
    const file = join(dir, 'data/chunk-000/file-000.parquet');
    const { rows } = await readParquetRows(file);
    await writeParquetTable(file, schemaOf([imageColumn('observation.images.front'), scalarColumn('episode_index', 'INT64')]), [
      { name: 'observation.images.front', data: rows.map(() => ({ bytes: new Uint8Array([1, 2, 3, 4]), path: 'x.png' })) },
      { name: 'episode_index', data: BigInt64Array.from(rows.map((r) => r.episode_index as bigint)) },
    ]);
    const ds = await LeRobotDataset.open(dir);
    await expectCode(ds.frames(0, 'front').next(), 'SW_ERR_IMAGE_DECODE', 'episode 0 view "front" frame 0');
    await expectCode(ds.videoInfo(0, 'front'), 'SW_ERR_DATASET_VIEW', 'stored as images');
  });
});

describe('the commands on image features', () => {
  it('`dataset export` writes their frames into the bundle', async () => {
    const out = join(work, 'bundle');
    const info = await runCli(['dataset', 'info', '--dataset', v30]);
    expect(JSON.parse(info.stdout.join('\n'))).toMatchObject({ episodes: 2, frames: 10 });
    const header = await exportBundle(v30, out, { missingAnnotations: 'single-stage', size: FIXTURE_SIZE, views: ['front'] });
    expect(header.arrays.frames?.shape).toEqual([10, 1, FIXTURE_SIZE, FIXTURE_SIZE, 3]);
    const frames = await readNpy(join(out, 'frames.npy'));
    const S3 = FIXTURE_SIZE * FIXTURE_SIZE * 3;
    // bundle row 4 is episode 1's frame 0; the exporter's own resize to the same size keeps PNG pixels
    expect(mae((frames.data as Uint8Array).subarray(4 * S3, 5 * S3), fixturePixels(1, 0, 0))).toBeLessThan(1);
  });

  it('`score` and `eval` score them', async () => {
    for (const root of [v30, v21]) {
      const summary = await scoreFixture(root, join(work, `score-${root === v30 ? 'v30' : 'v21'}`));
      expect(summary.totals).toMatchObject({ episodes: 2, scored: 2, failed: 0 });
    }
    const metrics = await evalFixture(v30, join(work, 'eval'));
    expect(metrics).toContain('"frames":4');
    expect(metrics).toContain('"frames":6');
  }, 60_000);
});
