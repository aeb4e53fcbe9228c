// `stageward distill`: the command turns its flags into the Python distiller's argv, paths made
// absolute, and refuses malformed channel lists before Python starts. The run itself needs torch and
// is tested in models/train/tests/test_distill.py (`npm run test:python`).

import { describe, expect, it } from 'vitest';
import { distillCommand, distillerArgs } from '../../cli/commands/distill.ts';

describe('stageward distill', () => {
  it('passes every flag through with paths made absolute', () => {
    const args = distillerArgs(
      {
        teacher: 'zoo/pp',
        bundle: ['b1', '/abs/b2'],
        out: 'fast',
        block: 'separable',
        norm: 'none',
        channels: '16,32,64,128',
        timeBudgetMin: 5,
        maxSteps: 100,
        batch: 64,
        heldoutFrac: 0.2,
        seed: 3,
        version: '1.0.0-fast',
      },
      '/here',
    );
    expect(args).toEqual([
      '-m',
      'stageward_train.distill',
      '--teacher',
      '/here/zoo/pp',
      '--bundle',
      '/here/b1',
      '--bundle',
      '/abs/b2',
      '--out',
      '/here/fast',
      '--block',
      'separable',
      '--norm',
      'none',
      '--channels',
      '16,32,64,128',
      '--time-budget-min',
      '5',
      '--max-steps',
      '100',
      '--batch',
      '64',
      '--heldout-frac',
      '0.2',
      '--seed',
      '3',
      '--version',
      '1.0.0-fast',
    ]);
  });

  it('leaves the defaults to the distiller', () => {
    expect(distillerArgs({ teacher: 't', bundle: ['b'], out: 'o' }, '/r')).toEqual([
      '-m',
      'stageward_train.distill',
      '--teacher',
      '/r/t',
      '--bundle',
      '/r/b',
      '--out',
      '/r/o',
    ]);
  });

  it('refuses a malformed channel list and an unknown block by flag', async () => {
    for (const bad of [
      ['--channels', '16,,32'],
      ['--block', 'dense'],
    ]) {
      const cmd = distillCommand()
        .exitOverride()
        .configureOutput({ writeErr: () => {} });
      await expect(cmd.parseAsync(['--teacher', 't', '--bundle', 'b', '--out', 'o', ...bad], { from: 'user' })).rejects.toThrow(
        new RegExp(bad[0]!),
      );
    }
  });
});
