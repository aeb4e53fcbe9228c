// LeRobot v3.0 datasets end to end: write synthetic episodes, read them back (parquet columns,
// annotations, frames after H.264 and AV1 decoding), match a real dataset's info.json layout, never
// leave a half dataset at the target, read datasets without stageward's extra columns, and export
// the training bundle with SARM labels.

import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../datasets/npy.ts';
import { REPO_ROOT } from '../../core/paths.ts';
import { exportBundle } from '../../datasets/bundle.ts';
import { isStagewardError, type ErrorCode } from '../../core/errors.ts';
import { formatTemplate, listColumn, scalarColumn, schemaOf } from '../../datasets/format.ts';
import { readParquetRows, writeParquetTable } from '../../datasets/parquet-file.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import { LeRobotDatasetWriter } from '../../datasets/writer.ts';
import { ffmpeg } from '../../datasets/ffmpeg.ts';
import { frameLabels } from '../../datasets/labels.ts';
import type { DatasetSpec, RecordedEpisode, SubtaskSpan } from '../../datasets/types.ts';
import { transcodeToAv1 } from '../helpers.ts';
import { fixturePixels } from './lerobot-fixture.ts';

const S = 32;
const SPEC: DatasetSpec = {
  robotType: 'stageward_mocap_gripper',
  fps: 10,
  views: ['front', 'wrist'],
  image: { height: S, width: S },
  stateNames: ['x', 'y', 'gripper'],
  actionNames: ['dx', 'dy'],
  stageNames: ['reach', 'grasp', 'lift'],
};

/** Flat colour blocks that identify (episode, view, frame): a misaligned frame shows as a big error. */
const pixels = (e: number, v: number, t: number): Uint8Array => fixturePixels(e, v, t, S);

const SPANS: SubtaskSpan[][] = [
  [
    { name: 'reach', start: 0, end: 3 },
    { name: 'grasp', start: 4, end: 6 },
    { name: 'lift', start: 7, end: 9 },
  ],
  [
    { name: 'reach', start: 2, end: 5 },
    { name: 'grasp', start: 8, end: 10 },
  ], // before-first, a gap, after-last
  [
    { name: 'reach', start: 0, end: 5 },
    { name: 'grasp', start: 6, end: 6 },
    { name: 'lift', start: 7, end: 17 },
  ],
];
const LENGTHS = [10, 14, 18];

function episode(e: number): RecordedEpisode {
  const T = LENGTHS[e]!;
  const frames = Object.fromEntries(
    SPEC.views.map((view, v) => [
      view,
      Array.from({ length: T }, (_, t) => ({ data: pixels(e, v, t), height: S, width: S, channels: 3 as const })),
    ]),
  );
  return {
    task: e === 2 ? 'put the blue cube in the bowl' : 'put the red cube in the bowl',
    frames,
    state: Array.from({ length: T }, (_, t) => Float32Array.from([t * 0.5, e, t % 2])),
    action: Array.from({ length: T }, (_, t) => Float32Array.from([0.25 * t, -e])),
    reward: Array.from({ length: T }, (_, t) => (t === T - 1 && e !== 1 ? 1 : 0)),
    trueStage: Array.from({ length: T }, (_, t) => Math.min(2, Math.floor((3 * t) / T))),
    trueProgress: Array.from({ length: T }, (_, t) => t / (T - 1)),
    subtasks: SPANS[e]!,
    success: e !== 1,
    meta: { seed: 100 + e, preset: e === 1 ? 'drop' : 'clean' },
  };
}

function mae(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

async function failure(p: Promise<unknown>): Promise<ErrorCode | string> {
  try {
    await p;
  } catch (err) {
    return isStagewardError(err) ? err.code : String(err);
  }
  return 'resolved';
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function writeDataset(dir: string, count = 3): Promise<void> {
  const w = await LeRobotDatasetWriter.create(dir, SPEC);
  for (let e = 0; e < count; e++) await w.addEpisode(episode(e));
  await w.finish();
}

let work: string;
let root: string;
let ds: LeRobotDataset;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-dataset-'));
  root = join(work, 'pick');
  await writeDataset(root);
  ds = await LeRobotDataset.open(root);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('round trip', () => {
  it('lists episodes with their lengths, tasks, annotations, success and meta', () => {
    expect(ds.episodes.map((e) => e.length)).toEqual(LENGTHS);
    expect(ds.tasks).toEqual(['put the red cube in the bowl', 'put the blue cube in the bowl']);
    expect(ds.episodes.map((e) => e.tasks)).toEqual([[ds.tasks[0]], [ds.tasks[0]], [ds.tasks[1]]]);
    expect(ds.episodes.map((e) => e.subtasks)).toEqual(SPANS);
    expect(ds.episodes.map((e) => e.success)).toEqual([true, false, true]);
    expect(ds.episodes[1]!.meta).toEqual({ seed: 101, preset: 'drop' });
    expect(ds.episodes.map((e) => [e.datasetFrom, e.datasetTo])).toEqual([
      [0, 10],
      [10, 24],
      [24, 42],
    ]);
    expect(ds.episodes[2]!.videos.front).toMatchObject({ fromSeconds: 2.4, toSeconds: 4.2, chunkIndex: 0, fileIndex: 0 });
    expect(ds.stageNames).toEqual(SPEC.stageNames);
    expect(ds.views).toEqual(SPEC.views);
  });

  it('gives back every data column as written', async () => {
    for (let e = 0; e < 3; e++) {
      const src = episode(e);
      const d = await ds.episodeData(e);
      expect(d.state!.map((s) => Array.from(s))).toEqual(src.state.map((s) => Array.from(s)));
      expect(d.action!.map((a) => Array.from(a))).toEqual(src.action.map((a) => Array.from(a)));
      expect(Array.from(d.reward!)).toEqual(src.reward);
      expect(Array.from(d.trueStage!)).toEqual(src.trueStage);
      Array.from(d.trueProgress!).forEach((p, t) => expect(p).toBeCloseTo(src.trueProgress[t]!, 6));
      Array.from(d.timestamp).forEach((ts, t) => expect(ts).toBeCloseTo(t / SPEC.fps, 6));
      expect(Array.from(d.frameIndex)).toEqual(src.state.map((_, t) => t));
      expect(d.columns.index!.map(Number)).toEqual(src.state.map((_, t) => ds.episodes[e]!.datasetFrom + t));
      expect(d.columns.episode_index!.map(Number)).toEqual(src.state.map(() => e));
      expect(Array.from(d.taskIndex)).toEqual(src.state.map(() => (e === 2 ? 1 : 0)));
      expect(d.columns['next.done']).toEqual(src.state.map((_, t) => t === src.state.length - 1));
    }
  });

  it("decodes each episode's frames from its range of the concatenated video, close to the originals", async () => {
    for (let e = 0; e < 3; e++) {
      let t = 0;
      for await (const set of ds.frameSets(e)) {
        SPEC.views.forEach((view, v) => expect(mae(set[view]!.data, pixels(e, v, t))).toBeLessThan(6));
        t++;
      }
      expect(t).toBe(LENGTHS[e]);
    }
  });

  it('resizes frames on request', async () => {
    for await (const f of ds.frames(1, 'wrist', { width: 16, height: 8 })) {
      expect([f.height, f.width, f.data.length]).toEqual([8, 16, 8 * 16 * 3]);
      break;
    }
  });
});

describe('files a LeRobot user sees', () => {
  it('meta/info.json has the fields, order and path templates of a real v3.0 dataset', async () => {
    const real = JSON.parse(await readFile(join(REPO_ROOT, 'test', 'fixtures', 'lerobot-v3.0-info.json'), 'utf8'));
    const ours = JSON.parse(await readFile(join(root, 'meta', 'info.json'), 'utf8'));
    expect(Object.keys(ours)).toEqual(Object.keys(real));
    expect(ours.data_path).toBe(real.data_path);
    expect(ours.video_path).toBe(real.video_path);
    expect(ours).toMatchObject({
      codebase_version: 'v3.0',
      robot_type: SPEC.robotType,
      total_episodes: 3,
      total_frames: 42,
      total_tasks: 2,
      chunks_size: 1000,
      fps: 10,
      splits: { train: '0:3' },
    });
    const realVideo = real.features['observation.images.external'];
    for (const view of SPEC.views) {
      const f = ours.features[`observation.images.${view}`];
      expect(Object.keys(f)).toEqual(Object.keys(realVideo));
      expect(Object.keys(f.info).sort()).toEqual(Object.keys(realVideo.info).sort());
      expect(f).toMatchObject({
        dtype: 'video',
        shape: [S, S, 3],
        names: realVideo.names,
        info: { 'video.codec': 'h264', 'video.pix_fmt': 'yuv420p', 'video.fps': 10, 'video.height': S, 'video.width': S },
      });
    }
    for (const key of ['action', 'observation.state', 'timestamp', 'frame_index', 'episode_index', 'index', 'task_index']) {
      expect(Object.keys(ours.features[key])).toEqual(Object.keys(real.features[key]));
      expect(ours.features[key].dtype).toBe(real.features[key].dtype);
    }
    expect(ours.features.action.names).toEqual(SPEC.actionNames);
    expect(ours.features['observation.state']).toEqual({ dtype: 'float32', shape: [3], names: SPEC.stateNames });
  });

  it('puts every file where the templates say', async () => {
    for (const view of SPEC.views) {
      expect(
        await exists(
          join(root, formatTemplate(ds.info.video_path!, { video_key: `observation.images.${view}`, chunk_index: 0, file_index: 0 })),
        ),
      ).toBe(true);
    }
    for (const f of [
      'data/chunk-000/file-000.parquet',
      'meta/episodes/chunk-000/file-000.parquet',
      'meta/tasks.parquet',
      'meta/stats.json',
      'meta/temporal_proportions_sparse.json',
    ]) {
      expect(await exists(join(root, f))).toBe(true);
    }
    expect((await readdir(work)).filter((n) => n.includes('.partial-'))).toEqual([]);
  });

  it("meta/episodes has LeRobot's columns and the SARM annotation lists", async () => {
    const { columns, rows } = await readParquetRows(join(root, 'meta/episodes/chunk-000/file-000.parquet'));
    for (const c of [
      'episode_index',
      'tasks',
      'length',
      'dataset_from_index',
      'dataset_to_index',
      'data/chunk_index',
      'data/file_index',
      'meta/episodes/chunk_index',
      'meta/episodes/file_index',
      'success',
      'sparse_subtask_names',
      'sparse_subtask_start_frames',
      'sparse_subtask_end_frames',
      'sparse_subtask_start_times',
      'sparse_subtask_end_times',
    ])
      expect(columns).toContain(c);
    for (const view of SPEC.views)
      for (const part of ['chunk_index', 'file_index', 'from_timestamp', 'to_timestamp'])
        expect(columns).toContain(`videos/observation.images.${view}/${part}`);
    expect(rows[1]!.sparse_subtask_names).toEqual(['reach', 'grasp']);
    expect(rows[1]!.sparse_subtask_start_frames).toEqual([2n, 8n]);
    expect(rows[1]!.sparse_subtask_end_times).toEqual([0.5, 1.0]);
  });

  it('tasks.parquet maps task strings to task_index, with pandas metadata making the string the index', async () => {
    const { rows, metadata } = await readParquetRows(join(root, 'meta/tasks.parquet'));
    expect(rows).toEqual([
      { task_index: 0n, task: 'put the red cube in the bowl' },
      { task_index: 1n, task: 'put the blue cube in the bowl' },
    ]);
    const pandas = JSON.parse(metadata.key_value_metadata!.find((kv) => kv.key === 'pandas')!.value!);
    expect(pandas.index_columns).toEqual(['task']);
  });

  it('stats.json has min/max/mean/std/count and the q01-q99 quantiles per feature, images per channel on [0, 1] as [3, 1, 1]', async () => {
    const stats = JSON.parse(await readFile(join(root, 'meta/stats.json'), 'utf8'));
    for (const key of ['action', 'observation.state', 'observation.images.front', 'timestamp', 'index'])
      expect(Object.keys(stats[key]).sort()).toEqual(['count', 'max', 'mean', 'min', 'q01', 'q10', 'q50', 'q90', 'q99', 'std']);
    const img = stats['observation.images.front'];
    expect(img.mean.length).toBe(3);
    for (const m of ['min', 'max', 'mean', 'std'])
      for (const c of img[m]) {
        expect(c[0][0]).toBeGreaterThanOrEqual(0);
        expect(c[0][0]).toBeLessThanOrEqual(1);
      }
    expect(img.count).toEqual([42]);
    expect(stats['observation.state'].max).toEqual([8.5, 2, 1]);
    expect(stats['observation.state'].mean[1]).toBeCloseTo((10 * 0 + 14 * 1 + 18 * 2) / 42, 6);
  });

  it('temporal_proportions_sparse.json holds the stage priors in stage order, summing to 1', async () => {
    const priors = JSON.parse(await readFile(join(root, 'meta/temporal_proportions_sparse.json'), 'utf8'));
    expect(Object.keys(priors)).toEqual(SPEC.stageNames);
    const values = Object.values(priors) as number[];
    expect(values.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
    expect(values.every((p) => p > 0)).toBe(true);
  });
});

describe('never a half dataset', () => {
  it('abort() leaves nothing at the target and no staging folder', async () => {
    const dir = join(work, 'aborted');
    const w = await LeRobotDatasetWriter.create(dir, SPEC);
    await w.addEpisode(episode(0));
    await w.abort();
    expect(await exists(dir)).toBe(false);
    expect((await readdir(work)).filter((n) => n.startsWith('.aborted'))).toEqual([]);
  });

  it('a failure while frames stream in leaves nothing at the target', async () => {
    const dir = join(work, 'crashed');
    const w = await LeRobotDatasetWriter.create(dir, SPEC);
    await w.addEpisode(episode(0));
    const ep = episode(1);
    const frame = ep.frames.front![5]!;
    let reads = 0;
    Object.defineProperty(frame, 'data', {
      get: () => {
        if (++reads > 2) throw new Error('renderer crashed');
        return pixels(1, 0, 5);
      },
    });
    expect(await failure(w.addEpisode(ep))).toMatch(/renderer crashed/);
    expect(await failure(w.finish())).toBe('SW_ERR_DATASET_STATE');
    expect(await exists(dir)).toBe(false);
    expect((await readdir(work)).filter((n) => n.startsWith('.crashed'))).toEqual([]);
  });

  it('a recording that never finishes leaves nothing at the target', async () => {
    const dir = join(work, 'unfinished');
    const w = await LeRobotDatasetWriter.create(dir, SPEC);
    await w.addEpisode(episode(0));
    expect(await exists(dir)).toBe(false);
    await w.abort();
  });

  it('refuses an existing non-empty target unless overwrite, and then replaces it whole', async () => {
    const dir = join(work, 'taken');
    await writeDataset(dir, 1);
    expect(await failure(LeRobotDatasetWriter.create(dir, SPEC))).toBe('SW_ERR_DATASET_EXISTS');
    const w = await LeRobotDatasetWriter.create(dir, SPEC, { overwrite: true });
    await w.addEpisode(episode(1));
    await w.addEpisode(episode(2));
    await w.finish();
    expect((await LeRobotDataset.open(dir)).episodes.map((e) => e.length)).toEqual([14, 18]);
  });

  it('rejects a bad episode before writing anything, and the writer goes on', async () => {
    const dir = join(work, 'strict');
    const w = await LeRobotDatasetWriter.create(dir, SPEC);
    expect(await failure(w.addEpisode({ ...episode(0), subtasks: [] }))).toBe('SW_ERR_ANNOTATION_MISSING');
    expect(await failure(w.addEpisode({ ...episode(0), subtasks: [{ name: 'fly', start: 0, end: 2 }] }))).toBe('SW_ERR_ANNOTATION_INVALID');
    expect(await failure(w.addEpisode({ ...episode(0), action: episode(0).action.slice(1) }))).toBe('SW_ERR_DATASET_EPISODE');
    const { wrist: _, ...oneView } = episode(0).frames;
    expect(await failure(w.addEpisode({ ...episode(0), frames: oneView }))).toBe('SW_ERR_DATASET_VIEW');
    await w.addEpisode(episode(2));
    await w.finish();
    expect((await LeRobotDataset.open(dir)).episodes.length).toBe(1);
  });
});

describe('reading other datasets', () => {
  it('names what is missing with a code', async () => {
    expect(await failure(LeRobotDataset.open(join(work, 'nowhere')))).toBe('SW_ERR_DATASET_NOT_FOUND');
    expect(await failure(ds.frames(0, 'top').next())).toBe('SW_ERR_DATASET_VIEW');
    expect(() => ds.episode(9)).toThrow(/no episode 9/);
    const copy = join(work, 'novideo');
    await cp(root, copy, { recursive: true });
    await rm(join(copy, 'videos/observation.images.wrist/chunk-000/file-000.mp4'));
    const partial = await LeRobotDataset.open(copy);
    expect(await failure(partial.frames(0, 'wrist').next())).toBe('SW_ERR_DATASET_NOT_FOUND');
  });

  it("reads a dataset without stageward's extra columns, as LeRobot writes them", async () => {
    const plain = join(work, 'plain');
    await cp(root, plain, { recursive: true });
    await rm(join(plain, 'meta/temporal_proportions_sparse.json'));
    const epPath = join(plain, 'meta/episodes/chunk-000/file-000.parquet');
    const { rows } = await readParquetRows(epPath);
    const keep = [
      'episode_index',
      'length',
      'dataset_from_index',
      'dataset_to_index',
      ...SPEC.views.flatMap((v) => ['chunk_index', 'file_index'].map((p) => `videos/observation.images.${v}/${p}`)),
    ];
    const floats = SPEC.views.flatMap((v) => ['from_timestamp', 'to_timestamp'].map((p) => `videos/observation.images.${v}/${p}`));
    await writeParquetTable(
      epPath,
      schemaOf([
        listColumn('tasks', 'STRING'),
        ...keep.map((c) => scalarColumn(c, 'INT64')),
        ...floats.map((c) => scalarColumn(c, 'DOUBLE')),
      ]),
      [
        { name: 'tasks', data: rows.map((r) => r.tasks) },
        ...keep.map((c) => ({ name: c, data: BigInt64Array.from(rows.map((r) => r[c] as bigint)) })),
        ...floats.map((c) => ({ name: c, data: Float64Array.from(rows.map((r) => r[c] as number)) })),
      ],
    );
    const info = JSON.parse(await readFile(join(plain, 'meta/info.json'), 'utf8'));
    delete info.features['annotation.true_stage'];
    delete info.features['annotation.true_progress'];
    await writeFile(join(plain, 'meta/info.json'), JSON.stringify(info));
    const other = await LeRobotDataset.open(plain);
    expect(other.episodes.map((e) => [e.subtasks, e.success, e.meta])).toEqual([
      [null, null, null],
      [null, null, null],
      [null, null, null],
    ]);
    expect(other.stageNames).toEqual([]);
    let n = 0;
    for await (const _ of other.frames(2, 'front')) n++;
    expect(n).toBe(18);
    expect(await failure(exportBundle(plain, join(work, 'plain-bundle')))).toBe('SW_ERR_ANNOTATION_MISSING');
    const header = await exportBundle(plain, join(work, 'plain-bundle'), { size: 16, missingAnnotations: 'single-stage' });
    expect(header.stages).toEqual([{ name: 'task', prior: 1 }]);
    const progress = await readNpy(join(work, 'plain-bundle', 'progress_sarm.npy'));
    expect(progress.data[9]).toBeCloseTo(1, 6);
    expect(progress.data[10 + 7]).toBeCloseTo(7 / 13, 6);
  });

  it("decodes AV1 videos (LeRobot's default codec)", async () => {
    const bin = await ffmpeg();
    const encoders = await run(bin.path, ['-hide_banner', '-encoders']);
    // The ffmpeg stageward ships (@ffmpeg-installer) encodes AV1 with libaom, so the test can make its input.
    expect(encoders, 'this ffmpeg cannot encode AV1 (libaom-av1), so the AV1 test has no input').toContain('libaom-av1');
    const av1 = join(work, 'av1');
    await cp(root, av1, { recursive: true });
    for (const view of SPEC.views) {
      const file = join(av1, `videos/observation.images.${view}/chunk-000/file-000.mp4`);
      transcodeToAv1(bin.path, file, join(dirname(file), 'av1.mp4'), { crf: 12, gop: 2 });
      await rm(file);
      await cp(join(dirname(file), 'av1.mp4'), file);
      await rm(join(dirname(file), 'av1.mp4'));
    }
    const other = await LeRobotDataset.open(av1);
    expect((await other.videoInfo(1, 'front')).codec).toBe('av1');
    let t = 0;
    for await (const set of other.frameSets(1)) {
      SPEC.views.forEach((view, v) => expect(mae(set[view]!.data, pixels(1, v, t))).toBeLessThan(8));
      t++;
    }
    expect(t).toBe(14);
  });
});

describe('training bundle', () => {
  let bundle: string;
  beforeAll(async () => {
    bundle = join(work, 'bundle');
    await exportBundle(root, bundle, { size: S });
  });

  it('writes frames [N, V, H, W, 3] and per-frame arrays of N', async () => {
    const frames = await readNpy(join(bundle, 'frames.npy'));
    expect(frames.dtype).toBe('uint8');
    expect(frames.shape).toEqual([42, 2, S, S, 3]);
    const step = 2 * S * S * 3;
    const n = 24 + 5; // episode 2, frame 5
    expect(mae(frames.data.subarray(n * step + S * S * 3, (n + 1) * step) as Uint8Array, pixels(2, 1, 5))).toBeLessThan(6);
    for (const [name, dtype] of [
      ['episode_index', 'int64'],
      ['frame_index', 'int64'],
      ['stage', 'int64'],
      ['tau', 'float32'],
      ['progress_sarm', 'float32'],
      ['progress_step', 'float32'],
    ] as const) {
      const a = await readNpy(join(bundle, `${name}.npy`));
      expect([a.dtype, a.shape]).toEqual([dtype, [42]]);
    }
    const success = await readNpy(join(bundle, 'success.npy'));
    expect([success.dtype, success.shape, Array.from(success.data as Uint8Array)]).toEqual(['uint8', [3], [1, 0, 1]]);
  });

  it('labels every frame by the SARM rule with the dataset priors', async () => {
    const header = JSON.parse(await readFile(join(bundle, 'bundle.json'), 'utf8'));
    const priors = header.stages.map((s: { prior: number }) => s.prior);
    expect(header.stages.map((s: { name: string }) => s.name)).toEqual(SPEC.stageNames);
    expect(header).toMatchObject({
      format: 1,
      views: SPEC.views,
      task: 'put the red cube in the bowl',
      task_id: 0,
      fps: 10,
      image: { height: S, width: S },
      priors_source: 'dataset',
    });
    expect(header.episodes).toEqual([
      { index: 0, length: 10, success: true, offset: 0, task_index: 0 },
      { index: 1, length: 14, success: false, offset: 10, task_index: 0 },
      { index: 2, length: 18, success: true, offset: 24, task_index: 1 },
    ]);
    const [stage, tau, sarm, step, ep, fi] = await Promise.all(
      ['stage', 'tau', 'progress_sarm', 'progress_step', 'episode_index', 'frame_index'].map((n) => readNpy(join(bundle, `${n}.npy`))),
    );
    for (let e = 0; e < 3; e++) {
      const want = frameLabels(SPANS[e]!, LENGTHS[e]!, SPEC.stageNames, priors);
      const off = header.episodes[e].offset;
      for (let t = 0; t < LENGTHS[e]!; t++) {
        expect(Number(stage!.data[off + t])).toBe(want.stage[t]);
        expect(tau!.data[off + t]).toBeCloseTo(want.tau[t]!, 6);
        expect(sarm!.data[off + t]).toBeCloseTo(want.progressSarm[t]!, 6);
        expect(step!.data[off + t]).toBeCloseTo(want.progressStep[t]!, 6);
        expect([Number(ep!.data[off + t]), Number(fi!.data[off + t])]).toEqual([e, t]);
      }
    }
    // Episode 1: before its first span (stage 0, tau 0), a gap (stage 0 at tau 1), after its last (stage 2, 0.999).
    expect(Array.from(stage!.data.subarray(10, 24) as BigInt64Array, Number)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
    expect(tau!.data[10 + 7]).toBe(1);
    expect(tau!.data[10 + 13]).toBeCloseTo(0.999, 6);
  });

  it('exports chosen episodes at another size, and refuses to overwrite a bundle', async () => {
    const out = join(work, 'bundle-small');
    const header = await exportBundle(root, out, { size: 16, episodes: [2, 0], views: ['wrist'] });
    expect(header.episodes.map((e) => [e.index, e.offset])).toEqual([
      [2, 0],
      [0, 18],
    ]);
    expect((await readNpy(join(out, 'frames.npy'))).shape).toEqual([28, 1, 16, 16, 3]);
    expect(await failure(exportBundle(root, out, { size: 16 }))).toBe('SW_ERR_DATASET_EXISTS');
  });
});

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${out}`))));
  });
}
