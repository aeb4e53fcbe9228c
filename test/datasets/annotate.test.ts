// Hand-made annotations written into existing datasets (datasets/annotate.ts): LeRobot v3.0 and v2.1
// datasets without annotations get LeRobot's sparse_subtask_* cells and the priors file; they read
// back with LeRobotDataset.open as exactly the spans written and export as a bundle; every other
// column, key and row stays as it was; existing annotations need overwrite; a failure leaves every
// file as it was.

import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SchemaElement } from 'hyparquet-writer';
import { annotateDataset, columnSchemas } from '../../datasets/annotate.ts';
import { exportBundle } from '../../datasets/bundle.ts';
import { DENSE_SUBTASK_COLUMNS, EPISODES_PATH, formatTemplate, schemaOf, SUBTASK_COLUMNS } from '../../datasets/format.ts';
import { temporalProportions } from '../../datasets/labels.ts';
import { readParquetRows, writeParquetTable } from '../../datasets/parquet-file.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import type { DatasetSpec, RecordedEpisode, SubtaskSpan } from '../../datasets/types.ts';
import { LeRobotDatasetWriter } from '../../datasets/writer.ts';
import { SeededRandom } from '../../core/random.ts';
import { expectCode } from '../helpers.ts';
import { fixturePixels, writeLeRobotFixture, type ExtraColumn } from './lerobot-fixture.ts';

const LENGTHS = [20, 15, 12];
const EPISODES_FILE = formatTemplate(EPISODES_PATH, { chunk_index: 0, file_index: 0 });
const SPARSE: string[] = Object.values(SUBTASK_COLUMNS);

/** Keyframes of the three fixture episodes (ep 1 revisits reach) and the spans they mean. */
const CSV = [
  'episode,stage,start',
  '0,reach,0',
  '0,grasp,8',
  '0,lift,14',
  '1,reach,0',
  '1,grasp,5',
  '1,reach,9',
  '2,reach,0',
  '2,lift,6',
].join('\n');
const SPANS: SubtaskSpan[][] = [
  [
    { name: 'reach', start: 0, end: 7 },
    { name: 'grasp', start: 8, end: 13 },
    { name: 'lift', start: 14, end: 19 },
  ],
  [
    { name: 'reach', start: 0, end: 4 },
    { name: 'grasp', start: 5, end: 8 },
    { name: 'reach', start: 9, end: 14 },
  ],
  [
    { name: 'reach', start: 0, end: 5 },
    { name: 'lift', start: 6, end: 11 },
  ],
];
const STAGES = ['reach', 'grasp', 'lift'];

let work: string;
let v30: string;
let v21: string;
let recorded: string;
let n = 0;

/** A fresh copy of a prepared dataset, so each test starts from the same files. */
async function copyOf(dir: string): Promise<string> {
  const out = join(work, `copy-${n++}`);
  await cp(dir, out, { recursive: true });
  return out;
}

/** A keyframe file in the work folder. */
async function keyframeFile(name: string, text: string): Promise<string> {
  const path = join(work, `${n++}-${name}`);
  await writeFile(path, text);
  return path;
}

/** Every file under `dir` -> sha256 of its bytes. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out[relative(dir, path)] = createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  }
  return out;
}

function expectedPriors(spans: SubtaskSpan[][], lengths: number[]): Record<string, number> {
  const p = temporalProportions(
    spans.map((s, e) => ({ spans: s, length: lengths[e]! })),
    STAGES,
  );
  return Object.fromEntries(STAGES.map((s, k) => [s, p[k]!]));
}

/** A stageward recording: sparse and dense annotations, per-episode stats columns, success and meta. */
async function record(dir: string): Promise<void> {
  const S = 16;
  const spec: DatasetSpec = {
    robotType: 'stageward_mocap_gripper',
    fps: 10,
    views: ['front'],
    image: { height: S, width: S },
    stateNames: ['x', 'y'],
    actionNames: ['dx'],
    stageNames: STAGES,
  };
  const rng = new SeededRandom(7);
  const w = await LeRobotDatasetWriter.create(dir, spec);
  for (let e = 0; e < 2; e++) {
    const T = LENGTHS[e]!;
    const ep: RecordedEpisode = {
      task: 'lift the cube',
      frames: {
        front: Array.from({ length: T }, (_, t) => ({ data: fixturePixels(e, 0, t, S), height: S, width: S, channels: 3 as const })),
      },
      state: Array.from({ length: T }, () => Float32Array.from([rng.range(-1, 1), rng.range(-1, 1)])),
      action: Array.from({ length: T }, () => Float32Array.from([rng.range(-1, 1)])),
      reward: Array.from({ length: T }, (_, t) => (t === T - 1 ? 1 : 0)),
      trueStage: Array.from({ length: T }, (_, t) => Math.min(2, Math.floor((3 * t) / T))),
      trueProgress: Array.from({ length: T }, (_, t) => t / (T - 1)),
      subtasks: [
        { name: 'reach', start: 0, end: 9 },
        { name: 'lift', start: 10, end: T - 1 },
      ],
      success: e === 0,
      meta: { seed: e },
    };
    await w.addEpisode(ep);
  }
  await w.finish();
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-annotate-'));
  v30 = join(work, 'v30');
  v21 = join(work, 'v21');
  recorded = join(work, 'recorded');
  const base = { lengths: LENGTHS, tasks: ['lift the cube'], cameras: [{ view: 'front', storage: 'video' as const }] };
  await writeLeRobotFixture(v30, { version: 'v3.0', ...base });
  await writeLeRobotFixture(v21, { version: 'v2.1', ...base });
  await record(recorded);
  // pyarrow's and Hugging Face's descriptions of the columns, and another key, as LeRobot's files carry them
  const path = join(v30, EPISODES_FILE);
  const { metadata, rows, columns } = await readParquetRows(path);
  await writeParquetTable(
    path,
    schemaOf([...columnSchemas(metadata.schema as SchemaElement[]).values()]),
    columns.map((name) => ({ name, data: rows.map((r) => r[name]) })) as Parameters<typeof writeParquetTable>[2],
    [
      { key: 'ARROW:schema', value: 'c3RhbGU=' },
      { key: 'huggingface', value: '{"info": {"features": {}}}' },
      { key: 'stageward/test', value: 'kept' },
    ],
  );
}, 120_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('annotating a v3.0 dataset', () => {
  it('writes the sparse columns and the priors; the reader gives exactly the spans; every other column stays', async () => {
    const root = await copyOf(v30);
    const before = await readParquetRows(join(root, EPISODES_FILE));
    const untouched = await snapshot(root);
    const summary = await annotateDataset(root, await keyframeFile('keys.csv', CSV));
    expect(summary).toMatchObject({ codebaseVersion: 'v3.0', episodes: 3, annotated: [0, 1, 2], denseKept: false });
    expect(summary.files).toEqual([EPISODES_FILE, 'meta/temporal_proportions_sparse.json']);
    const priors = expectedPriors(SPANS, LENGTHS);
    expect(summary.stages).toEqual(STAGES.map((name) => ({ name, prior: priors[name] })));

    const ds = await LeRobotDataset.open(root);
    expect(ds.episodes.map((e) => e.subtasks)).toEqual(SPANS);
    expect(ds.stageNames).toEqual(STAGES);
    expect(ds.priors).toEqual(STAGES.map((s) => priors[s]));
    const priorsText = await readFile(join(root, 'meta/temporal_proportions_sparse.json'), 'utf8');
    expect(Object.keys(JSON.parse(priorsText) as object)).toEqual(STAGES);
    // reach: (8/20 + (5+6)/15 + 6/12) / 3, renormalised over the three stages
    const raw = [(8 / 20 + 11 / 15 + 6 / 12) / 3, (6 / 20 + 4 / 15) / 2, (6 / 20 + 6 / 12) / 2];
    STAGES.forEach((s, k) => expect(priors[s]).toBeCloseTo(raw[k]! / (raw[0]! + raw[1]! + raw[2]!), 12));

    const after = await readParquetRows(join(root, EPISODES_FILE));
    expect(after.columns).toEqual([...before.columns, ...SPARSE]);
    const oldSchema = columnSchemas(before.metadata.schema as SchemaElement[]);
    const newSchema = columnSchemas(after.metadata.schema as SchemaElement[]);
    for (const name of before.columns) {
      expect(newSchema.get(name), name).toEqual(oldSchema.get(name));
      expect(
        after.rows.map((r) => r[name]),
        name,
      ).toEqual(before.rows.map((r) => r[name]));
    }
    // LeRobot's types: list<string>, list<int64> frames with inclusive ends, list<double> seconds
    expect(newSchema.get(SUBTASK_COLUMNS.endFrames)!.at(-1)).toMatchObject({ type: 'INT64' });
    expect(newSchema.get(SUBTASK_COLUMNS.endTimes)!.at(-1)).toMatchObject({ type: 'DOUBLE' });
    expect(after.rows.map((r) => r[SUBTASK_COLUMNS.names])).toEqual(SPANS.map((s) => s.map((x) => x.name)));
    expect(after.rows.map((r) => r[SUBTASK_COLUMNS.endFrames])).toEqual(SPANS.map((s) => s.map((x) => BigInt(x.end))));
    expect(after.rows.map((r) => r[SUBTASK_COLUMNS.startTimes])).toEqual(SPANS.map((s) => s.map((x) => x.start / 10)));
    expect(after.rows.map((r) => r[SUBTASK_COLUMNS.endTimes])).toEqual(SPANS.map((s) => s.map((x) => x.end / 10)));
    // the descriptions of the old columns are dropped, every other key kept
    expect(after.metadata.key_value_metadata).toEqual([{ key: 'stageward/test', value: 'kept' }]);
    // nothing else changed, and no temporary file is left
    const now = await snapshot(root);
    for (const [file, hash] of Object.entries(untouched)) if (file !== EPISODES_FILE) expect(now[file], file).toBe(hash);
    expect(Object.keys(now).sort()).toEqual([...Object.keys(untouched), 'meta/temporal_proportions_sparse.json'].sort());

    const bundle = await exportBundle(root, `${root}-bundle`, { size: 8 });
    expect(bundle.stages).toEqual(summary.stages);
    expect(bundle.priors_source).toBe('dataset');
    expect(bundle.frames).toBe(LENGTHS.reduce((a, b) => a + b, 0));
  }, 60_000);

  it('partial: episodes the file leaves out get null cells and stay unannotated; the priors come from the others', async () => {
    const root = await copyOf(v30);
    const file = await keyframeFile(
      'keys.json',
      JSON.stringify({
        episodes: {
          '2': [
            { stage: 'reach', start: 0 },
            { stage: 'lift', start_s: 0.6 },
          ],
          '0': [
            { stage: 'reach', start: 0 },
            { stage: 'grasp', start: 8 },
            { stage: 'lift', start: 14 },
          ],
        },
      }),
    );
    await expectCode(annotateDataset(root, file), 'SW_ERR_ANNOTATION_MISSING', 'episodes: 1;');
    const summary = await annotateDataset(root, file, { partial: true });
    expect(summary.annotated).toEqual([0, 2]);
    const after = await readParquetRows(join(root, EPISODES_FILE));
    for (const c of SPARSE) expect(after.rows[1]![c] ?? null, c).toBeNull();
    const ds = await LeRobotDataset.open(root);
    expect(ds.episodes.map((e) => e.subtasks)).toEqual([SPANS[0], null, SPANS[2]]);
    const p = temporalProportions(
      [0, 2].map((e) => ({ spans: SPANS[e]!, length: LENGTHS[e]! })),
      STAGES,
    );
    expect(ds.priors).toEqual(p);
    const bundle = await exportBundle(root, `${root}-bundle`, { size: 8, episodes: [0, 2] });
    expect(bundle.episodes.map((e) => e.index)).toEqual([0, 2]);
  }, 60_000);

  it('refuses existing annotations unless overwrite, then replaces them in place', async () => {
    const root = await copyOf(v30);
    await annotateDataset(root, await keyframeFile('keys.csv', CSV));
    const annotated = await snapshot(root);
    const again = await keyframeFile('again.csv', 'episode,stage,start\n0,reach,0\n0,lift,10\n1,reach,0\n2,reach,0\n2,lift,3');
    await expectCode(
      annotateDataset(root, again),
      'SW_ERR_ANNOTATION_EXISTS',
      'sparse subtask annotations on 3 episodes and meta/temporal_proportions_sparse.json',
    );
    expect(await snapshot(root)).toEqual(annotated);
    // priors alone count as annotations
    const priorsOnly = await copyOf(v30);
    await writeFile(join(priorsOnly, 'meta/temporal_proportions_sparse.json'), '{"reach": 1}');
    await expectCode(
      annotateDataset(priorsOnly, again),
      'SW_ERR_ANNOTATION_EXISTS',
      'already has meta/temporal_proportions_sparse.json; pass overwrite',
    );

    const summary = await annotateDataset(root, again, { overwrite: true });
    expect(summary.stages.map((s) => s.name)).toEqual(['reach', 'lift']);
    const after = await readParquetRows(join(root, EPISODES_FILE));
    expect(after.columns.filter((c) => SPARSE.includes(c))).toEqual(SPARSE); // replaced, not repeated
    const ds = await LeRobotDataset.open(root);
    expect(ds.episodes.map((e) => e.subtasks)).toEqual([
      [
        { name: 'reach', start: 0, end: 9 },
        { name: 'lift', start: 10, end: 19 },
      ],
      [{ name: 'reach', start: 0, end: 14 }],
      [
        { name: 'reach', start: 0, end: 2 },
        { name: 'lift', start: 3, end: 11 },
      ],
    ]);
    expect(ds.stageNames).toEqual(['reach', 'lift']);
  }, 60_000);

  it("replaces LeRobot's older subtask_* columns too, so the reader never falls back on stale ones", async () => {
    const root = join(work, 'lerobot-tool');
    const names: ExtraColumn = { leaf: 'STRING', values: [['task'], ['task'], ['task']] };
    const ints = (values: number[][]): ExtraColumn => ({ leaf: 'INT64', values });
    await writeLeRobotFixture(root, {
      version: 'v3.0',
      lengths: LENGTHS,
      tasks: ['lift the cube'],
      cameras: [{ view: 'front', storage: 'video' }],
      extras: {
        subtask_names: names,
        subtask_start_times: ints([[0], [0], [0]]),
        subtask_end_times: ints([[2], [2], [1]]),
        sparse_subtask_names: names,
        sparse_subtask_start_times: ints([[0], [0], [0]]),
        sparse_subtask_end_times: ints([[2], [2], [1]]),
      },
    });
    await expectCode(annotateDataset(root, await keyframeFile('k.csv', CSV)), 'SW_ERR_ANNOTATION_EXISTS');
    const file = await keyframeFile(
      'k.csv',
      CSV.split('\n')
        .filter((l) => !l.startsWith('1,'))
        .join('\n'),
    );
    await annotateDataset(root, file, { overwrite: true, partial: true });
    const after = await readParquetRows(join(root, EPISODES_FILE));
    expect(after.columns.filter((c) => c.includes('subtask_'))).toEqual([
      'subtask_names',
      'subtask_start_times',
      'subtask_end_times',
      'sparse_subtask_names',
      'sparse_subtask_start_times',
      'sparse_subtask_end_times',
      'sparse_subtask_start_frames',
      'sparse_subtask_end_frames',
      'subtask_start_frames',
      'subtask_end_frames',
    ]);
    expect(after.rows.map((r) => r.subtask_names ?? null)).toEqual([['reach', 'grasp', 'lift'], null, ['reach', 'lift']]);
    expect(after.rows.map((r) => r.subtask_end_times ?? null)).toEqual([[0.7, 1.3, 1.9], null, [0.5, 1.1]]);
    expect(
      columnSchemas(after.metadata.schema as SchemaElement[])
        .get('sparse_subtask_end_times')!
        .at(-1),
    ).toMatchObject({ type: 'DOUBLE' });
    const ds = await LeRobotDataset.open(root);
    expect(ds.episodes.map((e) => e.subtasks)).toEqual([SPANS[0], null, SPANS[2]]);
  }, 60_000);

  it('a stageward recording: the per-episode stats, success and meta stay; the dense annotations are left as they were', async () => {
    const root = await copyOf(recorded);
    const before = await readParquetRows(join(root, EPISODES_FILE));
    const densePriors = await readFile(join(root, 'meta/temporal_proportions_dense.json'), 'utf8');
    const file = await keyframeFile('k.csv', 'episode,stage,start\n0,reach,0\n0,grasp,8\n0,lift,14\n1,reach,0\n1,grasp,5\n1,reach,9');
    await expectCode(annotateDataset(root, file), 'SW_ERR_ANNOTATION_EXISTS', 'on 2 episodes');
    const summary = await annotateDataset(root, file, { overwrite: true });
    expect(summary.denseKept).toBe(true);
    const after = await readParquetRows(join(root, EPISODES_FILE));
    expect(after.columns).toEqual(before.columns);
    expect(after.metadata.schema).toEqual(before.metadata.schema);
    expect(after.columns.filter((c) => c.startsWith('stats/')).length).toBeGreaterThan(40);
    for (const name of before.columns.filter((c) => !SPARSE.includes(c)))
      expect(
        after.rows.map((r) => r[name]),
        name,
      ).toEqual(before.rows.map((r) => r[name]));
    expect(after.rows.map((r) => r[DENSE_SUBTASK_COLUMNS.names])).toEqual([
      ['reach', 'lift'],
      ['reach', 'lift'],
    ]);
    expect(await readFile(join(root, 'meta/temporal_proportions_dense.json'), 'utf8')).toBe(densePriors);
    const ds = await LeRobotDataset.open(root);
    expect(ds.episodes.map((e) => e.subtasks)).toEqual(SPANS.slice(0, 2));
    const bundle = await exportBundle(root, `${root}-bundle`, { size: 8 });
    expect(bundle.stages.map((s) => s.name)).toEqual(STAGES);
  }, 60_000);
});

describe('annotating a v2.1 dataset', () => {
  it('adds the five keys to each annotated line of episodes.jsonl; every other member stays as written', async () => {
    const root = await copyOf(v21);
    const path = join(root, 'meta/episodes.jsonl');
    const original = (await readFile(path, 'utf8')).split('\n');
    // line 0 as Python's json.dumps writes it, with a float and brackets in strings kept as written; line 2 compact
    expect(original[0]).toBe('{"episode_index":0,"tasks":["lift the cube"],"length":20}');
    original[0] = '{"episode_index": 0, "tasks": ["lift the cube"], "length": 20, "note": {"weight": 1.0, "tags": ["a,b", "}"]}}';
    await writeFile(path, original.join('\n'));
    const file = await keyframeFile(
      'k.csv',
      CSV.split('\n')
        .filter((l) => !l.startsWith('1,'))
        .join('\n'),
    );
    const summary = await annotateDataset(root, file, { partial: true });
    expect(summary.files).toEqual(['meta/episodes.jsonl', 'meta/temporal_proportions_sparse.json']);
    const lines = (await readFile(path, 'utf8')).split('\n');
    expect(lines).toHaveLength(original.length);
    expect(lines[1]).toBe(original[1]); // not annotated: byte for byte
    expect(lines[0]).toBe(
      original[0]!.slice(0, -1) +
        ', "sparse_subtask_names": ["reach", "grasp", "lift"], "sparse_subtask_start_frames": [0, 8, 14], "sparse_subtask_end_frames": [7, 13, 19], "sparse_subtask_start_times": [0.0, 0.8, 1.4], "sparse_subtask_end_times": [0.7, 1.3, 1.9]}',
    );
    expect(lines[2]).toBe(
      original[2]!.slice(0, -1) +
        ',"sparse_subtask_names":["reach","lift"],"sparse_subtask_start_frames":[0,6],"sparse_subtask_end_frames":[5,11],"sparse_subtask_start_times":[0.0,0.6],"sparse_subtask_end_times":[0.5,1.1]}',
    );
    const ds = await LeRobotDataset.open(root);
    expect(ds.episodes.map((e) => e.subtasks)).toEqual([SPANS[0], null, SPANS[2]]);
    expect(ds.stageNames).toEqual(STAGES);

    // overwrite: in place, and an episode the new file leaves out loses its keys
    const next = await keyframeFile(
      'k.json',
      JSON.stringify({ episodes: { '1': [{ stage: 'reach', start: 0 }], '2': [{ stage: 'lift', start: 0 }] } }),
    );
    await expectCode(annotateDataset(root, next, { partial: true }), 'SW_ERR_ANNOTATION_EXISTS', 'on 2 episodes');
    await annotateDataset(root, next, { partial: true, overwrite: true });
    const rewritten = (await readFile(path, 'utf8')).split('\n');
    expect(rewritten[0]).toBe(original[0]);
    expect(JSON.parse(rewritten[1]!)).toEqual({
      ...JSON.parse(original[1]!),
      sparse_subtask_names: ['reach'],
      sparse_subtask_start_frames: [0],
      sparse_subtask_end_frames: [14],
      sparse_subtask_start_times: [0],
      sparse_subtask_end_times: [1.4],
    });
    const again = await LeRobotDataset.open(root);
    expect(again.episodes.map((e) => e.subtasks)).toEqual([
      null,
      [{ name: 'reach', start: 0, end: 14 }],
      [{ name: 'lift', start: 0, end: 11 }],
    ]);
    expect(again.stageNames).toEqual(['reach', 'lift']);
    const bundle = await exportBundle(root, `${root}-bundle`, { size: 8, episodes: [1, 2] });
    expect(bundle.stages.map((s) => s.name)).toEqual(['reach', 'lift']);
  }, 60_000);
});

describe('atomic', () => {
  it('a failure while putting the files in place puts every old file back', async () => {
    for (const base of [v30, v21]) {
      const root = await copyOf(base);
      // the priors file, replaced last, cannot be: a folder stands in its way
      await mkdir(join(root, 'meta/temporal_proportions_sparse.json'));
      const before = await snapshot(root);
      const names = (await readdir(root, { recursive: true })).sort();
      const err = await annotateDataset(root, await keyframeFile('k.csv', CSV), { overwrite: true }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect(await snapshot(root)).toEqual(before);
      expect((await readdir(root, { recursive: true })).sort()).toEqual(names); // no temporary or backup file left
    }
  }, 60_000);

  it('a refused keyframe file writes nothing', async () => {
    const root = await copyOf(v30);
    const before = await snapshot(root);
    await expectCode(
      annotateDataset(root, await keyframeFile('k.csv', 'episode,stage,start\n0,reach,3')),
      'SW_ERR_ANNOTATION_INVALID',
      'line 2',
    );
    await expectCode(annotateDataset(root, await keyframeFile('k.txt', CSV)), 'SW_ERR_ANNOTATION_FILE', '.csv or .json');
    await expectCode(annotateDataset(root, join(work, 'absent.csv')), 'SW_ERR_ANNOTATION_FILE', 'cannot read');
    await expectCode(annotateDataset(join(work, 'no-dataset'), await keyframeFile('k.csv', CSV)), 'SW_ERR_DATASET_NOT_FOUND');
    expect(await snapshot(root)).toEqual(before);
  });
});
