// Subtask annotations as LeRobot's annotation tool writes them (subtask_annotation.py): whole-second
// times, frames = seconds * fps, so the last subtask of a 7 s, 70-frame episode ends at frame 70 (an
// exclusive end), boundaries shared between subtasks, the older unprefixed `subtask_*` columns, and
// the auto single-stage "task" annotation. `stageward dataset export` accepts them (the end becomes
// frame 69, stageward's inclusive convention); frames win over times; only annotations that really
// contradict the episode are refused, naming the episode and the column.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeRobotDataset } from '../../datasets/reader.ts';
import { readNpy } from '../../datasets/npy.ts';
import { expectCode, runCli } from '../helpers.ts';
import { writeLeRobotFixture, type ExtraColumn } from './lerobot-fixture.ts';

const LENGTHS = [70, 45]; // 7 s and 4.5 s at 10 fps
const NAMES = ['reach', 'grasp', 'lift'];
/** What LeRobot's tool writes for VLM timestamps 00:00-00:03, 00:03-00:05, 00:05-00:07 (and 0-1, 1-3, 3-4 s). */
const TIMES = {
  start: [
    [0, 3, 5],
    [0, 1, 3],
  ],
  end: [
    [3, 5, 7],
    [1, 3, 4],
  ],
};
const FRAMES = {
  start: [
    [0, 30, 50],
    [0, 10, 30],
  ],
  end: [
    [30, 50, 70],
    [10, 30, 40],
  ],
};

let work: string;

function columns(prefix: 'sparse_' | '', parts: { names?: boolean; times?: typeof TIMES | null; frames?: typeof FRAMES | null }) {
  const out: Record<string, ExtraColumn> = {};
  if (parts.names !== false) out[`${prefix}subtask_names`] = { leaf: 'STRING', values: [NAMES, NAMES] };
  if (parts.times) {
    out[`${prefix}subtask_start_times`] = { leaf: 'INT64', values: parts.times.start };
    out[`${prefix}subtask_end_times`] = { leaf: 'INT64', values: parts.times.end };
  }
  if (parts.frames) {
    out[`${prefix}subtask_start_frames`] = { leaf: 'INT64', values: parts.frames.start };
    out[`${prefix}subtask_end_frames`] = { leaf: 'INT64', values: parts.frames.end };
  }
  return out;
}

async function dataset(
  name: string,
  extras: Record<string, ExtraColumn>,
  priors: Record<string, number> | null = { reach: 0.4, grasp: 0.3, lift: 0.3 },
) {
  const root = join(work, name);
  await writeLeRobotFixture(root, {
    version: 'v3.0',
    lengths: LENGTHS,
    tasks: ['lift the cube'],
    cameras: [{ view: 'front', storage: 'video' }],
    extras,
  });
  if (priors) await writeFile(join(root, 'meta/temporal_proportions_sparse.json'), JSON.stringify(priors, null, 2));
  return root;
}

async function exportLabels(root: string) {
  const out = `${root}-bundle`;
  const run = await runCli(['dataset', 'export', '--dataset', root, '--out', out, '--size', '8']);
  expect(run.code, run.stderr).toBe(0);
  const stage = Array.from((await readNpy(join(out, 'stage.npy'))).data as BigInt64Array, Number);
  const tau = Array.from((await readNpy(join(out, 'tau.npy'))).data as Float32Array);
  const progress = Array.from((await readNpy(join(out, 'progress_sarm.npy'))).data as Float32Array);
  return { stage, tau, progress, header: JSON.parse(await readFile(join(out, 'bundle.json'), 'utf8')) };
}

const SPANS = [
  [
    { name: 'reach', start: 0, end: 30 },
    { name: 'grasp', start: 30, end: 50 },
    { name: 'lift', start: 50, end: 69 },
  ],
  [
    { name: 'reach', start: 0, end: 10 },
    { name: 'grasp', start: 10, end: 30 },
    { name: 'lift', start: 30, end: 40 },
  ],
];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-annotations-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("LeRobot's annotation output", () => {
  it('is exported: an end frame equal to the length is the last frame, shared boundaries are kept', async () => {
    // as the tool writes it: sparse columns with times and frames, and the legacy aliases
    const root = await dataset('tool', {
      ...columns('sparse_', { times: TIMES, frames: FRAMES }),
      ...columns('', { times: TIMES, frames: FRAMES }),
    });
    const ds = await LeRobotDataset.open(root);
    expect(ds.episodes.map((e) => e.subtasks)).toEqual(SPANS);
    const { stage, tau, progress, header } = await exportLabels(root);
    expect(header.episodes.map((e: { length: number }) => e.length)).toEqual([70, 45]);
    expect(header.stages).toEqual([
      { name: 'reach', prior: 0.4 },
      { name: 'grasp', prior: 0.3 },
      { name: 'lift', prior: 0.3 },
    ]);
    const at = (t: number) => [stage[t], tau[t]];
    expect([0, 15, 30, 31, 50, 60, 69].map(at)).toEqual(
      [
        [0, 0],
        [0, 0.5],
        [0, 1], // frame 30 ends reach and starts grasp: the earlier span holds it, as LeRobot's find_stage_and_tau does
        [1, 1 / 20],
        [1, 1],
        [2, 10 / 19],
        [2, 1],
      ].map(([k, x]) => [k, Math.fround(x!)]),
    );
    expect(progress[69]).toBe(1);
    // episode 1 ends its last subtask at frame 40 of 45: the frames after it are "after the last span"
    expect([70 + 40, 70 + 41, 70 + 44].map(at)).toEqual([
      [2, 1],
      [2, Math.fround(0.999)],
      [2, Math.fround(0.999)],
    ]);
  });

  it('reads the older unprefixed subtask_* columns alone', async () => {
    const root = await dataset('legacy', columns('', { times: TIMES, frames: FRAMES }));
    expect((await LeRobotDataset.open(root)).episodes.map((e) => e.subtasks)).toEqual(SPANS);
    expect((await exportLabels(root)).stage.slice(45, 52)).toEqual([1, 1, 1, 1, 1, 1, 2]);
  });

  it("reads the dense_subtask_* columns alone (the tool's dense_only mode), and sparse ones first when both are there", async () => {
    const dense = Object.fromEntries(
      Object.entries(columns('sparse_', { frames: FRAMES })).map(([k, v]) => [k.replace('sparse_', 'dense_'), v]),
    );
    const root = await dataset('dense-only', dense, null);
    expect((await LeRobotDataset.open(root)).episodes.map((e) => e.subtasks)).toEqual(SPANS);
    expect((await exportLabels(root)).stage.slice(45, 52)).toEqual([1, 1, 1, 1, 1, 1, 2]);
    const other = {
      ...dense,
      dense_subtask_names: {
        leaf: 'STRING' as const,
        values: [
          ['a', 'b', 'c'],
          ['a', 'b', 'c'],
        ],
      },
    };
    const both = await dataset('both', { ...columns('sparse_', { frames: FRAMES }), ...other });
    expect((await LeRobotDataset.open(both)).episodes.map((e) => e.subtasks)).toEqual(SPANS);
  });

  it('takes whole-second times as frames when there are no frame columns', async () => {
    const root = await dataset('times', columns('sparse_', { times: TIMES }));
    expect((await LeRobotDataset.open(root)).episodes.map((e) => e.subtasks)).toEqual(SPANS);
  });

  it('lets frames win over times when both are there', async () => {
    const other = {
      start: [
        [0, 1, 2],
        [0, 1, 2],
      ],
      end: [
        [1, 2, 7],
        [1, 2, 4],
      ],
    };
    const root = await dataset('both', columns('sparse_', { times: other, frames: FRAMES }));
    expect((await LeRobotDataset.open(root)).episodes.map((e) => e.subtasks)).toEqual(SPANS);
  });

  it('exports the tool\'s auto single-stage annotation: one "task" stage over the whole episode', async () => {
    const root = await dataset(
      'single',
      {
        sparse_subtask_names: { leaf: 'STRING', values: [['task'], ['task']] },
        sparse_subtask_start_times: { leaf: 'INT64', values: [[0], [0]] },
        sparse_subtask_end_times: { leaf: 'INT64', values: [[7], [4]] },
        sparse_subtask_start_frames: { leaf: 'INT64', values: [[0], [0]] },
        sparse_subtask_end_frames: { leaf: 'INT64', values: [[70], [40]] },
      },
      { task: 1.0 },
    );
    const { stage, tau, progress, header } = await exportLabels(root);
    expect(header.stages).toEqual([{ name: 'task', prior: 1 }]);
    expect(stage.every((k) => k === 0)).toBe(true);
    expect(tau.slice(0, 70)).toEqual(Array.from({ length: 70 }, (_, t) => Math.fround(t / 69)));
    expect(progress[69]).toBe(1);
  });
});

describe('annotations that contradict the episode', () => {
  it('an end past the episode is refused by export, naming the episode and column; info still reads the dataset', async () => {
    const frames = {
      start: FRAMES.start,
      end: [
        [30, 50, 75],
        [10, 30, 40],
      ],
    };
    const root = await dataset('past', columns('sparse_', { frames }));
    const run = await runCli(['dataset', 'export', '--dataset', root, '--out', join(work, 'past-bundle')]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(
      "SW_ERR_ANNOTATION_INVALID: episode 0: sparse_subtask_end_frames[2] is 75, past the end of the episode's 70 frames",
    );
    const info = await runCli(['dataset', 'info', '--dataset', root]);
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout.join('\n'))).toMatchObject({ episodes: 2, frames: 115, stages: ['reach', 'grasp', 'lift'] });
    const ds = await LeRobotDataset.open(root);
    expect(ds.episode(1).subtasks).toEqual(SPANS[1]);
    await expectCode(async () => ds.episode(0).subtasks, 'SW_ERR_ANNOTATION_INVALID', 'episode 0: sparse_subtask_end_frames[2] is 75');
  });

  it('lists of different lengths, an end before its start, and times past the end are refused', async () => {
    const short = await dataset('short', {
      ...columns('sparse_', { frames: FRAMES }),
      sparse_subtask_end_frames: {
        leaf: 'INT64',
        values: [
          [30, 50],
          [10, 30, 40],
        ],
      },
    });
    await expectCode(
      async () => (await LeRobotDataset.open(short)).episode(0).subtasks,
      'SW_ERR_ANNOTATION_INVALID',
      'episode 0: sparse_subtask_names has 3 names but sparse_subtask_end_frames has 2 values',
    );
    const backwards = await dataset(
      'backwards',
      columns('sparse_', {
        frames: {
          start: FRAMES.start,
          end: [
            [30, 50, 70],
            [10, 5, 40],
          ],
        },
      }),
    );
    await expectCode(
      async () => (await LeRobotDataset.open(backwards)).episode(1).subtasks,
      'SW_ERR_ANNOTATION_INVALID',
      'episode 1: sparse_subtask_start_frames[1] / sparse_subtask_end_frames[1]: subtask "grasp" starts at 10, after it ends (5)',
    );
    const late = await dataset(
      'late',
      columns('sparse_', {
        times: {
          start: TIMES.start,
          end: [
            [3, 5, 8],
            [1, 3, 4],
          ],
        },
      }),
    );
    await expectCode(
      async () => (await LeRobotDataset.open(late)).episode(0).subtasks,
      'SW_ERR_ANNOTATION_INVALID',
      'episode 0: sparse_subtask_end_times[2] is 8 s (frame 80), past the end',
    );
  });
});
