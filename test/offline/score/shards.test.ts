// Sharded scoring (`stageward score --shard I/N` + `stageward score merge`) on a small generated
// LeRobot dataset with the tiny fixture model: the merged sarm_progress.parquet is byte-identical to
// one run's (all episodes in 3 shards; an --episodes selection with --dense and --stride in 2 shards
// over a file that keeps an earlier episode's values; more shards than episodes), and merge refuses
// missing, duplicate and foreign parts with their codes. Also the --shard argument's validation.

import { cp, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoEpisode } from '../../../bench/demo-episode.ts';
import { LeRobotDatasetWriter } from '../../../datasets/writer.ts';
import type { DatasetSpec, RecordedEpisode } from '../../../datasets/types.ts';
import { SARM_PROGRESS_FILE } from '../../../offline/score/progress-parquet.ts';
import { mergeScoreParts, SHARD_PARTS_DIR, shardShare, type PartManifest } from '../../../offline/score/shards.ts';
import { Command, CommanderError } from 'commander';
import { scoreCommand, shardOption } from '../../../cli/commands/score.ts';
import { expectCode, fixtureCopy, FIXTURE_MODEL_DIR, runCli } from '../../helpers.ts';

const VIEWS = ['front', 'side', 'wrist'];
const S = 64; // the fixture model's image size: no resizing
const LENGTHS = [14, 9, 17, 11, 12];
const SPEC: DatasetSpec = {
  robotType: 'stageward_mocap_gripper',
  fps: 10,
  views: VIEWS,
  image: { height: S, width: S },
  stateNames: ['x'],
  actionNames: ['dx'],
  stageNames: ['reach', 'grasp', 'lift', 'carry', 'place'],
};

function episode(e: number): RecordedEpisode {
  const T = LENGTHS[e]!;
  const frames = [...demoEpisode(VIEWS, T, S, S, 100 + e)];
  return {
    task: 'pick_place',
    frames: Object.fromEntries(VIEWS.map((v) => [v, frames.map((f) => f.views[v]!)])),
    state: Array.from({ length: T }, (_, t) => Float32Array.from([t])),
    action: Array.from({ length: T }, () => Float32Array.from([0.1])),
    reward: Array.from({ length: T }, (_, t) => (t === T - 1 ? 1 : 0)),
    trueStage: Array.from({ length: T }, (_, t) => Math.min(4, Math.floor((5 * t) / T))),
    trueProgress: Array.from({ length: T }, (_, t) => t / (T - 1)),
    subtasks: [{ name: 'reach', start: 0, end: T - 1 }],
    success: true,
    meta: {},
  };
}

let work: string;
let dataset: string;
let copies = 0;

/** A fresh copy of the dataset (parts live in its root, so every case gets its own). */
async function copy(): Promise<string> {
  const dir = join(work, `ds-${copies++}`);
  await cp(dataset, dir, { recursive: true });
  return dir;
}

const BASE = ['--inference-thread', 'main', '--no-progress', '--no-plots'];

async function score(ds: string, out: string, ...args: string[]): Promise<void> {
  const run = await runCli(['score', '--model', FIXTURE_MODEL_DIR, '--dataset', ds, '--out', out, ...BASE, ...args]);
  expect(run.code, run.stderr).toBe(0);
}

async function merge(ds: string, out: string, ...args: string[]): Promise<string[]> {
  const run = await runCli(['score', 'merge', '--dataset', ds, '--out', out, '--no-progress', ...args]);
  expect(run.code, run.stderr).toBe(0);
  return run.stdout;
}

/** Score `ds` in one run, then (from the same starting file) in `n` shards and merge; both files' bytes. */
async function singleAndSharded(ds: string, n: number, ...args: string[]): Promise<{ single: Buffer; merged: Buffer }> {
  const file = join(ds, SARM_PROGRESS_FILE);
  const before = await readFile(file).catch(() => null);
  await score(ds, `${ds}-single`, ...args);
  const single = await readFile(file);
  if (before) await writeFile(file, before);
  else await rm(file);
  // in reverse, as a scheduler may well run them
  for (let i = n - 1; i >= 0; i--) await score(ds, `${ds}-sharded`, ...args, '--shard', `${i}/${n}`);
  // the shards leave the file alone
  if (before) expect((await readFile(file)).equals(before)).toBe(true);
  else await expect(readFile(file)).rejects.toThrow();
  await merge(ds, `${ds}-sharded`);
  return { single, merged: await readFile(file) };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-score-shards-'));
  dataset = join(work, 'gen');
  const writer = await LeRobotDatasetWriter.create(dataset, SPEC);
  for (let e = 0; e < LENGTHS.length; e++) await writer.addEpisode(episode(e));
  await writer.finish();
}, 60_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the share', () => {
  it('is every N-th episode of the sorted selection, from position I, and covers each episode once', () => {
    const selection = [7, 2, 9, 4, 5, 3];
    expect(shardShare(selection, { index: 0, count: 2 })).toEqual([2, 4, 7]);
    expect(shardShare(selection, { index: 1, count: 2 })).toEqual([3, 5, 9]);
    expect(shardShare(selection, { index: 0, count: 1 })).toEqual([2, 3, 4, 5, 7, 9]);
    const all = [0, 1, 2, 3].flatMap((index) => shardShare(selection, { index, count: 4 }));
    expect(all.sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 7, 9]);
    expect(shardShare([1, 2], { index: 3, count: 4 })).toEqual([]);
  });
});

describe('score --shard I/N + score merge', () => {
  it("3 shards and a merge write a sarm_progress.parquet byte-identical to one run's, and the same summary", async () => {
    const ds = await copy();
    const { single, merged } = await singleAndSharded(ds, 3);
    expect(merged.equals(single)).toBe(true);
    const one = JSON.parse(await readFile(join(`${ds}-single`, 'summary.json'), 'utf8'));
    const many = JSON.parse(await readFile(join(`${ds}-sharded`, 'summary.json'), 'utf8'));
    const strip = (r: Record<string, unknown>) => ({ ...r, wall_s: 0, timing: null });
    expect(many.episodes.map(strip)).toEqual(one.episodes.map(strip));
    expect(many.options).toEqual(one.options);
    expect(many.totals).toMatchObject({ episodes: 5, scored: 5, failed: 0, frames: one.totals.frames });
    expect(many.parquet).toEqual(one.parquet);
    expect(many.shards.parts.map((p: { episodes: string }) => p.episodes)).toEqual(['0,3', '1,4', '2']);
    // the per-episode files of every shard landed in the shared --out
    expect((await readdir(join(`${ds}-sharded`, 'episodes'))).length).toBe(2 * LENGTHS.length);
  });

  it('--episodes with --dense and --stride in 2 shards: identical bytes, and the values of episodes outside the run are kept', async () => {
    const ds = await copy();
    await score(ds, join(work, 'pre'), '--episodes', '0', '--dense');
    const { single, merged } = await singleAndSharded(ds, 2, '--episodes', '1-4', '--dense', '--stride', '3');
    expect(merged.equals(single)).toBe(true);
    const manifest = JSON.parse(await readFile(join(ds, SHARD_PARTS_DIR, 'part-1-of-2.json'), 'utf8')) as PartManifest;
    expect(manifest.episodes).toEqual([2, 4]);
    expect(manifest.run).toMatchObject({ selection: '1-4', shards: 2, rule: 'round-robin', model: { name: 'tiny-fixture' } });
    expect(manifest.run.options).toMatchObject({ stride: 3, dense: true, progress: 'sarm', shaping: 'pbrs', gamma: 0.99 });
    expect(manifest.run.model.sha256).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(manifest.run.dataset).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('more shards than episodes: the empty shard writes an empty part and exits 0; merge --clean removes the parts', async () => {
    const ds = await copy();
    const { single, merged } = await singleAndSharded(ds, 3, '--episodes', '3-4');
    expect(merged.equals(single)).toBe(true);
    const empty = JSON.parse(await readFile(join(ds, SHARD_PARTS_DIR, 'part-2-of-3.json'), 'utf8')) as PartManifest;
    expect(empty).toMatchObject({ episodes: [], data: null, reports: [] });
    await merge(ds, join(work, 'clean'), '--clean');
    await expect(readdir(join(ds, SHARD_PARTS_DIR))).rejects.toThrow();
  });
});

describe('score merge refuses', () => {
  /** A dataset copy with parts 0..n-1 of n written (or those in `only`). */
  async function sharded(n: number, only?: number[], ...args: string[]): Promise<string> {
    const ds = await copy();
    for (const i of only ?? Array.from({ length: n }, (_, k) => k)) await score(ds, join(work, 'parts'), ...args, '--shard', `${i}/${n}`);
    return ds;
  }
  const partsOf = (ds: string) => join(ds, SHARD_PARTS_DIR);

  it('no parts, or a missing shard (SW_ERR_SHARD_MISSING, naming it), and writes nothing', async () => {
    await expectCode(mergeScoreParts({ dataset: await copy(), out: join(work, 'm') }), 'SW_ERR_SHARD_MISSING', 'no parts');
    const ds = await sharded(3, [0, 2]);
    await expectCode(mergeScoreParts({ dataset: ds, out: join(work, 'm') }), 'SW_ERR_SHARD_MISSING', 'shard 1 of 3');
    await expect(readFile(join(ds, SARM_PROGRESS_FILE))).rejects.toThrow();
    const cli = await runCli(['score', 'merge', '--dataset', ds, '--no-progress']);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('SW_ERR_SHARD_MISSING');
  });

  it('two parts claiming one shard, or overlapping episodes (SW_ERR_SHARD_DUPLICATE)', async () => {
    const ds = await sharded(2);
    await cp(join(partsOf(ds), 'part-0-of-2.json'), join(partsOf(ds), 'part-0-of-2-retry.json'));
    await expectCode(mergeScoreParts({ dataset: ds, out: join(work, 'm') }), 'SW_ERR_SHARD_DUPLICATE', 'both claim shard 0/2');
    await rm(join(partsOf(ds), 'part-0-of-2-retry.json'));
    const path = join(partsOf(ds), 'part-1-of-2.json');
    const m = JSON.parse(await readFile(path, 'utf8')) as PartManifest;
    await writeFile(path, JSON.stringify({ ...m, episodes: [...m.episodes, 0] }));
    await expectCode(mergeScoreParts({ dataset: ds, out: join(work, 'm') }), 'SW_ERR_SHARD_DUPLICATE', 'episode 0 is in both');
  });

  it('parts of another N, other options, another model or another dataset (SW_ERR_SHARD_FOREIGN)', async () => {
    const ds = await sharded(3);
    // a stale part of an earlier 2-shard run
    const stale = await sharded(2, [1]);
    for (const f of ['part-1-of-2.json', 'part-1-of-2.parquet']) await cp(join(partsOf(stale), f), join(partsOf(ds), f));
    await expectCode(mergeScoreParts({ dataset: ds, out: join(work, 'm') }), 'SW_ERR_SHARD_FOREIGN', 'N 2 instead of 3');
    for (const f of ['part-1-of-2.json', 'part-1-of-2.parquet']) await rm(join(partsOf(ds), f));

    // shard 1 rerun with another stride: the two agreeing parts are the run, the odd one is named
    await score(ds, join(work, 'parts'), '--shard', '1/3', '--stride', '2');
    await expectCode(
      mergeScoreParts({ dataset: ds, out: join(work, 'm') }),
      'SW_ERR_SHARD_FOREIGN',
      'part-1-of-3.json (options.stride 2 instead of 1)',
    );
    await score(ds, join(work, 'parts'), '--shard', '1/3');

    // another model: a copy of the fixture with another version
    const other = await fixtureCopy((card) => void (card.version = '9.9.9'));
    const run = await runCli(['score', '--model', other, '--dataset', ds, '--out', join(work, 'parts'), ...BASE, '--shard', '2/3']);
    expect(run.code, run.stderr).toBe(0);
    await expectCode(mergeScoreParts({ dataset: ds, out: join(work, 'm') }), 'SW_ERR_SHARD_FOREIGN', 'model.version');
    await score(ds, join(work, 'parts'), '--shard', '2/3');
    await rm(join(other, '..'), { recursive: true, force: true });

    await mergeScoreParts({ dataset: ds, out: join(work, 'm') }); // all agree again
    // the dataset changed after the parts were written (here: info.json rewritten)
    const info = join(ds, 'meta', 'info.json');
    await writeFile(info, `${await readFile(info, 'utf8')}\n`);
    await expectCode(mergeScoreParts({ dataset: ds, out: join(work, 'm') }), 'SW_ERR_SHARD_FOREIGN', 'another dataset');
  });

  it('a part whose values file is not the one its manifest was written with (SW_ERR_DATASET_FORMAT)', async () => {
    const ds = await sharded(2);
    const other = await sharded(2, [0], '--stride', '4');
    await rename(join(partsOf(other), 'part-0-of-2.parquet'), join(partsOf(ds), 'part-0-of-2.parquet'));
    await expectCode(mergeScoreParts({ dataset: ds, out: join(work, 'm') }), 'SW_ERR_DATASET_FORMAT', 'rerun shard 0/2');
  });
});

/** What commander prints for a usage error (it would exit the process: overridden here, on every level). */
async function usageError(args: string[]): Promise<string> {
  const score = scoreCommand();
  const program = new Command('stageward').addCommand(score);
  let text = '';
  for (const c of [program, score, ...score.commands])
    c.exitOverride().configureOutput({ writeErr: (t) => void (text += t), writeOut: () => {} });
  await expect(program.parseAsync(args, { from: 'user' })).rejects.toBeInstanceOf(CommanderError);
  return text;
}

describe('--shard I/N', () => {
  it('takes 0 <= I < N, N >= 1', () => {
    expect(shardOption('0/1')).toEqual({ index: 0, count: 1 });
    expect(shardOption('3/8')).toEqual({ index: 3, count: 8 });
    for (const [bad, why] of [
      ['2/2', 'I must be in 0..1'],
      ['0/0', 'N must be at least 1'],
      ['-1/2', 'is not I/N'],
      ['1', 'is not I/N'],
      ['a/b', 'is not I/N'],
      ['1/2/3', 'is not I/N'],
      ['0.5/2', 'is not I/N'],
    ])
      expect(() => shardOption(bad!), bad).toThrow(why);
  });

  it('is refused with a usage error on the command line, and without a dataset or with --no-parquet', async () => {
    expect(await usageError(['score', '--model', FIXTURE_MODEL_DIR, '--dataset', dataset, '--shard', '4/4'])).toContain(
      "option '--shard <I/N>' argument '4/4' is invalid. \"4/4\": I must be in 0..3",
    );
    expect(await usageError(['score', '--dataset', dataset])).toContain("required option '--model <dir>'");
    expect(await usageError(['score', 'merge'])).toContain("required option '--dataset <dir>'");
    expect(await usageError(['score', 'merge', '--dataset', dataset, '--stride', '2'])).toContain('not --stride');
    let run = await runCli(['score', '--model', FIXTURE_MODEL_DIR, '--view', 'front=a.mp4', '--shard', '0/2', ...BASE]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('SW_ERR_BAD_OPTION: --shard splits a dataset');
    run = await runCli(['score', '--model', FIXTURE_MODEL_DIR, '--dataset', dataset, '--shard', '0/2', '--no-parquet', ...BASE]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--no-parquet');
  });
});
