// BRING-YOUR-OWN-ROBOT.md, walked on a small dataset through the real commands: a LeRobot v3.0
// dataset shaped like a user's (cameras observation.images.top / observation.images.wrist, 30 fps,
// no annotations) is refused for training with the ways to annotate it, annotated from a keyframe
// CSV, trained with the one command (views renamed, task and stages from the dataset, the window
// stride at 30 fps, bundles cached), evaluated, scored into sarm_progress.parquet, and fine-tuned
// from the model it made. Needs a Python with torch (the trainer); without one it FAILS with the
// install hint, never skips. Run by `npm run test:python`, not `npm test`.

import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTrainer } from '../../../models/python.ts';
import { OnnxProgressModel } from '../../../models/package.ts';
import { writeLeRobotFixture } from '../../datasets/lerobot-fixture.ts';
import { runCli, TINY_TRAINING_FLAGS } from '../../helpers.ts';

let work: string;
let data: string;
let config: string;
const LENGTHS = [30, 30, 30, 30, 30, 30];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-byor-'));
  data = join(work, 'my_robot');
  await writeLeRobotFixture(data, {
    version: 'v3.0',
    fps: 30,
    lengths: LENGTHS,
    tasks: ['fold the towel'],
    cameras: [
      { view: 'top', storage: 'video' },
      { view: 'wrist', storage: 'video' },
    ],
  });
  // The tiny trainer config at the fixture's 16 px: its image, feature size and architecture are what --config gives.
  config = join(work, 'tiny.json');
  const make = `import json, sys; from stageward_train.make_fixture import TINY_CONFIG as c; c["image"] = {"height": 16, "width": 16, "resize": "stretch"}; json.dump(c, open(sys.argv[1], "w"))`;
  expect(runTrainer(['-c', make, config]).status).toBe(0);
}, 120_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const trainFlags = (out: string, ...extra: string[]) => [
  'train',
  '--dataset',
  data,
  '--views',
  'cam_top=observation.images.top,cam_wrist=observation.images.wrist',
  '--config',
  config,
  '--out',
  join(work, out),
  '--work-dir',
  join(work, `work-${out}`),
  '--cache-dir',
  join(work, 'cache'),
  ...TINY_TRAINING_FLAGS,
  '--no-progress',
  ...extra,
];

interface Card {
  views: string[];
  fps: number;
  window: { stride_frames: number };
  tasks: string[];
  instructions: Record<string, string[]>;
  stages: Record<string, { name: string; prior: number }[]>;
  provenance: { command: string; datasets: { path: string; sha256: string }[]; from?: { path: string } };
  metrics: { split: { heldout_episodes: number }; heldout: { stage_accuracy?: number } };
}

describe('bring your own robot (BRING-YOUR-OWN-ROBOT.md)', () => {
  it('walks from an unannotated LeRobot dataset to a trained, evaluated, scored and fine-tuned model', async () => {
    // 1. what the dataset holds
    const info = await runCli(['dataset', 'info', '--dataset', data]);
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout.join('\n'))).toMatchObject({
      fps: 30,
      cameras: [
        { key: 'observation.images.top', storage: 'video' },
        { key: 'observation.images.wrist', storage: 'video' },
      ],
      tasks: ['fold the towel'],
      annotated_episodes: 0,
    });

    // 3. before step 2: no annotations, and the refusal names both ways to add them
    const refused = await runCli(trainFlags('model'));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('SW_ERR_ANNOTATION_MISSING');
    expect(refused.stderr).toContain('stageward annotate --dataset DIR --from FILE');

    // 2. keyframes by hand
    const rows = LENGTHS.flatMap((_, e) => [`${e},grasp_corner,0`, `${e},fold_half,${10 + (e % 3)}`, `${e},smooth,${20 + (e % 2)}`]);
    await writeFile(join(work, 'keyframes.csv'), ['episode,stage,start', ...rows].join('\n') + '\n');
    const annotated = await runCli(['annotate', '--dataset', data, '--from', join(work, 'keyframes.csv')]);
    expect(annotated.code, annotated.stderr).toBe(0);

    // 3. the one command
    const trained = await runCli(trainFlags('model'));
    expect(trained.code, trained.stderr).toBe(0);
    const card = JSON.parse(await readFile(join(work, 'model', 'model.json'), 'utf8')) as Card;
    expect(card.views).toEqual(['cam_top', 'cam_wrist']);
    expect(card.fps).toBe(30);
    expect(card.window.stride_frames).toBe(6); // the tiny config strides 2 frames at 10 fps: 0.2 s, 6 frames at 30 fps
    expect(card.tasks).toEqual(['fold_the_towel']);
    expect(card.instructions).toEqual({ fold_the_towel: ['fold the towel'] });
    expect(card.stages.fold_the_towel!.map((s) => s.name)).toEqual(['grasp_corner', 'fold_half', 'smooth']);
    expect(card.provenance.command).toContain(`stageward train --dataset ${data}`);
    expect(card.provenance.datasets[0]!.path).toBe(data);
    expect(card.provenance.datasets[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(card.metrics.split.heldout_episodes).toBe(2);
    expect(card.metrics.heldout.stage_accuracy).toBeGreaterThanOrEqual(0);

    // the package serves: the server's loader opens it under the card's view names
    const model = await OnnxProgressModel.load(join(work, 'model'));
    expect(model.card.views).toEqual(['cam_top', 'cam_wrist']);
    await model.close();

    // 4. held-out check and 6. scores for RA-BC, through the renamed views
    const viewMap = ['--view-map', 'cam_top=observation.images.top,cam_wrist=observation.images.wrist'];
    const withModel = (command: string, out: string, ...extra: string[]) =>
      runCli([command, '--model', join(work, 'model'), '--dataset', data, ...viewMap, '--out', join(work, out), ...extra, '--no-progress']);
    const evaluated = await withModel('eval', 'eval', '--no-plots');
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(JSON.parse(evaluated.stdout.at(-1)!)).toHaveProperty('stage_accuracy');
    const scored = await withModel('score', 'scores');
    expect(scored.code, scored.stderr).toBe(0);
    await access(join(data, 'sarm_progress.parquet'));

    // fine-tuning from the model just made: the bundles come from the cache; the card says where the encoder came from
    const tuned = await runCli(trainFlags('tuned', '--from', join(work, 'model')));
    expect(tuned.code, tuned.stderr).toBe(0);
    expect(tuned.stdout.filter((l) => l.includes('cached bundle'))).toHaveLength(1);
    const tunedCard = JSON.parse(await readFile(join(work, 'tuned', 'model.json'), 'utf8')) as Card;
    expect(tunedCard.provenance.from!.path).toBe(join(work, 'model'));

    // a frozen torchvision backbone (random weights: nothing is downloaded here), inside encoder.onnx, served the same way
    const config32 = join(work, 'tiny32.json');
    await writeFile(
      config32,
      JSON.stringify({ ...JSON.parse(await readFile(config, 'utf8')), image: { height: 32, width: 32, resize: 'stretch' } }),
    );
    const flags = trainFlags('frozen', '--backbone', 'resnet18', '--backbone-weights', 'random');
    flags[flags.indexOf('--config') + 1] = config32;
    const frozen = await runCli(flags);
    expect(frozen.code, frozen.stderr).toBe(0);
    const frozenCard = JSON.parse(await readFile(join(work, 'frozen', 'model.json'), 'utf8')) as Card & {
      architecture: Record<string, unknown>;
    };
    expect(frozenCard.architecture).toMatchObject({ backbone: 'resnet18', backbone_weights: 'random' });
    const served = await OnnxProgressModel.load(join(work, 'frozen'));
    expect(served.card.views).toEqual(['cam_top', 'cam_wrist']);
    await served.close();
  }, 300_000);
});
