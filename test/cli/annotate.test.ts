// `stageward annotate` through main(): a keyframe CSV into a LeRobot v3.0 dataset, the summary line,
// the spans read back, refusals as `stageward: CODE: message` with exit status 2, and the help text
// that explains the file format.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { annotateCommand } from '../../cli/commands/annotate.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import { writeLeRobotFixture } from '../datasets/lerobot-fixture.ts';
import { runCli } from '../helpers.ts';

let work: string;
let root: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-cli-annotate-'));
  root = join(work, 'my-data');
  await writeLeRobotFixture(root, {
    version: 'v3.0',
    lengths: [20, 16],
    tasks: ['lift the cube'],
    cameras: [{ view: 'front', storage: 'video' }],
  });
}, 60_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('stageward annotate', () => {
  it('annotates from a CSV, prints one summary line, and refuses a second run without --overwrite', async () => {
    const file = join(work, 'keyframes.csv');
    await writeFile(file, '# watched 2 episodes\nepisode,stage,start_s\n0,reach,0\n0,grasp,1.0\n1,reach,0\n1,grasp,0.4\n1,lift,1.2\n');
    const run = await runCli(['annotate', '--dataset', root, '--from', file]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toHaveLength(1);
    // reach (10/20 + 4/16) / 2, grasp (10/20 + 8/16) / 2, lift 4/16 (episode 1 alone), renormalised by 1.125
    expect(run.stdout[0]).toBe(`annotated 2 of 2 episodes of ${root} (v3.0): reach 0.333, grasp 0.444, lift 0.222`);
    const ds = await LeRobotDataset.open(root);
    expect(ds.episodes.map((e) => e.subtasks)).toEqual([
      [
        { name: 'reach', start: 0, end: 9 },
        { name: 'grasp', start: 10, end: 19 },
      ],
      [
        { name: 'reach', start: 0, end: 3 },
        { name: 'grasp', start: 4, end: 11 },
        { name: 'lift', start: 12, end: 15 },
      ],
    ]);

    const again = await runCli(['annotate', '--dataset', root, '--from', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^stageward: SW_ERR_ANNOTATION_EXISTS: .* pass overwrite \(--overwrite\)/);
    const partial = join(work, 'one.csv');
    await writeFile(partial, 'episode,stage,start\n1,reach,0\n');
    const missing = await runCli(['annotate', '--dataset', root, '--from', partial, '--overwrite']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('SW_ERR_ANNOTATION_MISSING: ' + partial + ": no keyframes for 1 of the dataset's 2 episodes: 0;");
    const replaced = await runCli(['annotate', '--dataset', root, '--from', partial, '--overwrite', '--partial']);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(replaced.stdout).toEqual([`annotated 1 of 2 episodes of ${root} (v3.0, 1 left unannotated): reach 1.000`]);
    expect((await LeRobotDataset.open(root)).episodes.map((e) => e.subtasks)).toEqual([null, [{ name: 'reach', start: 0, end: 15 }]]);
  }, 60_000);

  it('takes the stage order from --stages when the first episode does not show every stage in order', async () => {
    const file = join(work, 'late-first.csv');
    // episode 0 skips reach: first appearance would order the stages grasp, reach
    await writeFile(file, 'episode,stage,start\n0,grasp,0\n1,reach,0\n1,grasp,8\n');
    const run = await runCli(['annotate', '--dataset', root, '--from', file, '--overwrite', '--stages', 'reach,grasp']);
    expect(run.code, run.stderr).toBe(0);
    const ds = await LeRobotDataset.open(root);
    expect(ds.stageNames).toEqual(['reach', 'grasp']);
    expect(ds.priors).toHaveLength(2);
    const lacking = await runCli(['annotate', '--dataset', root, '--from', file, '--overwrite', '--stages', 'reach']);
    expect(lacking.code).toBe(2);
    expect(lacking.stderr).toContain('names stage(s) "grasp" that the stage order (1 stages) lacks');
  }, 60_000);

  it('refuses a file that is neither .csv nor .json', async () => {
    const run = await runCli(['annotate', '--dataset', root, '--from', join(work, 'keyframes.txt')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('SW_ERR_ANNOTATION_FILE');
    expect(run.stderr).toContain('must end in .csv or .json');
  });

  it('--help explains the keyframe file', async () => {
    let out = '';
    const cmd = annotateCommand()
      .exitOverride()
      .configureOutput({ writeOut: (text) => void (out += text) });
    const err = await cmd.parseAsync(['--help'], { from: 'user' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'commander.helpDisplayed', exitCode: 0 });
    expect(out).toContain('--from <file>');
    expect(out).toContain('episode,stage,start');
    expect(out).toContain('{"episodes": {"0": [{"stage": "reach", "start": 0}');
    expect(out).toContain('start_s (seconds, frame =');
    expect(out).toContain('--partial');
  });
});
