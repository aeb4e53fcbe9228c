// The online-RL experiment in the simulator (`npm run experiment:rl`): does the learned, policy-invariant
// reward (PBRS over the reward model's progress) let the same learner beat the sparse reward, does it come
// close to the simulator's own progress as the potential, and does the naive dense reward (r + Phi) fall
// into the semantic trap?
//
// Three groups of runs, each run the real command as a child process (`node bin/stageward.js rl ...`), at
// most --jobs (2) at a time, every one from its task's weak start (BC of failed demos), the same learner
// (learn/rl/power.ts) with the same hyperparameters and the same potential scale for every reward mode:
//
//   pick_place      pbrs, sparse, progress, pbrs-true x seeds, budget 150 rollouts
//   pick_place-tlo  progress, pbrs with --time-limit-only (success does not end the episode, so staying
//                   near the goal is a real attractor), budget 150
//   stack_three     pbrs, pbrs-true, sparse x seeds (seven stages), budget 300
//
// Then one table per group (final success over seeds, success at about half the budget and at the end, the
// trap measures: hover share and mean episode length of the final policy) and the targets check. Everything
// lands under --out (default runs/rl-<date>): one `stageward rl` folder per run, its log, results.json and
// report.md.
//
//   npm run experiment:rl
//   npm run experiment:rl -- --quick
//   npm run experiment:rl -- --groups pick_place --seeds 4,5 --out runs/rl-extra
//
// Last stdout line: {"pbrs_success", "sparse_success", "progress_success", "pbrs_true_success", "rollouts", "seeds",
// "scale", "stack_three_pbrs_success", ..., "hover_share_progress_no_termination", ..., "wall_s"}

import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { intOption } from '../cli/options.ts';
import { REWARD_MODES, type RewardMode } from '../sim/bridge/types.ts';
import { DEFAULT_EVAL_SEED, wilsonInterval } from '../learn/policy/evaluate.ts';
import { ROOT, runStageward, stamp } from './stageward-child.ts';

/** Report order; the model-reward runs (slow) are started first. */
const REWARDS: readonly RewardMode[] = ['pbrs', 'sparse', 'progress', 'pbrs-true'];
/** Scale of the potential term, the same for every reward mode (Phi is in [0, 1]: its natural scale). */
const DEFAULT_SCALE = 1;
const SLOW: ReadonlySet<RewardMode> = new Set(['pbrs', 'progress']);
const KEY: Record<RewardMode, string> = { pbrs: 'pbrs', sparse: 'sparse', progress: 'progress', 'pbrs-true': 'pbrs_true' };
/**
 * Learner seeds and evaluation seeds of the experiment, held out from the learner's tuning (seeds 1-3,
 * evaluation run seed DEFAULT_EVAL_SEED: learn/rl/README.md, Tuning).
 */
const EXPERIMENT_SEEDS = [4, 5, 6] as const;
const EXPERIMENT_EVAL_SEED = 39_000;
/** Targets. */
const TARGET_PBRS = 0.9;
const TARGET_MARGIN = 0.3;
const TARGET_TRUE_GAP = 0.05;
const TARGET_STACK_PBRS = 0.6;
const TARGET_STACK_SPARSE = 0.1;

/** A group of runs: one task, some reward modes, one budget. */
interface Group {
  name: GroupName;
  task: 'pick_place' | 'stack_three';
  rewards: RewardMode[];
  rollouts: number;
  timeLimitOnly: boolean;
  evalEpisodes: number;
  evalEvery: number;
}
const GROUP_NAMES = ['pick_place', 'pick_place-tlo', 'stack_three'] as const;
type GroupName = (typeof GROUP_NAMES)[number];

function groups(quick: boolean, flags: Flags): Group[] {
  const evalEpisodes = flags.evalEpisodes;
  const evalEvery = flags.evalEvery;
  const pickPlace: Group = {
    name: 'pick_place',
    task: 'pick_place',
    rewards: [...REWARDS],
    rollouts: flags.rollouts ?? (quick ? 32 : 150),
    timeLimitOnly: false,
    evalEpisodes: evalEpisodes ?? (quick ? 10 : 50),
    evalEvery: evalEvery ?? (quick ? 1 : 3),
  };
  const all: Group[] = [
    pickPlace,
    { ...pickPlace, name: 'pick_place-tlo', rewards: ['progress', 'pbrs'], timeLimitOnly: true, evalEvery: evalEvery ?? (quick ? 2 : 3) },
    {
      name: 'stack_three',
      task: 'stack_three',
      rewards: ['pbrs', 'pbrs-true', 'sparse'],
      rollouts: flags.stackRollouts ?? (quick ? 16 : 300),
      timeLimitOnly: false,
      // Episodes are 300 steps: fewer evaluation points keep the run in budget.
      evalEpisodes: evalEpisodes ?? (quick ? 5 : 30),
      evalEvery: evalEvery ?? (quick ? 1 : 6),
    },
  ];
  return all
    .filter((g) => (flags.groups ?? GROUP_NAMES).includes(g.name))
    .map((g) => ({ ...g, rewards: flags.rewards ? g.rewards.filter((r) => flags.rewards!.includes(r)) : g.rewards }))
    .filter((g) => g.rewards.length > 0);
}

interface Flags {
  out?: string;
  quick?: boolean;
  rollouts?: number;
  seeds?: number[];
  rewards?: RewardMode[];
  evalEpisodes?: number;
  evalEvery?: number;
  jobs: number;
  envs: number;
  groups?: GroupName[];
  stackRollouts?: number;
  startSeed: number;
  evalSeed: number;
  /** Scale lambda of the potential term, the same for every mode. */
  scale: number;
  maxSteps?: number;
}

/** What the experiment reads from a run's summary.json. */
interface RunSummary {
  rollouts: number;
  start_success: number;
  final_success: number;
  final_ci95: [number, number];
  final_successes: number;
  eval_episodes: number;
  best_success: number;
  hover_share: number;
  mean_length: number;
  mean_final_true_progress: number;
  eval_curve: { rollouts: number; success: number; ci95: [number, number]; hover_share: number; mean_length: number }[];
  env_steps_per_s: number | null;
  wall_s: number;
}

interface RunResult {
  group: GroupName;
  reward: RewardMode;
  seed: number;
  dir: string;
  summary: RunSummary | null;
  error: string | null;
}

function listOf<T>(parse: (s: string) => T, what: string) {
  return (value: string): T[] => {
    const items = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (items.length === 0) throw new InvalidArgumentError(`a comma list of ${what}`);
    return [...new Set(items.map(parse))];
  };
}

const seedList = listOf((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 1_000_000) throw new InvalidArgumentError('seeds must be integers in [0, 1000000]');
  return n;
}, 'seeds');

const groupList = listOf((s) => {
  if (!GROUP_NAMES.includes(s as GroupName)) throw new InvalidArgumentError(`unknown group "${s}" (use ${GROUP_NAMES.join(', ')})`);
  return s as GroupName;
}, 'groups');

const rewardList = listOf((s) => {
  if (!REWARD_MODES.includes(s as RewardMode))
    throw new InvalidArgumentError(`unknown reward mode "${s}" (use ${REWARD_MODES.join(', ')})`);
  return s as RewardMode;
}, 'reward modes');

function parseFlags(argv: string[]): Flags {
  const program = new Command('experiment-rl')
    .description(
      "online RL in the simulator: the PoWER-style learner from each task's weak start with the same hyperparameters and potential scale on each reward mode and seed (pick_place: pbrs, sparse, progress, pbrs-true, 150 rollouts; pick_place with time-limit-only episodes: progress, pbrs; stack_three: pbrs, pbrs-true, sparse, 300 rollouts); success rate on held-out seeds, the semantic-trap measures, and the targets check",
    )
    .option('--out <dir>', 'output folder (default runs/rl-<date-time>)')
    .option(
      '--quick',
      'a smoke run: the first seed only, 32 rollouts (stack_three 16), 10 evaluation episodes (stack_three 5) (too few for conclusions; about 3.5 minutes)',
    )
    .option('--groups <list>', `groups of runs (default ${GROUP_NAMES.join(',')})`, groupList)
    .option('--rollouts <n>', 'rollout budget per pick_place run (default 150; --quick 32)', intOption(1, 10_000_000))
    .option('--stack-rollouts <n>', 'rollout budget per stack_three run (default 300; --quick 16)', intOption(1, 10_000_000))
    .option(
      '--seeds <list>',
      `learner seeds, one run per reward mode each (default ${EXPERIMENT_SEEDS.join(',')}, held out from the tuning, which used 1,2,3; --quick ${EXPERIMENT_SEEDS[0]})`,
      seedList,
    )
    .option('--rewards <list>', `reward modes (default ${REWARDS.join(',')})`, rewardList)
    .option(
      '--eval-episodes <n>',
      'held-out evaluation episodes per evaluation (default pick_place 50, stack_three 30; --quick 10 and 5)',
      intOption(1, 99_999),
    )
    .option(
      '--eval-every <iterations>',
      'evaluate every this many iterations, and at the start and the end (default pick_place 3, stack_three 6; --quick 1)',
      intOption(1, 1_000_000),
    )
    .option(
      '--jobs <n>',
      'runs at the same time (child processes); more than the cores only slows each run',
      intOption(1, 64),
      Math.max(1, Math.min(2, availableParallelism())),
    )
    .option('--envs <n>', 'parallel simulator environments per run', intOption(1, 64), 8)
    .option(
      '--eval-seed <n>',
      `evaluation run seed of every run (episode i: simulator seed seed*100000 + i); default ${EXPERIMENT_EVAL_SEED}, held out from the learner's tuning (which used ${DEFAULT_EVAL_SEED})`,
      intOption(0, 40_000),
      EXPERIMENT_EVAL_SEED,
    )
    .option('--start-seed <n>', 'demo seed of the weak start, the same for every run', intOption(0, 1_000_000), 0)
    .option(
      '--scale <lambda>',
      'scale of the potential term for every reward mode (sparse has none); PBRS stays policy invariant at any scale',
      (v: string) => {
        const x = Number(v);
        if (!(x >= 0 && x <= 100)) throw new InvalidArgumentError('scale must be a number in [0, 100]');
        return x;
      },
      DEFAULT_SCALE,
    )
    .option('--max-steps <n>', "episode length limit (default: the task's)", intOption(1, 100_000))
    .addHelpText(
      'after',
      [
        '',
        "Reward modes: sparse = the simulator's success only; progress = r + Phi(s') with the model's progress (the semantic trap);",
        "pbrs = r + gamma*Phi(s') - Phi(s) with the model's progress (policy invariant); pbrs-true = the same with the simulator's",
        'true progress (the upper bound). See `stageward rl --help`.',
        '',
        'The last stdout line is one JSON object: {pbrs_success, sparse_success, progress_success, pbrs_true_success, rollouts, seeds, wall_s, ...}.',
      ].join('\n'),
    )
    .exitOverride();
  program.parse(argv, { from: 'user' });
  return program.opts<Flags>();
}

/** Run `stageward rl ...` in the repository root; its output goes to `log`. */
async function stagewardRl(args: string[], log: string): Promise<void> {
  await runStageward(['rl', ...args], log, 8);
}

/** Run `jobs` with at most `n` at a time, in order; results in the same order. */
async function pool<T>(jobs: (() => Promise<T>)[], n: number): Promise<T[]> {
  const results = new Array<T>(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
  return results;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(1)}%`);
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const r3 = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);
/** Hash of the learner's source, so a run records which learner it used (and notices an edit mid-experiment). */
const learnerHash = async () =>
  createHash('sha1')
    .update(await readFile(join(ROOT, 'learn', 'rl', 'power.ts')))
    .digest('hex')
    .slice(0, 12);

/** The evaluation closest to `rollouts` on a run's curve. */
function successNear(s: RunSummary, rollouts: number): { rollouts: number; success: number } {
  const p = s.eval_curve.reduce((a, b) => (Math.abs(b.rollouts - rollouts) < Math.abs(a.rollouts - rollouts) ? b : a));
  return { rollouts: p.rollouts, success: p.success };
}

interface RewardRow {
  reward: RewardMode;
  runs: number;
  final: number;
  pooled: [number, number];
  perSeed: string;
  half: number;
  halfAt: number;
  start: number;
  hover: number;
  length: number;
  trueProgress: number;
  wall: number;
  stepsPerS: number;
}

function rewardRows(results: RunResult[], rewards: readonly RewardMode[], budget: number): RewardRow[] {
  return rewards.map((reward) => {
    const ok = results.filter((r) => r.reward === reward && r.summary !== null).map((r) => ({ seed: r.seed, s: r.summary! }));
    const k = ok.reduce((a, r) => a + r.s.final_successes, 0);
    const n = ok.reduce((a, r) => a + r.s.eval_episodes, 0);
    const half = ok.map((r) => successNear(r.s, budget / 2));
    return {
      reward,
      runs: ok.length,
      final: mean(ok.map((r) => r.s.final_success)),
      pooled: wilsonInterval(k, n),
      perSeed: ok.map((r) => `${r.seed}: ${pct(r.s.final_success)}`).join(', ') || 'failed',
      half: mean(half.map((h) => h.success)),
      halfAt: half[0]?.rollouts ?? NaN,
      start: mean(ok.map((r) => r.s.start_success)),
      hover: mean(ok.map((r) => r.s.hover_share)),
      length: mean(ok.map((r) => r.s.mean_length)),
      trueProgress: mean(ok.map((r) => r.s.mean_final_true_progress)),
      wall: mean(ok.map((r) => r.s.wall_s)),
      stepsPerS: mean(ok.map((r) => r.s.env_steps_per_s ?? NaN)),
    };
  });
}

function table(rows: RewardRow[], g: Group, seeds: number[], scale: number, usedRollouts: number): string[] {
  const lines: string[] = [];
  lines.push(
    '',
    `### ${g.name}: ${g.task}${g.timeLimitOnly ? ', time-limit-only training episodes (success does not end them)' : ''}`,
    '',
    `PoWER-style learner from the weak start, potential scale ${scale}, budget ${g.rollouts} rollouts (${usedRollouts} run: whole iterations), seeds ${seeds.join(', ')}, ${g.evalEpisodes} held-out evaluation episodes per point (the same seeds for every run)`,
    '',
  );
  lines.push(
    `| reward | final success (mean over seeds) | pooled 95% | per seed | start | at ~${Math.round(g.rollouts / 2)} (${rows[0]?.halfAt ?? '-'}) | hover share | mean length | final true progress | wall s per run | env steps/s |`,
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
  const fx = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  for (const r of rows) {
    lines.push(
      `| ${r.reward} | ${pct(r.final)} | ${pct(r.pooled[0])}-${pct(r.pooled[1])} | ${r.perSeed} | ${pct(r.start)} | ${pct(r.half)} | ${fx(r.hover, 2)} | ${fx(r.length, 1)} | ${fx(r.trueProgress, 3)} | ${fx(r.wall, 0)} | ${fx(r.stepsPerS, 0)} |`,
    );
  }
  return lines;
}

/** The evaluation curves, one line per run: success at each evaluated rollout count. */
function curves(results: RunResult[]): string[] {
  const lines = ['', '### Evaluation curves (success at rollouts)', ''];
  for (const r of results) {
    if (!r.summary) continue;
    lines.push(
      `- ${r.group} ${r.reward} seed ${r.seed}: ${r.summary.eval_curve.map((p) => `${p.rollouts}: ${pct(p.success)}`).join(', ')}`,
    );
  }
  return lines;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const flags = parseFlags(process.argv.slice(2));
  const quick = flags.quick === true;
  const seeds = flags.seeds ?? (quick ? EXPERIMENT_SEEDS.slice(0, 1) : [...EXPERIMENT_SEEDS]);
  const scale = flags.scale;
  const plan = groups(quick, flags);
  const out = resolve(flags.out ?? join(ROOT, 'runs', `rl-${stamp()}`));
  await mkdir(out, { recursive: true });
  const learnerAtStart = await learnerHash();
  const order = plan.flatMap((g) => {
    // Within a group the slow runs (model rewards) first, so the job slots finish together.
    const rewards = [...g.rewards].sort((a, b) => Number(SLOW.has(b)) - Number(SLOW.has(a)));
    return seeds.flatMap((seed) => rewards.map((reward) => ({ g, reward, seed })));
  });
  console.log(`experiment-rl -> ${out}${quick ? ' (quick: too few rollouts and episodes for conclusions)' : ''}`);
  for (const g of plan)
    console.log(
      `  ${g.name}: ${g.rewards.join(', ')} x seeds ${seeds.join(', ')}, ${g.rollouts} rollouts each${g.timeLimitOnly ? ', time-limit-only' : ''}`,
    );
  console.log(`  ${order.length} runs, ${flags.jobs} at a time, potential scale ${scale} for every mode`);

  let done = 0;
  const jobs = order.map(({ g, reward, seed }) => async (): Promise<RunResult> => {
    const name = `${g.name}-${reward}-seed${seed}`;
    const dir = join(out, name);
    const args = [
      '--task',
      g.task,
      '--reward',
      reward,
      '--rollouts',
      String(g.rollouts),
      '--seed',
      String(seed),
      '--out',
      dir,
      '--start',
      'weak',
      '--start-seed',
      String(flags.startSeed),
      '--eval-seed',
      String(flags.evalSeed),
      '--envs',
      String(flags.envs),
      '--scale',
      String(scale),
      '--eval-episodes',
      String(g.evalEpisodes),
      '--eval-every',
      String(g.evalEvery),
      ...(g.timeLimitOnly ? ['--time-limit-only'] : []),
      ...(flags.maxSteps !== undefined ? ['--max-steps', String(flags.maxSteps)] : []),
      '--no-progress',
    ];
    const ts = performance.now();
    try {
      await stagewardRl(args, join(out, 'logs', `${name}.log`));
      const summary = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as RunSummary;
      done++;
      console.log(
        `[${done}/${order.length}] ${name}: final ${pct(summary.final_success)} (start ${pct(summary.start_success)}, best ${pct(summary.best_success)}), hover ${summary.hover_share.toFixed(2)}, length ${summary.mean_length.toFixed(1)}, ${summary.wall_s.toFixed(0)} s`,
      );
      return { group: g.name, reward, seed, dir, summary, error: null };
    } catch (err) {
      done++;
      const msg = err instanceof Error ? err.message : String(err);
      console.log(`[${done}/${order.length}] ${name}: FAILED after ${((performance.now() - ts) / 1000).toFixed(0)} s: ${msg}`);
      return { group: g.name, reward, seed, dir, summary: null, error: msg };
    }
  });
  const results = await pool(jobs, flags.jobs);

  const learnerAtEnd = await learnerHash();
  if (learnerAtEnd !== learnerAtStart)
    console.warn(
      `experiment-rl: learn/rl/power.ts changed during the experiment (${learnerAtStart} -> ${learnerAtEnd}); runs may have used different learners`,
    );
  const lines: string[] = [];
  const rowsOf = new Map<GroupName, Partial<Record<RewardMode, RewardRow>>>();
  for (const g of plan) {
    const mine = results.filter((r) => r.group === g.name);
    const used = mine.find((r) => r.summary)?.summary?.rollouts ?? 0;
    const rows = rewardRows(mine, g.rewards, g.rollouts);
    rowsOf.set(g.name, Object.fromEntries(rows.map((r) => [r.reward, r])));
    lines.push(...table(rows, g, seeds, scale, used));
  }
  const fig = (group: GroupName, reward: RewardMode, pick: (r: RewardRow) => number = (r) => r.final) => {
    const r = rowsOf.get(group)?.[reward];
    return r && r.runs > 0 ? r3(pick(r)) : null;
  };
  const pp = (reward: RewardMode) => fig('pick_place', reward);
  const st = (reward: RewardMode) => fig('stack_three', reward);
  const both = (a: number | null, b: number | null, test: (a: number, b: number) => boolean) =>
    a === null || b === null ? null : test(a, b);
  const targets = {
    pbrs_at_least_90: both(pp('pbrs'), 0, (a) => a >= TARGET_PBRS),
    pbrs_within_5_points_of_pbrs_true: both(pp('pbrs'), pp('pbrs-true'), (a, b) => Math.abs(a - b) <= TARGET_TRUE_GAP + 1e-12),
    pbrs_minus_sparse_at_least_30_points: both(pp('pbrs'), pp('sparse'), (a, b) => a - b >= TARGET_MARGIN - 1e-12),
    stack_three_pbrs_at_least_60_sparse_below_10: both(
      st('pbrs'),
      st('sparse'),
      (a, b) => a >= TARGET_STACK_PBRS && b < TARGET_STACK_SPARSE,
    ),
  };
  const tlo = rowsOf.get('pick_place-tlo');
  const trap = {
    progress_lower_success: both(pp('progress'), pp('pbrs'), (a, b) => a < b),
    tlo_progress_hovers_more: tlo?.progress && tlo.pbrs ? tlo.progress.hover > tlo.pbrs.hover : null,
  };
  const yes = (x: boolean | null) => (x === null ? 'not run' : x ? 'yes' : 'no');
  lines.push(
    '',
    '### Targets',
    '',
    `- pick_place pbrs >= ${pct(TARGET_PBRS)}: ${yes(targets.pbrs_at_least_90)} (${pct(pp('pbrs'))})`,
    `- pbrs within ${Math.round(TARGET_TRUE_GAP * 100)} points of pbrs-true at the same scale: ${yes(targets.pbrs_within_5_points_of_pbrs_true)} (${pct(pp('pbrs'))} vs ${pct(pp('pbrs-true'))})`,
    `- pbrs - sparse >= ${Math.round(TARGET_MARGIN * 100)} points: ${yes(targets.pbrs_minus_sparse_at_least_30_points)} (${pct(pp('pbrs'))} vs ${pct(pp('sparse'))})`,
    `- stack_three pbrs >= ${pct(TARGET_STACK_PBRS)} with sparse < ${pct(TARGET_STACK_SPARSE)}: ${yes(targets.stack_three_pbrs_at_least_60_sparse_below_10)} (${pct(st('pbrs'))}, sparse ${pct(st('sparse'))})`,
    `- the trap, terminating episodes: progress success ${pct(pp('progress'))} vs pbrs ${pct(pp('pbrs'))}, hover share ${fig('pick_place', 'progress', (r) => r.hover) ?? '-'} vs ${fig('pick_place', 'pbrs', (r) => r.hover) ?? '-'}, mean length ${fig('pick_place', 'progress', (r) => r.length) ?? '-'} vs ${fig('pick_place', 'pbrs', (r) => r.length) ?? '-'}`,
    `- the trap, time-limit-only episodes: progress success ${pct(fig('pick_place-tlo', 'progress'))} vs pbrs ${pct(fig('pick_place-tlo', 'pbrs'))}, hover share ${fig('pick_place-tlo', 'progress', (r) => r.hover) ?? '-'} vs ${fig('pick_place-tlo', 'pbrs', (r) => r.hover) ?? '-'} (progress hovers more: ${yes(trap.tlo_progress_hovers_more)})`,
    '',
    'hover share: evaluation episodes of the final policy that end by the time limit, unfinished, with true progress >= 0.7; mean length in control steps.',
  );
  lines.push(...curves(results));
  for (const l of lines) console.log(l);
  const wall = (performance.now() - t0) / 1000;
  const failed = results.filter((r) => r.error !== null).map((r) => `${r.group}-${r.reward}-seed${r.seed}`);
  const ppGroup = plan.find((g) => g.name === 'pick_place');
  const stGroup = plan.find((g) => g.name === 'stack_three');
  const summary: Record<string, unknown> = {
    pbrs_success: pp('pbrs'),
    sparse_success: pp('sparse'),
    progress_success: pp('progress'),
    pbrs_true_success: pp('pbrs-true'),
    rollouts: ppGroup?.rollouts ?? null,
    seeds,
    eval_seed: flags.evalSeed,
    scale,
    stack_three_pbrs_success: st('pbrs'),
    stack_three_sparse_success: st('sparse'),
    stack_three_pbrs_true_success: st('pbrs-true'),
    stack_three_rollouts: stGroup?.rollouts ?? null,
    hover_share_progress_no_termination: fig('pick_place-tlo', 'progress', (r) => r.hover),
    hover_share_pbrs_no_termination: fig('pick_place-tlo', 'pbrs', (r) => r.hover),
    progress_success_no_termination: fig('pick_place-tlo', 'progress'),
    pbrs_success_no_termination: fig('pick_place-tlo', 'pbrs'),
  };
  for (const reward of REWARDS) {
    summary[`${KEY[reward]}_hover_share`] = fig('pick_place', reward, (r) => r.hover);
    summary[`${KEY[reward]}_mean_length`] = fig('pick_place', reward, (r) => r.length);
    summary[`${KEY[reward]}_success_half_budget`] = fig('pick_place', reward, (r) => r.half);
  }
  Object.assign(summary, {
    learner_sha1: learnerAtEnd === learnerAtStart ? learnerAtStart : `${learnerAtStart}->${learnerAtEnd}`,
    targets,
    trap,
    failed_runs: failed,
    quick,
    wall_s: Number(wall.toFixed(1)),
  });
  await writeFile(
    join(out, 'results.json'),
    `${JSON.stringify({ summary, runs: results, created_at: new Date().toISOString() }, null, 2)}\n`,
  );
  await writeFile(join(out, 'report.md'), `${lines.join('\n').trim()}\n`);
  console.log(
    `wrote ${join(out, 'results.json')} and ${join(out, 'report.md')} (${wall.toFixed(0)} s)${failed.length ? `; FAILED runs: ${failed.join(', ')}` : ''}`,
  );
  console.log(JSON.stringify(summary));
  if (failed.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  if (e && e.code === 'commander.helpDisplayed') process.exit(0);
  if (e && typeof e.code === 'string' && e.code.startsWith('commander.')) process.exit(2);
  console.error(`experiment-rl: ${e?.message ?? String(err)}`);
  process.exit(1);
});
