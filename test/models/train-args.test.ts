// `stageward train`: the command turns its flags into the Python trainer's argv, paths made absolute.
// The end-to-end run (train on a tiny bundle, export, load) needs torch and lives in
// train-export.python.test.ts (`npm run test:python`).

import { describe, expect, it } from 'vitest';
import { trainerArgs } from '../../cli/commands/train.ts';

describe('stageward train', () => {
  it('passes every flag through with paths made absolute', () => {
    const args = trainerArgs(
      {
        bundle: ['b1', '/abs/b2'],
        out: 'pkg',
        config: 'c.json',
        task: ['pick_place'],
        seed: 3,
        timeBudgetMin: 4,
        resume: 'w/last.pt',
        evalBundle: ['h'],
        workDir: 'w',
        heldoutFrac: 0.2,
        epochs: 2,
        headEpochs: 5,
        name: 'x',
        keepAllTasks: true,
      },
      '/here',
    );
    expect(args).toEqual([
      '-m',
      'stageward_train.train',
      '--bundle',
      '/here/b1',
      '--bundle',
      '/abs/b2',
      '--out',
      '/here/pkg',
      '--config',
      '/here/c.json',
      '--task',
      'pick_place',
      '--seed',
      '3',
      '--time-budget-min',
      '4',
      '--resume',
      '/here/w/last.pt',
      '--epochs',
      '2',
      '--head-epochs',
      '5',
      '--heldout-frac',
      '0.2',
      '--eval-bundle',
      '/here/h',
      '--work-dir',
      '/here/w',
      '--name',
      'x',
      '--keep-all-tasks',
    ]);
    expect(trainerArgs({ bundle: ['b'], out: 'o' }, '/r')).toEqual(['-m', 'stageward_train.train', '--bundle', '/r/b', '--out', '/r/o']);
  });
});
