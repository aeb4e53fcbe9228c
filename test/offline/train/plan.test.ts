// `stageward train --dataset` up to the trainer: what the model config and the bundles are, read off
// LeRobot datasets (views renamed, tasks with their instructions, stages and priors per task, the
// window's stride in seconds at the dataset's fps), the refusals a user meets (no annotations, with
// the ways to add them; a missing camera; mismatched fps or stages), and the bundle cache (an
// unchanged dataset is not exported again; a changed one is). No Python: the trainer is not run.

import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeRobotDataset } from '../../../datasets/reader.ts';
import { readNpy } from '../../../datasets/npy.ts';
import { ANNOTATE_HINT, parseViewChoices, planTraining, taskIdOf, type BaseConfig } from '../../../offline/train/plan.ts';
import { datasetHash, prepareDatasetTraining } from '../../../offline/train/run.ts';
import { expectCode } from '../../helpers.ts';
import { writeLeRobotFixture, type ExtraColumn } from '../../datasets/lerobot-fixture.ts';

const BASE: BaseConfig = {
  name: 'base',
  version: '0.1.0',
  image: { height: 8, width: 8, resize: 'stretch' },
  feature_dim: 16,
  window: { length: 5, stride_frames: 5, include_initial: true },
  fps: 10,
  progress: { composition: 'argmax' },
  grm: { present: true, goal: 'client' },
  architecture: { encoder_channels: [8] },
};

let work: string;
let basePath: string;

/** Sparse annotations per episode: names and inclusive [start, end] frames. */
function annotations(spans: ([string, number, number][] | null)[]): Record<string, ExtraColumn> {
  return {
    sparse_subtask_names: { leaf: 'STRING', values: spans.map((s) => s?.map(([n]) => n) ?? null) },
    sparse_subtask_start_frames: { leaf: 'INT64', values: spans.map((s) => s?.map(([, a]) => a) ?? null) },
    sparse_subtask_end_frames: { leaf: 'INT64', values: spans.map((s) => s?.map(([, , b]) => b) ?? null) },
  };
}

const PICK: [string, number, number][] = [
  ['reach', 0, 14],
  ['grasp', 15, 29],
];
const PICK3: [string, number, number][] = [
  ['reach', 0, 9],
  ['grasp', 10, 19],
  ['lift', 20, 29],
];
const POUR: [string, number, number][] = [
  ['tilt', 0, 9],
  ['pour', 10, 19],
  ['return', 20, 29],
];

async function dataset(
  name: string,
  o: { fps?: number; spans?: ([string, number, number][] | null)[]; tasks?: string[]; taskOf?: number[]; cameras?: string[] } = {},
) {
  const root = join(work, name);
  const spans = o.spans ?? [PICK, PICK, POUR];
  await writeLeRobotFixture(root, {
    version: 'v3.0',
    fps: o.fps ?? 30,
    lengths: spans.map(() => 30),
    tasks: o.tasks ?? ['Pick up the cube.', 'pour the water'],
    taskOf: o.taskOf ?? [0, 0, 1],
    cameras: (o.cameras ?? ['top', 'wrist']).map((view) => ({ view, storage: 'video' as const })),
    extras: annotations(spans),
  });
  return root;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'sw-train-plan-'));
  basePath = join(work, 'base.json');
  await writeFile(basePath, JSON.stringify(BASE));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('planTraining', () => {
  it('derives views, tasks with instructions, per-task stages and priors, and the stride at the dataset fps', async () => {
    const ds = await LeRobotDataset.open(await dataset('multi'));
    const plan = planTraining([ds], BASE, { views: parseViewChoices('cam=observation.images.top,hand=wrist'), name: 'mine' });
    expect(plan.config.views).toEqual(['cam', 'hand']);
    expect(plan.config.fps).toBe(30);
    // 5 frames at 10 fps is 0.5 s: 15 frames at 30 fps
    expect(plan.config.window).toEqual({ length: 5, stride_frames: 15, include_initial: true });
    expect(plan.config.tasks).toEqual(['pick_up_the_cube', 'pour_the_water']);
    expect(plan.config.instructions).toEqual({ pick_up_the_cube: ['Pick up the cube.'], pour_the_water: ['pour the water'] });
    const stages = plan.config.stages as Record<string, { name: string; prior: number }[]>;
    expect(stages.pick_up_the_cube!.map((s) => s.name)).toEqual(['reach', 'grasp']);
    expect(stages.pour_the_water!.map((s) => s.name)).toEqual(['tilt', 'pour', 'return']);
    for (const list of Object.values(stages)) expect(list.reduce((a, s) => a + s.prior, 0)).toBeCloseTo(1, 6);
    expect(stages.pick_up_the_cube!.map((s) => s.prior)).toEqual([0.5, 0.5]);
    expect(plan.bundles.map((b) => [b.task, b.episodes])).toEqual([
      ['pick_up_the_cube', [0, 1]],
      ['pour_the_water', [2]],
    ]);
    expect(plan.config.name).toBe('mine');
    expect(plan.config.architecture).toEqual({ encoder_channels: [8] });
  });

  it('keeps every camera under its own name by default, and the same task across datasets as one task', async () => {
    const a = await LeRobotDataset.open(await dataset('one-a', { spans: [PICK, PICK], tasks: ['Pick up the cube.'], taskOf: [0, 0] }));
    const b = await LeRobotDataset.open(await dataset('one-b', { spans: [PICK], tasks: ['Pick up the cube.'], taskOf: [0] }));
    const plan = planTraining([a, b], BASE);
    expect(plan.config.views).toEqual(['top', 'wrist']);
    expect(plan.config.tasks).toEqual(['pick_up_the_cube']);
    expect(plan.bundles.map((x) => [x.dataset, x.task])).toEqual([
      [0, 'pick_up_the_cube'],
      [1, 'pick_up_the_cube'],
    ]);
  });

  it('takes the longest stage list of a task when failed episodes stop early, with priors from the episodes that show each stage', async () => {
    const done = await LeRobotDataset.open(await dataset('done', { spans: [PICK3, PICK3], tasks: ['t'], taskOf: [0, 0] }));
    const failed = await LeRobotDataset.open(await dataset('failed', { spans: [PICK], tasks: ['t'], taskOf: [0] }));
    const plan = planTraining([failed, done], BASE);
    const stages = (plan.config.stages as Record<string, { name: string; prior: number }[]>).t!;
    expect(stages.map((s) => s.name)).toEqual(['reach', 'grasp', 'lift']);
    expect(plan.bundles.map((b) => b.stages)).toEqual([stages, stages]);
    // lift shows only in the finished episodes: its share is theirs (10 of 30 frames), not diluted by the failed one
    expect(stages[2]!.prior).toBeCloseTo(0.3, 6);
    const swapped = await LeRobotDataset.open(
      await dataset('swapped', {
        spans: [
          [
            ['grasp', 0, 14],
            ['reach', 15, 29],
          ],
        ],
        tasks: ['t'],
        taskOf: [0],
      }),
    );
    await expectCode(() => planTraining([done, swapped], BASE), 'SW_ERR_ANNOTATION_INVALID', 'but [grasp, reach]');
  });

  it('refuses a dataset without annotations, naming the ways to add them', async () => {
    const ds = await LeRobotDataset.open(await dataset('bare', { spans: [null, null], tasks: ['t'], taskOf: [0, 0] }));
    await expectCode(() => planTraining([ds], BASE), 'SW_ERR_ANNOTATION_MISSING', ANNOTATE_HINT);
    expect(ANNOTATE_HINT).toContain('stageward annotate --dataset DIR --from FILE');
    expect(ANNOTATE_HINT).toContain("LeRobot's annotation tool");
  });

  it('refuses a partly annotated task, naming the episodes', async () => {
    const ds = await LeRobotDataset.open(await dataset('partial', { spans: [PICK, null, PICK], tasks: ['t'], taskOf: [0, 0, 0] }));
    await expectCode(
      () => planTraining([ds], BASE),
      'SW_ERR_ANNOTATION_MISSING',
      '1 of 3 episodes have no subtask annotations (episodes 1)',
    );
  });

  it('refuses a camera the dataset lacks, datasets at different fps, and one task with different stages', async () => {
    const ds = await LeRobotDataset.open(await dataset('cams', { spans: [PICK], tasks: ['t'], taskOf: [0] }));
    await expectCode(
      () => planTraining([ds], BASE, { views: parseViewChoices('a=side') }),
      'SW_ERR_DATASET_VIEW',
      'observation.images.top, observation.images.wrist',
    );
    const slow = await LeRobotDataset.open(await dataset('slow', { fps: 10, spans: [PICK], tasks: ['t'], taskOf: [0] }));
    await expectCode(() => planTraining([ds, slow], BASE), 'SW_ERR_DATASET_SPEC', '10 fps');
    const other = await LeRobotDataset.open(await dataset('other', { spans: [POUR], tasks: ['t'], taskOf: [0] }));
    await expectCode(() => planTraining([ds, other], BASE), 'SW_ERR_ANNOTATION_INVALID', '[reach, grasp]');
  });

  it('parses --views and makes task ids from instructions', async () => {
    expect(parseViewChoices('top=observation.images.cam_high, wrist')).toEqual([
      { name: 'top', camera: 'cam_high' },
      { name: 'wrist', camera: 'wrist' },
    ]);
    await expectCode(() => parseViewChoices('a=x,a=y'), 'SW_ERR_DATASET_SPEC');
    await expectCode(() => parseViewChoices(' , '), 'SW_ERR_DATASET_SPEC');
    expect(taskIdOf('Put the RED cube -> bowl!')).toBe('put_the_red_cube_bowl');
    expect(taskIdOf('!!!')).toBe('task');
    expect(taskIdOf('x'.repeat(100))).toHaveLength(48);
  });
});

describe('prepareDatasetTraining', () => {
  it('exports one bundle per task with the card view names, reuses it while the dataset is unchanged, and writes config and provenance', async () => {
    const root = await dataset('cached');
    const cacheDir = join(work, 'cache');
    const run = () =>
      prepareDatasetTraining({
        datasets: [root],
        baseConfigPath: basePath,
        workDir: join(work, 'run'),
        cacheDir,
        command: 'stageward train --dataset cached --out m',
        views: parseViewChoices('cam=top,hand=wrist'),
        onBundle: (e) => events.push(e.kind),
      });
    let events: string[] = [];
    const first = await run();
    expect(events.filter((e) => e !== 'export-progress')).toEqual(['export-start', 'export-done', 'export-start', 'export-done']);
    expect(first.tasks).toEqual(['pick_up_the_cube', 'pour_the_water']);
    const header = JSON.parse(await readFile(join(first.bundles[1]!, 'bundle.json'), 'utf8'));
    expect(header.views).toEqual(['cam', 'hand']);
    expect(header.stages.map((s: { name: string }) => s.name)).toEqual(['tilt', 'pour', 'return']);
    expect(header.priors_source).toBe('given');
    expect(header.episodes.map((e: { index: number }) => e.index)).toEqual([2]);
    expect((await readNpy(join(first.bundles[0]!, 'frames.npy'))).shape).toEqual([60, 2, 8, 8, 3]);

    const config = JSON.parse(await readFile(first.configPath, 'utf8'));
    expect(config.views).toEqual(['cam', 'hand']);
    const provenance = JSON.parse(await readFile(first.provenancePath, 'utf8'));
    expect(provenance.command).toBe('stageward train --dataset cached --out m');
    expect(provenance.datasets[0].sha256).toBe(await datasetHash(root));
    expect(provenance.views).toEqual([
      { name: 'cam', camera: 'observation.images.top' },
      { name: 'hand', camera: 'observation.images.wrist' },
    ]);

    events = [];
    const again = await run();
    expect(events).toEqual(['cached', 'cached']);
    expect(again.bundles).toEqual(first.bundles);

    // Outputs written beside the dataset (scores, RA-BC weights) do not change it ...
    const before = await datasetHash(root);
    await writeFile(join(root, 'sarm_progress.parquet'), 'scores');
    expect(await datasetHash(root)).toBe(before);
    // ... a changed annotation (a meta file) does: exported again, under another key.
    await writeFile(join(root, 'meta/temporal_proportions_sparse.json'), JSON.stringify({ reach: 0.3, grasp: 0.7 }));
    expect(await datasetHash(root)).not.toBe(before);
    events = [];
    const changed = await run();
    expect(events.filter((e) => e === 'export-start')).toHaveLength(2);
    expect(changed.bundles[0]).not.toBe(first.bundles[0]);
    expect((await readdir(cacheDir)).length).toBe(4);
  });
});
