// `stageward train` end to end: the trainer (PyTorch) trains on a tiny synthetic bundle and exports a
// package, and the server's loader serves it. Needs a Python with torch (models/python.ts finds it);
// without one it FAILS with the install hint, never skips. Run by `npm run test:python`, not `npm test`.

import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnnxProgressModel } from '../../models/package.ts';
import { runTrainer } from '../../models/python.ts';
import { trainCommand } from '../../cli/commands/train.ts';
import { TINY_TRAINING_FLAGS } from '../helpers.ts';

describe('stageward train (PyTorch)', () => {
  it('trains on a tiny bundle and exports a package the server loads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stageward-train-'));
    const bundle = join(dir, 'bundle');
    expect(
      runTrainer(['-m', 'stageward_train.synthetic', '--out', bundle, '--size', '32', '--episodes', '6'], { capture: true }).status,
    ).toBe(0);
    const config = join(dir, 'tiny.json');
    expect(
      runTrainer([
        '-c',
        `import json, sys; from stageward_train.make_fixture import TINY_CONFIG as c; c["image"] = {"height": 32, "width": 32, "resize": "stretch"}; json.dump(c, open(sys.argv[1], "w"))`,
        config,
      ]).status,
    ).toBe(0);
    const out = join(dir, 'model');
    await trainCommand()
      .exitOverride()
      .parseAsync(
        [
          '--bundle',
          bundle,
          '--out',
          out,
          '--config',
          config,
          '--work-dir',
          join(dir, 'work'),
          ...TINY_TRAINING_FLAGS,
          '--name',
          'tiny-trained',
        ],
        { from: 'user' },
      );
    const card = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as {
      tasks: string[];
      metrics: { split: { by: string } };
      provenance: { commands: string[] };
    };
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
