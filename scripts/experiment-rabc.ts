// The RA-BC experiment in the simulator (`npm run experiment:rabc`): does weighting behaviour cloning
// by the reward model's progress (SARM's RA-BC) beat plain behaviour cloning on mixed-quality demos?
//
// Per recording seed (default 21, 23, 25; about 4 minutes on 2 cores), with the real commands as child processes (`node bin/stageward.js ...`):
//   a. `sim record` a `mixed` pick_place dataset (>= 40% flawed demos: stop early, drop, wrong place, ...)
//   b. `score` it with the bundled reward model (models/zoo/pick_place) -> <dataset>/sarm_progress.parquet
//   c. `rabc --chunk 10` -> <dataset>/rabc_weights.parquet from the model's progress; and, as the upper
//      bound, the same formula on the simulator's true progress (annotation.true_progress), in memory
//   d. `sim train-bc` three policies on the same frames with the same ridge: uniform, RA-BC (model),
//      RA-BC (true progress)
//   e. `sim eval-policy` each on the same held-out seeds (--eval-seed, never a recording seed)
//   f. a table of success rates with Wilson 95% intervals, the RA-BC statistics, mean weight per kind
//      of demo flaw, and where the failures stop
// Everything lands under --out (default runs/rabc-<date>); the last stdout line is one JSON object.
//
//   npm run experiment:rabc
//   npm run experiment:rabc -- --quick
//   npm run experiment:rabc -- --record-seeds 21 --eval-episodes 200 --out runs/rabc-seed21

import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { intOption, numberOption } from '../cli/options.ts';
import { LeRobotDataset } from '../datasets/reader.ts';
import { readRabcWeights, writeJson, writeRabcWeights } from '../offline/rabc/files.ts';
import { rabcWeights, type RabcStats } from '../offline/rabc/weights.ts';
import { readBcDataset, type BcDataset } from '../learn/policy/dataset-samples.ts';
import { wilsonInterval } from '../learn/policy/evaluate.ts';
import type { PolicyEvalSummary } from '../learn/policy/evaluate-file.ts';
import { ROOT, stagewardJson, stamp } from './stageward-child.ts';
import { percent } from '../core/format.ts';

const ARMS = ['bc', 'rabc', 'rabc_true'] as const;
type Arm = (typeof ARMS)[number];
const ARM_LABEL: Record<Arm, string> = { bc: 'BC (uniform)', rabc: 'RA-BC (model progress)', rabc_true: 'RA-BC (true progress)' };

interface Flags {
  out?: string;
  quick?: boolean;
  demos?: number;
  evalEpisodes?: number;
  recordSeeds?: number[];
  evalSeed: number;
  chunk: number;
  ridge: number;
  size: number;
  model: string;
  minFlawedShare: number;
}

type EvalSummary = PolicyEvalSummary;

interface SeedResult {
  record_seed: number;
  demos: number;
  frames: number;
  demo_successes: number;
  flawed_share: number;
  flaws: Record<string, { episodes: number; frames: number; mean_weight_model: number; mean_weight_true: number }>;
  rabc_model: RabcStats & Record<string, unknown>;
  rabc_true: RabcStats;
  /** Of the frames true-progress RA-BC drops (weight 0), the share the model's weights drop too, and vice versa. */
  /** Share of the true-progress weights' dropped frames the model's weights drop too; null when they drop none. */
  dropped_recall: number | null;
  /** Share of the model's dropped frames the true-progress weights drop too; null when the model drops none. */
  dropped_precision: number | null;
  train: Record<Arm, Record<string, unknown>>;
  eval: Record<Arm, EvalSummary>;
  seconds: Record<string, number>;
}

function seedList(value: string): number[] {
  const seeds = value.split(',').map((s) => Number(s.trim()));
  if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0 || s > 40_000))
    throw new InvalidArgumentError('a comma list of integers in [0, 40000]');
  return [...new Set(seeds)];
}

function parseFlags(argv: string[]): Flags {
  const program = new Command('experiment-rabc')
    .description(
      'RA-BC vs plain BC in the simulator: record mixed demos, score them with the bundled reward model, weight, train, evaluate on held-out seeds',
    )
    .option('--out <dir>', 'output folder (default runs/rabc-<date-time>)')
    .option('--quick', 'a smoke run: one recording seed, 24 demos, 40 evaluation episodes per policy (too few for conclusions)')
    .option('--demos <n>', 'demonstrations per recording seed (default 60; --quick 24)', intOption(2, 10_000))
    .option(
      '--eval-episodes <n>',
      'held-out evaluation episodes per policy and recording seed (default 100; --quick 40)',
      intOption(1, 10_000),
    )
    .option('--record-seeds <list>', 'recording run seeds, one dataset of --demos each (default 21,23,25; --quick 21)', seedList)
    .option('--eval-seed <n>', 'the held-out evaluation run seed (must differ from every recording seed)', intOption(0, 40_000), 22)
    .option('--chunk <frames>', 'RA-BC action-chunk horizon H', intOption(1, 1000), 10)
    .option('--ridge <r>', 'behaviour-cloning ridge strength (all three policies)', numberOption(0, 1e6), 1e-4)
    .option('--size <px>', 'camera resolution of the recording (the reward model resizes to its own)', intOption(16, 1024), 96)
    .option('--model <dir>', 'reward model package', 'models/zoo/pick_place')
    .option('--min-flawed-share <x>', 'stop when a recording has fewer flawed demos than this share', numberOption(0, 1), 0.4)
    .addHelpText(
      'after',
      '\nThe last stdout line is one JSON object: {bc_success, rabc_success, true_progress_rabc_success, episodes, ...}.',
    )
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const f = program.opts<Flags>();
  if (f.recordSeeds?.includes(f.evalSeed))
    program.error(`--eval-seed ${f.evalSeed} is also a recording seed; the evaluation would not be held out`);
  return f;
}

const stageward = stagewardJson;

async function timed<T>(seconds: Record<string, number>, name: string, work: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const r = await work();
  seconds[name] = Number(((performance.now() - t0) / 1000).toFixed(1));
  return r;
}

/** Mean weight per kind of flaw (a demo with several flaws counts under each; `clean` for none). */
function flawTable(
  data: BcDataset,
  wModel: Map<number, { weight: ArrayLike<number> }>,
  wTrue: readonly Float64Array[],
): SeedResult['flaws'] {
  const acc = new Map<string, { episodes: number; frames: number; model: number; truth: number }>();
  data.episodes.forEach((ep, i) => {
    const kinds = ep.flaws && ep.flaws.length > 0 ? ep.flaws : ['clean'];
    const m = wModel.get(ep.index)?.weight;
    let sm = 0;
    let st = 0;
    for (let t = 0; t < ep.length; t++) {
      sm += m?.[t] ?? 1;
      st += wTrue[i]![t]!;
    }
    for (const k of kinds) {
      const a = acc.get(k) ?? { episodes: 0, frames: 0, model: 0, truth: 0 };
      a.episodes++;
      a.frames += ep.length;
      a.model += sm;
      a.truth += st;
      acc.set(k, a);
    }
  });
  const order = [...acc.keys()].sort((a, b) => (a === 'clean' ? -1 : b === 'clean' ? 1 : a.localeCompare(b)));
  return Object.fromEntries(
    order.map((k) => {
      const a = acc.get(k)!;
      return [k, { episodes: a.episodes, frames: a.frames, mean_weight_model: a.model / a.frames, mean_weight_true: a.truth / a.frames }];
    }),
  );
}

async function runSeed(f: Required<Omit<Flags, 'out' | 'quick'>>, out: string, seed: number): Promise<SeedResult> {
  const dir = join(out, `seed-${seed}`);
  const ds = join(dir, 'dataset');
  const logs = join(dir, 'logs');
  const seconds: Record<string, number> = {};
  const say = (s: string) => console.log(`[seed ${seed}] ${s}`);

  // a. record
  await timed(seconds, 'record', () =>
    stageward(
      [
        'sim',
        'record',
        '--task',
        'pick_place',
        '--episodes',
        String(f.demos),
        '--preset',
        'mixed',
        '--seed',
        String(seed),
        '--size',
        String(f.size),
        '--out',
        ds,
        '--overwrite',
        '--no-progress',
      ],
      join(logs, 'record.log'),
    ),
  );
  const dataset = await LeRobotDataset.open(ds);
  const data = await readBcDataset(dataset);
  const flawed = data.episodes.filter((e) => (e.flaws?.length ?? 0) > 0).length;
  const flawedShare = flawed / data.episodes.length;
  const demoSuccesses = dataset.episodes.filter((e) => e.success === true).length;
  say(
    `recorded ${data.episodes.length} mixed demos, ${data.samples.length} frames in ${seconds.record} s: ${flawed} flawed (${percent(flawedShare)}), ${demoSuccesses} succeeded`,
  );
  if (flawedShare < f.minFlawedShare)
    throw new Error(`only ${percent(flawedShare)} of the demos are flawed, under --min-flawed-share ${percent(f.minFlawedShare)}`);

  // b. score with the reward model
  await timed(seconds, 'score', () =>
    stageward(
      ['score', '--model', f.model, '--dataset', ds, '--out', join(dir, 'score'), '--no-plots', '--no-progress'],
      join(logs, 'score.log'),
    ),
  );
  say(`scored with ${f.model} in ${seconds.score} s`);

  // c. RA-BC weights: the model's progress (the real command) and the true progress (in memory, same formula)
  const modelStats = (await timed(seconds, 'rabc', () =>
    stageward(['rabc', '--dataset', ds, '--chunk', String(f.chunk), '--out', join(dir, 'rabc')], join(logs, 'rabc.log')),
  )) as RabcStats & Record<string, unknown>;
  const modelWeightsPath = join(ds, 'rabc_weights.parquet');
  const truth = data.episodes.map((e) => {
    if (e.trueProgress === null) throw new Error(`episode ${e.index} has no annotation.true_progress`);
    return e.trueProgress;
  });
  const trueResult = rabcWeights(truth, { chunk: f.chunk });
  const trueWeightsPath = join(dir, 'rabc_weights_true_progress.parquet');
  await writeRabcWeights(trueWeightsPath, data.episodes, trueResult);
  const modelWeights = await readRabcWeights(modelWeightsPath);
  let bothDropped = 0;
  let trueDropped = 0;
  let modelDropped = 0;
  data.episodes.forEach((e, i) => {
    const m = modelWeights.get(e.index)!.weight;
    for (let t = 0; t < e.length; t++) {
      const md = m[t] === 0;
      const td = trueResult.weights[i]![t] === 0;
      if (md) modelDropped++;
      if (td) trueDropped++;
      if (md && td) bothDropped++;
    }
  });
  const flaws = flawTable(data, modelWeights, trueResult.weights);
  say(
    `RA-BC weights (chunk ${f.chunk}): model mean ${modelStats.mean_weight?.toFixed(3)} (dropped ${percent(modelStats.share_zero ?? 0)}), true progress mean ${trueResult.stats.mean_weight?.toFixed(3)} (dropped ${percent(trueResult.stats.share_zero ?? 0)})`,
  );

  // d. train
  const policies: Record<Arm, string> = {
    bc: join(dir, 'policies', 'bc.json'),
    rabc: join(dir, 'policies', 'rabc.json'),
    rabc_true: join(dir, 'policies', 'rabc-true-progress.json'),
  };
  const weightArgs: Record<Arm, string[]> = {
    bc: ['--uniform'],
    rabc: ['--weights', modelWeightsPath],
    rabc_true: ['--weights', trueWeightsPath],
  };
  const train = {} as Record<Arm, Record<string, unknown>>;
  for (const arm of ARMS) {
    train[arm] = await timed(seconds, `train_${arm}`, () =>
      stageward(
        ['sim', 'train-bc', '--dataset', ds, ...weightArgs[arm], '--ridge', String(f.ridge), '--out', policies[arm], '--no-progress'],
        join(logs, `train-${arm}.log`),
      ),
    );
  }
  say(`trained ${ARMS.length} policies (residual rms ${ARMS.map((a) => Number(train[a].residual_rms).toFixed(3)).join(' / ')})`);

  // e. evaluate on held-out seeds
  const evals = {} as Record<Arm, EvalSummary>;
  for (const arm of ARMS) {
    evals[arm] = (await timed(seconds, `eval_${arm}`, () =>
      stageward(
        [
          'sim',
          'eval-policy',
          '--policy',
          policies[arm],
          '--episodes',
          String(f.evalEpisodes),
          '--seed',
          String(f.evalSeed),
          '--json',
          join(dir, 'eval', `${arm}.json`),
          '--no-progress',
        ],
        join(logs, `eval-${arm}.log`),
      ),
    )) as unknown as EvalSummary;
    say(
      `${ARM_LABEL[arm]}: ${evals[arm].successes}/${evals[arm].episodes} = ${percent(evals[arm].success_rate)} in ${seconds[`eval_${arm}`]} s`,
    );
  }
  return {
    record_seed: seed,
    demos: data.episodes.length,
    frames: data.samples.length,
    demo_successes: demoSuccesses,
    flawed_share: flawedShare,
    flaws,
    rabc_model: modelStats,
    rabc_true: trueResult.stats,
    dropped_recall: trueDropped ? bothDropped / trueDropped : null,
    dropped_precision: modelDropped ? bothDropped / modelDropped : null,
    train,
    eval: evals,
    seconds,
  };
}

function report(
  results: SeedResult[],
  f: Required<Omit<Flags, 'out' | 'quick'>>,
): { lines: string[]; pooled: Record<Arm, { k: number; n: number; ci: [number, number] }> } {
  const lines: string[] = [];
  const pooled = {} as Record<Arm, { k: number; n: number; ci: [number, number] }>;
  for (const arm of ARMS) {
    const k = results.reduce((a, r) => a + r.eval[arm].successes, 0);
    const n = results.reduce((a, r) => a + r.eval[arm].episodes, 0);
    pooled[arm] = { k, n, ci: wilsonInterval(k, n) };
  }
  lines.push(
    '',
    `RA-BC experiment: pick_place, ${results.length} recording seed(s) (${f.recordSeeds.join(', ')}) x ${f.demos} mixed demos, chunk ${f.chunk}, ridge ${f.ridge}, evaluation seed ${f.evalSeed} x ${f.evalEpisodes} episodes`,
  );
  lines.push('');
  lines.push(
    `| policy | ${results.map((r) => `seed ${r.record_seed}`).join(' | ')}${results.length > 1 ? ' | pooled' : ''} | 95% interval | failures by final stage |`,
  );
  lines.push(`|---|${results.map(() => '---|').join('')}${results.length > 1 ? '---|' : ''}---|---|`);
  for (const arm of ARMS) {
    const p = pooled[arm];
    const fails: Record<string, number> = {};
    for (const r of results) for (const [s, n] of Object.entries(r.eval[arm].failures_by_stage)) fails[s] = (fails[s] ?? 0) + n;
    const failText =
      Object.entries(fails)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ') || 'none';
    lines.push(
      `| ${ARM_LABEL[arm]} | ${results.map((r) => percent(r.eval[arm].success_rate)).join(' | ')}${results.length > 1 ? ` | ${percent(p.k / p.n)}` : ''} | ${percent(p.ci[0])}-${percent(p.ci[1])} | ${failText} |`,
    );
  }
  if (results.length > 1)
    lines.push(
      '',
      `pooled: each row pools ${results.length} policies (one per dataset), each evaluated on the same ${f.evalEpisodes} held-out seeds; the interval is Wilson over all ${results.length * f.evalEpisodes} episodes.`,
    );
  lines.push('');
  lines.push(
    '| recording seed | demos | flawed | demos succeeded | model RA-BC mean weight | dropped | filtered (< 1) | true RA-BC mean weight | dropped | model drops of the true drops | true drops of the model drops |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    lines.push(
      `| ${r.record_seed} | ${r.demos} | ${percent(r.flawed_share)} | ${r.demo_successes} | ${r.rabc_model.mean_weight?.toFixed(3)} | ${percent(r.rabc_model.share_zero ?? 0)} | ${percent(r.rabc_model.share_filtered ?? 0)} | ${r.rabc_true.mean_weight?.toFixed(3)} | ${percent(r.rabc_true.share_zero ?? 0)} | ${r.dropped_recall === null ? '-' : percent(r.dropped_recall)} | ${r.dropped_precision === null ? '-' : percent(r.dropped_precision)} |`,
    );
  }
  lines.push('');
  lines.push('Mean RA-BC weight by kind of demo (a demo with several flaws counts under each):');
  lines.push('');
  lines.push(`| demo | ${results.map((r) => `seed ${r.record_seed}: episodes, model w, true w`).join(' | ')} |`);
  lines.push(`|---|${results.map(() => '---|').join('')}`);
  const kinds = [...new Set(results.flatMap((r) => Object.keys(r.flaws)))];
  for (const k of kinds) {
    lines.push(
      `| ${k} | ${results.map((r) => (r.flaws[k] ? `${r.flaws[k]!.episodes}, ${r.flaws[k]!.mean_weight_model.toFixed(2)}, ${r.flaws[k]!.mean_weight_true.toFixed(2)}` : '-')).join(' | ')} |`,
    );
  }
  lines.push('');
  const bcFails = results.reduce((a, r) => a + (r.eval.bc.episodes - r.eval.bc.successes), 0);
  const graspFails = results.reduce((a, r) => a + (r.eval.bc.failures_by_stage.grasp ?? 0), 0);
  const weightOf = (kind: string, key: 'mean_weight_model' | 'mean_weight_true') => {
    const rows = results.map((r) => r.flaws[kind]).filter((x) => x !== undefined);
    const frames = rows.reduce((a, x) => a + x!.frames, 0);
    return frames ? rows.reduce((a, x) => a + x![key] * x!.frames, 0) / frames : NaN;
  };
  if (bcFails > 0) lines.push(`Plain BC: ${graspFails} of its ${bcFails} failures end in the grasp stage.`);
  if (graspFails > bcFails / 2 && results.some((r) => r.flaws.stop_early)) {
    lines.push(`Demos that stop early idle at the grasp with an open-gripper command; uniform BC averages those frames into the grasp`);
    lines.push(
      `phase, so the cloned gripper does not close. RA-BC weighs frames that make no progress over the chunk down: mean weight on`,
    );
    lines.push(
      `stop_early demos ${weightOf('stop_early', 'mean_weight_model').toFixed(2)} (model) / ${weightOf('stop_early', 'mean_weight_true').toFixed(2)} (true progress), against ${weightOf('clean', 'mean_weight_model').toFixed(2)} / ${weightOf('clean', 'mean_weight_true').toFixed(2)} on clean demos.`,
    );
  }
  return { lines, pooled };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const flags = parseFlags(process.argv.slice(2));
  const f = {
    ...flags,
    demos: flags.demos ?? (flags.quick ? 24 : 60),
    evalEpisodes: flags.evalEpisodes ?? (flags.quick ? 40 : 100),
    recordSeeds: flags.recordSeeds ?? (flags.quick ? [21] : [21, 23, 25]),
    model: resolve(ROOT, flags.model),
  };
  const out = resolve(flags.out ?? join(ROOT, 'runs', `rabc-${stamp()}`));
  await mkdir(out, { recursive: true });
  console.log(`experiment-rabc -> ${out}${flags.quick ? ' (quick: too few episodes for conclusions)' : ''}`);
  const results: SeedResult[] = [];
  for (const seed of f.recordSeeds) results.push(await runSeed(f, out, seed));
  const { lines, pooled } = report(results, f);
  for (const l of lines) console.log(l);
  const wall = (performance.now() - t0) / 1000;
  const summary = {
    bc_success: pooled.bc.k / pooled.bc.n,
    rabc_success: pooled.rabc.k / pooled.rabc.n,
    true_progress_rabc_success: pooled.rabc_true.k / pooled.rabc_true.n,
    episodes: pooled.bc.n,
    bc_ci95: pooled.bc.ci,
    rabc_ci95: pooled.rabc.ci,
    true_progress_rabc_ci95: pooled.rabc_true.ci,
    record_seeds: f.recordSeeds,
    demos_per_seed: f.demos,
    eval_seed: f.evalSeed,
    chunk: f.chunk,
    ridge: f.ridge,
    flawed_share: results.reduce((a, r) => a + r.flawed_share * r.demos, 0) / results.reduce((a, r) => a + r.demos, 0),
    rabc_mean_weight: results.reduce((a, r) => a + (r.rabc_model.mean_weight ?? 0), 0) / results.length,
    rabc_share_filtered: results.reduce((a, r) => a + (r.rabc_model.share_filtered ?? 0), 0) / results.length,
    true_progress_rabc_mean_weight: results.reduce((a, r) => a + (r.rabc_true.mean_weight ?? 0), 0) / results.length,
    quick: flags.quick === true,
    wall_s: Number(wall.toFixed(1)),
  };
  await writeJson(join(out, 'results.json'), { summary, seeds: results, created_at: new Date().toISOString() });
  await writeFile(join(out, 'report.md'), `${lines.join('\n').trim()}\n`);
  console.log(`wrote ${join(out, 'results.json')} and ${join(out, 'report.md')} (${wall.toFixed(0)} s)`);
  console.log(JSON.stringify(summary));
}

main().catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  if (e && e.code === 'commander.helpDisplayed') process.exit(0);
  if (e && typeof e.code === 'string' && e.code.startsWith('commander.')) process.exit(2);
  console.error(`experiment-rabc: ${e?.message ?? String(err)}`);
  process.exit(1);
});
