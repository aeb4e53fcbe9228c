// The on-policy reward experiment (`npm run experiment:reward`): how well do the bundled reward
// models track the simulator's true progress on the states a learning policy visits, and do they
// still score demonstrations as before?
//
// Per task (pick_place, stack_three), with the real commands as child processes:
//   a. an RL checkpoint that no training data came from: `rl --reward pbrs-true --seed 7` (the
//      simulator's own potential; no learned model)
//   b. held-out sets on run seeds 30001-30004, which models/zoo/rebuild.sh never records:
//      demonstrations (mixed + failed), rollouts of the weak start with noise 0.3, rollouts of the
//      RL checkpoint with noise 0.3 (the learner's exploration)
//   c. `stageward eval` of <--zoo>/<task> (default models/zoo) on the rollouts (both sets together, and each alone in
//      per_dataset) and on the demonstrations; with --smoothing also the rollouts with the engine's
//      causal smoothing on
//   d. a table; the last stdout line is one JSON object with, per task, the on-policy keys over both
//      rollout sets pooled (`pick_place.delta_pearson_1s`, ...), per set (`pick_place.weak.…`,
//      `pick_place.rl.…`) and the demonstration figures (`pick_place.demo_voc_plus_monotone`, ...).
// Everything lands under --out (default runs/reward-<date>). About 15 minutes on 2 cores; --quick is
// a smoke run of a few episodes (too few for conclusions).
//
//   npm run experiment:reward
//   npm run experiment:reward -- --quick --tasks pick_place
//   npm run experiment:reward -- --baseline /tmp/zoo-before   # and the previous packages on the same sets

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { intOption } from '../cli/options.ts';
import { fixed } from '../core/format.ts';
import { ROOT, stagewardJson, stamp } from './stageward-child.ts';

const TASKS = ['pick_place', 'stack_three'] as const;
type Task = (typeof TASKS)[number];

/** The on-policy metrics `stageward eval` writes, with the targets (>= or <=). */
const ON_POLICY: [key: string, target: string][] = [
  ['delta_pearson_1s', '>= 0.90'],
  ['progress_pearson', '>= 0.95'],
  ['stall_drift_per_s', '<= 0.01'],
  ['false_high_rate', '(lower is better)'],
  ['uncertainty_auroc', '>= 0.80'],
  ['large_error_share', '(the AUROC positives)'],
  ['progress_mae', '(lower is better)'],
];
const DEMO: [key: string, target: string][] = [
  ['voc_plus_monotone', '>= 0.99'],
  ['stage_accuracy', '>= 0.95'],
  ['auroc', '>= 0.99'],
];

/** Run seeds of this experiment's held-out sets; rebuild.sh records on 1-11, 31 and 32. */
const SEEDS = { demo: 30001, failed: 30002, weak: 30003, rl: 30004 };
const RL_SEED = 7;

interface Flags {
  out?: string;
  quick?: boolean;
  tasks: Task[];
  episodes?: number;
  smoothing?: boolean;
  zoo: string;
  baseline?: string;
}

function taskList(value: string): Task[] {
  const names = value.split(',').map((s) => s.trim());
  for (const n of names)
    if (!(TASKS as readonly string[]).includes(n)) throw new InvalidArgumentError(`unknown task "${n}" (${TASKS.join(', ')})`);
  return [...new Set(names)] as Task[];
}

function parseFlags(argv: string[]): Flags {
  const program = new Command('experiment-reward')
    .description('on-policy accuracy of the bundled reward models against the simulator truth, on held-out rollouts and demonstrations')
    .option('--out <dir>', 'output folder (default runs/reward-<date-time>)')
    .option('--quick', 'a smoke run: 4 episodes per set')
    .option('--tasks <list>', `comma list of ${TASKS.join(', ')}`, taskList, [...TASKS])
    .option('--episodes <n>', 'episodes per rollout set (default 16; --quick 4)', intOption(1, 1000))
    .option('--smoothing', "also evaluate the rollouts with the engine's causal smoothing")
    .option('--zoo <dir>', 'folder holding the <task>/ model packages to evaluate', 'models/zoo')
    .option(
      '--baseline <dir>',
      'a second folder of <task>/ packages (e.g. the previous release) evaluated on the same sets, keys baseline.*',
    )
    .addHelpText('after', '\nThe last stdout line is one JSON object: {"pick_place.delta_pearson_1s": ..., ...}.')
    .exitOverride();
  program.parse(argv, { from: 'user' });
  return program.opts<Flags>();
}

type Metrics = Record<string, unknown>;

async function evalMetrics(args: string[], out: string, log: string): Promise<{ all: Metrics; perDataset: Metrics[] }> {
  await stagewardJson(['eval', ...args, '--out', out, '--no-plots', '--no-progress'], log);
  const doc = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as Metrics & { per_dataset: Metrics[] };
  return { all: doc, perDataset: doc.per_dataset };
}

function num(m: Metrics, key: string): number | null {
  const v = m[key];
  return typeof v === 'number' ? v : null;
}

async function runTask(task: Task, f: Flags, out: string): Promise<Record<string, number | null>> {
  const dir = join(out, task);
  const logs = join(dir, 'logs');
  const n = f.episodes ?? (f.quick ? 4 : 16);
  const say = (s: string) => console.log(`[${task}] ${s}`);
  const rec = (name: string, extra: string[]) =>
    stagewardJson(
      ['sim', 'record', '--task', task, '--out', join(dir, name), '--overwrite', '--no-progress', ...extra],
      join(logs, `record-${name}.log`),
    );

  say(`RL checkpoint: rl --reward pbrs-true --seed ${RL_SEED}`);
  const rlOut = join(dir, 'rl-checkpoint');
  await stagewardJson(
    [
      'rl',
      '--task',
      task,
      '--reward',
      'pbrs-true',
      '--rollouts',
      f.quick ? '32' : '96',
      '--seed',
      String(RL_SEED),
      '--eval-episodes',
      '10',
      '--out',
      rlOut,
      '--no-progress',
    ],
    join(logs, 'rl.log'),
  );
  say(`recording held-out sets (run seeds ${Object.values(SEEDS).join(', ')})`);
  await rec('demo-mixed', ['--preset', 'mixed', '--episodes', String(f.quick ? 4 : 20), '--seed', String(SEEDS.demo)]);
  await rec('demo-failed', ['--preset', 'failed', '--episodes', String(f.quick ? 2 : 6), '--seed', String(SEEDS.failed)]);
  await rec('roll-weak', ['--policy', 'weak', '--noise', '0.3', '--episodes', String(n), '--seed', String(SEEDS.weak)]);
  await rec('roll-rl', ['--policy', join(rlOut, 'policy.json'), '--noise', '0.3', '--episodes', String(n), '--seed', String(SEEDS.rl)]);

  const fig: Record<string, number | null> = {};
  const evaluate = async (zoo: string, prefix: string, name: string) => {
    const model = resolve(ROOT, zoo, task);
    say(`evaluating ${model} on the rollouts and the demonstrations`);
    const roll = await evalMetrics(
      ['--model', model, '--task', task, ...rollouts],
      join(dir, `${name}-rollouts`),
      join(logs, `${name}-rollouts.log`),
    );
    const demo = await evalMetrics(
      ['--model', model, '--task', task, '--dataset', join(dir, 'demo-mixed'), '--dataset', join(dir, 'demo-failed')],
      join(dir, `${name}-demo`),
      join(logs, `${name}-demo.log`),
    );
    for (const [k] of ON_POLICY) {
      fig[`${prefix}${task}.${k}`] = num(roll.all, k);
      fig[`${prefix}${task}.weak.${k}`] = num(roll.perDataset[0]!, k);
      fig[`${prefix}${task}.rl.${k}`] = num(roll.perDataset[1]!, k);
    }
    for (const [k] of DEMO) fig[`${prefix}${task}.demo_${k}`] = num(demo.all, k);
    return model;
  };
  const rollouts = ['--dataset', join(dir, 'roll-weak'), '--dataset', join(dir, 'roll-rl')];
  const model = await evaluate(f.zoo, '', 'eval');
  if (f.baseline !== undefined) await evaluate(f.baseline, 'baseline.', 'baseline');
  if (f.smoothing) {
    say('evaluating on the rollouts with causal smoothing');
    const sm = await evalMetrics(
      ['--model', model, '--task', task, ...rollouts, '--smoothing', 'ema'],
      join(dir, 'eval-rollouts-smoothed'),
      join(logs, 'eval-rollouts-smoothed.log'),
    );
    for (const [k] of ON_POLICY) fig[`${task}.smoothed.${k}`] = num(sm.all, k);
  }
  fig[`${task}.rl_checkpoint_success`] = num(JSON.parse(await readFile(join(rlOut, 'summary.json'), 'utf8')) as Metrics, 'final_success');
  return fig;
}

function table(tasks: readonly Task[], fig: Record<string, number | null>, smoothing: boolean, baseline: boolean): string {
  const cols = tasks.flatMap((t) => [
    ...(baseline ? [`${t} baseline`] : []),
    `${t} pooled`,
    `${t} weak`,
    `${t} rl`,
    ...(smoothing ? [`${t} smoothed`] : []),
  ]);
  const lines = [`| metric | target | ${cols.join(' | ')} |`, `| --- | --- | ${cols.map(() => '---').join(' | ')} |`];
  for (const [k, target] of ON_POLICY) {
    const cells = tasks.flatMap((t) => [
      ...(baseline ? [fig[`baseline.${t}.${k}`]] : []),
      fig[`${t}.${k}`],
      fig[`${t}.weak.${k}`],
      fig[`${t}.rl.${k}`],
      ...(smoothing ? [fig[`${t}.smoothed.${k}`]] : []),
    ]);
    lines.push(`| ${k} | ${target} | ${cells.map((v) => fixed(v ?? null, 3)).join(' | ')} |`);
  }
  const demoCols = tasks.flatMap((t) => [...(baseline ? [`${t} baseline`] : []), `${t} demos`]);
  lines.push('', `| demo metric | target | ${demoCols.join(' | ')} |`, `| --- | --- | ${demoCols.map(() => '---').join(' | ')} |`);
  for (const [k, target] of DEMO) {
    const cells = tasks.flatMap((t) => [...(baseline ? [fig[`baseline.${t}.demo_${k}`]] : []), fig[`${t}.demo_${k}`]]);
    lines.push(`| ${k} | ${target} | ${cells.map((v) => fixed(v ?? null, 3)).join(' | ')} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2));
  const out = resolve(f.out ?? join('runs', `reward-${stamp()}`));
  await mkdir(out, { recursive: true });
  const t0 = performance.now();
  const fig: Record<string, number | null> = {};
  for (const task of f.tasks) Object.assign(fig, await runTask(task, f, out));
  const text = table(f.tasks, fig, f.smoothing ?? false, f.baseline !== undefined);
  console.log(`\n${text}\n`);
  await writeFile(join(out, 'results.md'), `${text}\n`);
  const result = { ...fig, wall_s: Math.round((performance.now() - t0) / 100) / 10, out };
  await writeFile(join(out, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result));
}

main().catch((err: unknown) => {
  console.error(`experiment-reward: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
