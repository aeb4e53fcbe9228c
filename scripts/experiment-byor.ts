// The "bring your own robot" experiment (`npm run experiment:byor`): record simulator datasets shaped
// like a real robot's (two cameras under real-robot keys, observation.images.top and
// observation.images.wrist, 30 fps, 160 px, the task instruction as LeRobot stores it), train a model
// on them with the one command (`stageward train --dataset ...`), evaluate it on held-out episodes,
// then fine-tune from the bundled model with a third of the data and of the time, and evaluate that.
//
// Seeds (run seeds of `sim record`): training 25001-25003, the fine-tuning third 25004-25006,
// held out 35001-35003; models/zoo/rebuild.sh and `npm run experiment:reward` use none of them.
// Labels come from the datasets' SARM subtask annotations (as a user's would), not the simulator's truth.
//
// Evaluation (`stageward eval`): held-out demonstrations (mixed) with held-out failures for VOC+ on
// clean episodes, VOC-, stage accuracy and AUROC; held-out rollouts of the weak start policy with
// exploration noise for the on-policy figures (delta_pearson_1s, progress_pearson, ...). The bundled
// model's own held-out figures (its card) are printed beside them; the bundled model cannot be run on
// these datasets directly (three cameras at 10 fps). Last stdout line: one JSON object.
//
//   npm run experiment:byor                      # about 50 minutes on 2 cores
//   npm run experiment:byor -- --quick           # a smoke run: few episodes, 1 + 1/3 minutes of training
//   npm run experiment:byor -- --out runs/byor-X  # again into a folder: recorded datasets and trained models are reused

import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { numberOption } from '../cli/options.ts';
import { pathExists } from '../core/files.ts';
import { fixed } from '../core/format.ts';
import { ROOT, runStageward, stagewardJson, stamp } from './stageward-child.ts';

const CAMERAS = 'top=front,wrist=wrist';
const VIEWS = 'top=observation.images.top,wrist=observation.images.wrist';
const DEMO_KEYS = ['voc_plus_monotone', 'voc_minus', 'stage_accuracy', 'auroc'] as const;
const ON_POLICY_KEYS = ['delta_pearson_1s', 'progress_pearson', 'stall_drift_per_s', 'false_high_rate'] as const;

interface Sizes {
  mixed: number;
  failed: number;
  rollouts: number;
}

async function main(): Promise<void> {
  const program = new Command('experiment-byor')
    .description(
      'train on simulator datasets shaped like a real robot with `stageward train --dataset`, fine-tune from the bundled model, evaluate both',
    )
    .option('--out <dir>', 'output folder (default runs/byor-<date>)')
    .option('--budget-min <min>', 'training budget of the model from scratch', numberOption(0.5, 600), 30)
    .option('--quick', 'a smoke run: few episodes and 1-minute budgets (too few for conclusions)')
    .parse();
  const o = program.opts<{ out?: string; budgetMin: number; quick?: boolean }>();
  const out = resolve(o.out ?? join(ROOT, 'runs', `byor-${stamp()}`));
  const budget = o.quick ? 1 : o.budgetMin;
  const full: Sizes = o.quick ? { mixed: 6, failed: 2, rollouts: 3 } : { mixed: 60, failed: 12, rollouts: 24 };
  const third: Sizes = { mixed: Math.ceil(full.mixed / 3), failed: Math.ceil(full.failed / 3), rollouts: Math.ceil(full.rollouts / 3) };
  const held: Sizes = o.quick ? { mixed: 4, failed: 2, rollouts: 3 } : { mixed: 20, failed: 8, rollouts: 16 };
  const log = (name: string) => join(out, 'logs', `${name}.log`);
  const say = (s: string) => console.log(`[byor] ${s}`);

  const record = async (name: string, seed: number, sizes: Sizes): Promise<string[]> => {
    const sets: [string, string[], number][] = [
      ['mixed', ['--preset', 'mixed'], sizes.mixed],
      ['failed', ['--preset', 'failed'], sizes.failed],
      ['roll', ['--policy', 'weak', '--start-seed', '0', '--noise', '0.3', '--perturb', 'mixed'], sizes.rollouts],
    ];
    const dirs: string[] = [];
    for (const [i, [kind, flags, episodes]] of sets.entries()) {
      const dir = join(out, 'data', `${name}-${kind}`);
      dirs.push(dir);
      if (await pathExists(join(dir, 'meta', 'info.json'))) {
        say(`reusing ${dir}`);
        continue;
      }
      say(`recording ${dir} (${episodes} episodes, seed ${seed + i})`);
      await runStageward(
        [
          'sim',
          'record',
          '--task',
          'pick_place',
          ...flags,
          '--episodes',
          String(episodes),
          '--seed',
          String(seed + i),
          '--size',
          '160',
          '--hz',
          '30',
          '--cameras',
          CAMERAS,
          '--out',
          dir,
          '--overwrite',
          '--no-progress',
        ],
        log(`record-${name}-${kind}`),
      );
    }
    return dirs;
  };
  const train = async (name: string, datasets: string[], minutes: number, extra: string[]): Promise<number> => {
    const timing = join(out, `${name}.minutes.json`);
    if ((await pathExists(join(out, name, 'model.json'))) && (await pathExists(timing))) {
      say(`reusing the model ${join(out, name)}`);
      return (JSON.parse(await readFile(timing, 'utf8')) as { minutes: number }).minutes;
    }
    const t0 = Date.now();
    say(`training ${name} (${minutes.toFixed(1)} min budget)`);
    await runStageward(
      [
        'train',
        ...datasets.flatMap((d) => ['--dataset', d]),
        '--views',
        VIEWS,
        '--out',
        join(out, name),
        '--time-budget-min',
        String(minutes),
        '--seed',
        '0',
        '--work-dir',
        join(out, 'work', name),
        '--cache-dir',
        join(out, 'cache'),
        '--no-progress',
        ...extra,
      ],
      log(`train-${name}`),
    );
    const wall = (Date.now() - t0) / 60_000;
    await writeFile(timing, JSON.stringify({ minutes: wall }));
    return wall;
  };
  const evaluate = async (name: string, datasets: string[]): Promise<Record<string, unknown>> =>
    stagewardJson(
      [
        'eval',
        '--model',
        join(out, name),
        ...datasets.flatMap((d) => ['--dataset', d]),
        '--out',
        join(out, 'eval', `${name}-${datasets.length}`),
        '--no-plots',
        '--no-progress',
      ],
      log(`eval-${name}-${datasets.length}`),
    );

  const trainSets = await record('train', 25001, full);
  const thirdSets = await record('third', 25004, third);
  const [heldMixed, heldFailed, heldRoll] = await record('heldout', 35001, held);
  const trainMinutes = await train('scratch', trainSets, budget, []);
  const finetuneMinutes = await train('finetune', thirdSets, budget / 3, ['--from', join(ROOT, 'models', 'zoo', 'pick_place')]);

  const figures: Record<string, Record<string, unknown>> = {};
  for (const name of ['scratch', 'finetune']) {
    const demo = await evaluate(name, [heldMixed!, heldFailed!]);
    const onPolicy = await evaluate(name, [heldRoll!]);
    figures[name] = {
      ...Object.fromEntries(DEMO_KEYS.map((k) => [k, demo[k] ?? null])),
      ...Object.fromEntries(ON_POLICY_KEYS.map((k) => [k, onPolicy[k] ?? null])),
    };
  }
  const card = JSON.parse(await readFile(join(ROOT, 'models', 'zoo', 'pick_place', 'model.json'), 'utf8')) as {
    metrics?: Record<string, unknown>;
  };
  // The bundled model's figures on its own held-out sets (three cameras at 10 fps, other seeds): demonstrations and weak rollouts.
  const bundled = {
    ...((card.metrics?.engine_eval ?? {}) as Record<string, unknown>),
    ...Object.fromEntries(
      ON_POLICY_KEYS.map((k) => [k, (card.metrics?.engine_eval_rollouts_weak_noise03 as Record<string, unknown> | undefined)?.[k]]),
    ),
  };

  const keys = [...DEMO_KEYS, ...ON_POLICY_KEYS];
  console.log(
    `\n| figure | scratch (${fixed(trainMinutes, 1)} min, ${full.mixed + full.failed + full.rollouts} episodes) | fine-tuned (${fixed(finetuneMinutes, 1)} min, ${third.mixed + third.failed + third.rollouts} episodes) | bundled pick_place (its card) |`,
  );
  console.log('| --- | --- | --- | --- |');
  const cell = (v: unknown) => (typeof v === 'number' ? fixed(v, 3) : '-');
  for (const k of keys) console.log(`| ${k} | ${cell(figures.scratch![k])} | ${cell(figures.finetune![k])} | ${cell(bundled[k])} |`);
  console.log(
    JSON.stringify({
      voc_plus_monotone: figures.scratch!.voc_plus_monotone,
      voc_minus: figures.scratch!.voc_minus,
      stage_accuracy: figures.scratch!.stage_accuracy,
      auroc: figures.scratch!.auroc,
      train_minutes: Number(trainMinutes.toFixed(2)),
      finetune_voc_plus_monotone: figures.finetune!.voc_plus_monotone,
      finetune_minutes: Number(finetuneMinutes.toFixed(2)),
      scratch: figures.scratch,
      finetune: figures.finetune,
      out,
    }),
  );
}

main().catch((err: unknown) => {
  console.error(`experiment-byor: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
