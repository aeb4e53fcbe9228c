// `stageward train` end to end: the command turns its flags into the Python trainer's argv (paths
// absolute), the trainer trains on a tiny synthetic bundle and exports a package, and the server's
// loader serves it. Skipped where no Python with torch is installed (models/python.ts).

import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnnxProgressModel } from '../../models/package.ts';
import { findPython, runTrainer } from '../../models/python.ts';
import { trainCommand, trainerArgs } from '../../cli/commands/train.ts';

const hasTorch = (() => {
  try {
    findPython();
    return true;
  } catch {
    return false;
  }
})();

describe('stageward train', () => {
  it('passes every flag through with paths made absolute', () => {
    const args = trainerArgs({
      bundle: ['b1', '/abs/b2'], out: 'pkg', config: 'c.json', task: ['pick_place'], seed: 3, timeBudgetMin: 4,
      resume: 'w/last.pt', evalBundle: ['h'], workDir: 'w', heldoutFrac: 0.2, epochs: 2, headEpochs: 5, name: 'x', keepAllTasks: true,
    }, '/here');
    expect(args).toEqual([
      '-m', 'stageward_train.train', '--bundle', '/here/b1', '--bundle', '/abs/b2', '--out', '/here/pkg', '--config', '/here/c.json',
      '--task', 'pick_place', '--seed', '3', '--time-budget-min', '4', '--resume', '/here/w/last.pt', '--epochs', '2', '--head-epochs', '5',
      '--heldout-frac', '0.2', '--eval-bundle', '/here/h', '--work-dir', '/here/w', '--name', 'x', '--keep-all-tasks',
    ]);
    expect(trainerArgs({ bundle: ['b'], out: 'o' }, '/r')).toEqual(['-m', 'stageward_train.train', '--bundle', '/r/b', '--out', '/r/o']);
  });

  it.skipIf(!hasTorch)('trains on a tiny bundle and exports a package the server loads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stageward-train-'));
    const bundle = join(dir, 'bundle');
    expect(runTrainer(['-m', 'stageward_train.synthetic', '--out', bundle, '--size', '32', '--episodes', '6'], { capture: true }).status).toBe(0);
    const config = join(dir, 'tiny.json');
    expect(runTrainer(['-c', `import json, sys; from stageward_train.make_fixture import TINY_CONFIG as c; c["image"] = {"height": 32, "width": 32, "resize": "stretch"}; json.dump(c, open(sys.argv[1], "w"))`, config]).status).toBe(0);
    const out = join(dir, 'model');
    await trainCommand().exitOverride().parseAsync(
      ['--bundle', bundle, '--out', out, '--config', config, '--work-dir', join(dir, 'work'), '--time-budget-min', '0.5', '--epochs', '1', '--head-epochs', '1', '--heldout-frac', '0.34', '--name', 'tiny-trained'],
      { from: 'user' },
    );
    const card = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as { tasks: string[]; metrics: { split: { by: string } }; provenance: { commands: string[] } };
    expect(card.tasks).toEqual(['pick_place']);
    expect(card.metrics.split.by).toBe('episode');
    expect(card.provenance.commands[0]).toContain(`--bundle ${bundle}`);
    const model = await OnnxProgressModel.load(out);
    try {
      expect(model.card.name).toBe('tiny-trained');
      const features = await model.encode(new Uint8Array(2 * 32 * 32 * 3), 2);
      expect(features.length).toBe(2 * 32);
    } finally {
      await model.close();
    }
  }, 120_000);
});
