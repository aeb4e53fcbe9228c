// The online-RL experiment in the simulator (`npm run experiment:rl`): does the learned, policy-invariant
// reward (PBRS over the reward model's progress) let the same learner beat the sparse reward, and does the
// naive dense reward (r + Phi) fall into the semantic trap?
//
// For each reward mode (pbrs, sparse, progress, pbrs-true) and each seed (default 1, 2, 3), the real
// command runs as a child process, `node bin/stageward.js rl --reward R --seed S ...`, at most --jobs (2)
// at a time: the PoWER-style learner (learn/rl/power.ts) from the same weak start (BC of failed demos, about 5% success), the same rollout budget
// (default 300), the deterministic policy evaluated on the same held-out seeds. Then one table per reward
// mode (final success over seeds, success at about half the budget and at the end, the trap measures:
// hover share and mean episode length of the final policy) and the targets check. Everything lands under
// --out (default runs/rl-<date>): one `stageward rl` folder per run, its log, results.json and report.md.
// Model rewards (pbrs, progress) render three views per step and are the slow runs (minutes each).
//
//   npm run experiment:rl
//   npm run experiment:rl -- --quick
//   npm run experiment:rl -- --rewards pbrs,sparse --seeds 4,5 --rollouts 200 --out runs/rl-extra
//
// Last stdout line: {"pbrs_success", "sparse_success", "progress_success", "pbrs_true_success", "rollouts", "seeds", ...}

import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { intOption } from '../cli/options.ts';
import { REWARD_MODES, type RewardMode } from '../sim/bridge/types.ts';
import { wilsonInterval } from '../learn/policy/evaluate.ts';
import { ROOT, runStageward, stamp } from './stageward-child.ts';

/** Report order; the model-reward runs (slow) are started first. */
const REWARDS: readonly RewardMode[] = ['pbrs', 'sparse', 'progress', 'pbrs-true'];
/**
 * Scale of the potential term. At 1 the learned potential's errors on the learner's own exploring
 * motion drown the success signal (pbrs 2% vs sparse 20% over 3 seeds, runs/rl-final); at 0.25 it
 * guides without drowning it (learn/rl/README.md, Results).
 */
const DEFAULT_SCALE = 0.25;
const SLOW: ReadonlySet<RewardMode> = new Set(['pbrs', 'progress']);
const KEY: Record<RewardMode, string> = { pbrs: 'pbrs', sparse: 'sparse', progress: 'progress', 'pbrs-true': 'pbrs_true' };
/** Targets of the issue. */
const TARGET_PBRS = 0.8;
const TARGET_MARGIN = 0.3;

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
  task: string;
  startSeed: number;
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

const rewardList = listOf((s) => {
  if (!REWARD_MODES.includes(s as RewardMode))
    throw new InvalidArgumentError(`unknown reward mode "${s}" (use ${REWARD_MODES.join(', ')})`);
  return s as RewardMode;
}, 'reward modes');

function parseFlags(argv: string[]): Flags {
  const program = new Command('experiment-rl')
    .description(
      'online RL in the simulator: the PoWER-style learner from the same weak start with the same rollout budget on each reward mode (pbrs, sparse, progress, pbrs-true) and seed; success rate on held-out seeds, the semantic-trap measures, and the targets check',
    )
    .option('--out <dir>', 'output folder (default runs/rl-<date-time>)')
    .option(
      '--quick',
      'a smoke run: seed 1 only, 32 rollouts, 10 evaluation episodes every iteration (too few for conclusions; about 2 minutes)',
    )
    .option('--rollouts <n>', 'rollout budget per run (default 300; --quick 32)', intOption(1, 10_000_000))
    .option('--seeds <list>', 'learner seeds, one run per reward mode each (default 1,2,3; --quick 1)', seedList)
    .option('--rewards <list>', `reward modes (default ${REWARDS.join(',')})`, rewardList)
    .option('--eval-episodes <n>', 'held-out evaluation episodes per evaluation (default 50; --quick 10)', intOption(1, 99_999))
    .option(
      '--eval-every <iterations>',
      'evaluate every this many iterations, and at the start and the end (default 3; --quick 1)',
      intOption(1, 1_000_000),
    )
    .option(
      '--jobs <n>',
      'runs at the same time (child processes); more than the cores only slows each run',
      intOption(1, 64),
      Math.max(1, Math.min(2, availableParallelism())),
    )
    .option('--envs <n>', 'parallel simulator environments per run', intOption(1, 64), 8)
    .option('--task <id>', 'simulator task', 'pick_place')
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
const arsHash = async () =>
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

function report(
  rows: RewardRow[],
  f: { rollouts: number; seeds: number[]; evalEpisodes: number; task: string; scale: number },
  usedRollouts: number,
): { lines: string[]; targets: Record<string, boolean | null>; trap: string } {
  const lines: string[] = [];
  const by = Object.fromEntries(rows.map((r) => [r.reward, r])) as Partial<Record<RewardMode, RewardRow>>;
  lines.push(
    '',
    `Online RL: ${f.task}, PoWER-style learner from the weak start, potential scale ${f.scale}, budget ${f.rollouts} rollouts (${usedRollouts} run: whole iterations), seeds ${f.seeds.join(', ')}, ${f.evalEpisodes} held-out evaluation episodes per point (the same seeds for every run)`,
    '',
  );
  lines.push(
    `| reward | final success (mean over seeds) | pooled 95% | per seed | start | at ~${Math.round(f.rollouts / 2)} (${rows[0]?.halfAt ?? '-'}) | at ${usedRollouts} | hover share | mean length | final true progress | wall s per run | env steps/s |`,
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    lines.push(
      `| ${r.reward} | ${pct(r.final)} | ${pct(r.pooled[0])}-${pct(r.pooled[1])} | ${r.perSeed} | ${pct(r.start)} | ${pct(r.half)} | ${pct(r.final)} | ${Number.isFinite(r.hover) ? r.hover.toFixed(2) : '-'} | ${Number.isFinite(r.length) ? r.length.toFixed(1) : '-'} | ${Number.isFinite(r.trueProgress) ? r.trueProgress.toFixed(3) : '-'} | ${Number.isFinite(r.wall) ? r.wall.toFixed(0) : '-'} | ${Number.isFinite(r.stepsPerS) ? r.stepsPerS.toFixed(0) : '-'} |`,
    );
  }
  lines.push(
    '',
    'hover share: evaluation episodes of the final policy that end by the time limit, unfinished, with true progress >= 0.7; mean length in control steps.',
    '',
  );
  const pbrs = by.pbrs;
  const sparse = by.sparse;
  const progress = by.progress;
  const has = (r: RewardRow | undefined): r is RewardRow => r !== undefined && r.runs > 0;
  const targets: Record<string, boolean | null> = {
    pbrs_at_least_80: has(pbrs) ? pbrs.final >= TARGET_PBRS : null,
    pbrs_minus_sparse_at_least_30_points: has(pbrs) && has(sparse) ? pbrs.final - sparse.final >= TARGET_MARGIN - 1e-12 : null,
    progress_shows_trap: null,
  };
  let trap = 'not measured';
  lines.push('Targets:');
  lines.push(
    `- pbrs >= ${pct(TARGET_PBRS)} at ${f.rollouts} rollouts: ${has(pbrs) ? `${targets.pbrs_at_least_80 ? 'yes' : 'no'} (${pct(pbrs.final)})` : 'not run'}`,
  );
  lines.push(
    `- pbrs - sparse >= ${Math.round(TARGET_MARGIN * 100)} points: ${has(pbrs) && has(sparse) ? `${targets.pbrs_minus_sparse_at_least_30_points ? 'yes' : 'no'} (${((pbrs.final - sparse.final) * 100).toFixed(1)} points: ${pct(pbrs.final)} vs ${pct(sparse.final)})` : 'not run'}`,
  );
  if (has(progress) && has(pbrs)) {
    const lower = progress.final < pbrs.final;
    const hoverHigher = progress.hover > pbrs.hover;
    const longer = progress.length > pbrs.length;
    targets.progress_shows_trap = lower || hoverHigher;
    trap =
      lower && hoverHigher ? 'lower success and higher hover share' : lower ? 'lower success' : hoverHigher ? 'higher hover share' : 'no';
    lines.push(
      `- progress shows the trap: ${targets.progress_shows_trap ? `yes (${trap})` : 'no'}: success ${pct(progress.final)} vs pbrs ${pct(pbrs.final)} (${lower ? 'lower' : 'not lower'}); hover share ${progress.hover.toFixed(2)} vs ${pbrs.hover.toFixed(2)} (${hoverHigher ? 'higher' : 'not higher'}); mean length ${progress.length.toFixed(1)} vs ${pbrs.length.toFixed(1)} steps (${longer ? 'longer' : 'not longer'})`,
    );
  } else {
    lines.push('- progress shows the trap: not run (needs progress and pbrs)');
  }
  return { lines, targets, trap };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const flags = parseFlags(process.argv.slice(2));
  const quick = flags.quick === true;
  const f = {
    rollouts: flags.rollouts ?? (quick ? 32 : 300),
    seeds: flags.seeds ?? (quick ? [1] : [1, 2, 3]),
    rewards: flags.rewards ? REWARDS.filter((r) => flags.rewards!.includes(r)) : [...REWARDS],
    evalEpisodes: flags.evalEpisodes ?? (quick ? 10 : 50),
    evalEvery: flags.evalEvery ?? (quick ? 1 : 3),
    task: flags.task,
    scale: flags.scale,
  };
  const out = resolve(flags.out ?? join(ROOT, 'runs', `rl-${stamp()}`));
  await mkdir(out, { recursive: true });
  const arsAtStart = await arsHash();
  console.log(`experiment-rl -> ${out}${quick ? ' (quick: too few rollouts and episodes for conclusions)' : ''}`);
  console.log(`  ${f.rewards.length} reward modes x ${f.seeds.length} seeds, ${f.rollouts} rollouts each, ${flags.jobs} at a time`);

  // The slow runs (model rewards) first, so the two job slots finish together.
  const plan = [...f.rewards].sort((a, b) => Number(SLOW.has(b)) - Number(SLOW.has(a)));
  const order =
    plan.filter((r) => SLOW.has(r)).length > 0
      ? [
          ...f.seeds.flatMap((s) => plan.filter((r) => SLOW.has(r)).map((r) => [r, s] as const)),
          ...f.seeds.flatMap((s) => plan.filter((r) => !SLOW.has(r)).map((r) => [r, s] as const)),
        ]
      : f.seeds.flatMap((s) => plan.map((r) => [r, s] as const));
  let done = 0;
  const jobs = order.map(([reward, seed]) => async (): Promise<RunResult> => {
    const name = `${reward}-seed${seed}`;
    const dir = join(out, name);
    const args = [
      '--task',
      f.task,
      '--reward',
      reward,
      '--rollouts',
      String(f.rollouts),
      '--seed',
      String(seed),
      '--out',
      dir,
      '--start',
      'weak',
      '--start-seed',
      String(flags.startSeed),
      '--envs',
      String(flags.envs),
      '--scale',
      String(flags.scale),
      '--eval-episodes',
      String(f.evalEpisodes),
      '--eval-every',
      String(f.evalEvery),
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
      return { reward, seed, dir, summary, error: null };
    } catch (err) {
      done++;
      const msg = err instanceof Error ? err.message : String(err);
      console.log(`[${done}/${order.length}] ${name}: FAILED after ${((performance.now() - ts) / 1000).toFixed(0)} s: ${msg}`);
      return { reward, seed, dir, summary: null, error: msg };
    }
  });
  const results = await pool(jobs, flags.jobs);

  const arsAtEnd = await arsHash();
  if (arsAtEnd !== arsAtStart)
    console.warn(
      `experiment-rl: learn/rl/power.ts changed during the experiment (${arsAtStart} -> ${arsAtEnd}); runs may have used different learners`,
    );
  const usedRollouts = results.find((r) => r.summary)?.summary?.rollouts ?? 0;
  const rows = rewardRows(results, f.rewards, f.rollouts);
  const { lines, targets, trap } = report(rows, f, usedRollouts);
  for (const l of lines) console.log(l);
  const wall = (performance.now() - t0) / 1000;
  const by = Object.fromEntries(rows.map((r) => [r.reward, r])) as Partial<Record<RewardMode, RewardRow>>;
  const figure = (reward: RewardMode, pick: (r: RewardRow) => number) => {
    const r = by[reward];
    return r && r.runs > 0 ? r3(pick(r)) : null;
  };
  const failed = results.filter((r) => r.error !== null).map((r) => `${r.reward}-seed${r.seed}`);
  const summary: Record<string, unknown> = {
    pbrs_success: figure('pbrs', (r) => r.final),
    sparse_success: figure('sparse', (r) => r.final),
    progress_success: figure('progress', (r) => r.final),
    pbrs_true_success: figure('pbrs-true', (r) => r.final),
    rollouts: f.rollouts,
    seeds: f.seeds,
    wall_s: Number(wall.toFixed(1)),
  };
  for (const reward of REWARDS) {
    summary[`${KEY[reward]}_hover_share`] = figure(reward, (r) => r.hover);
    summary[`${KEY[reward]}_mean_length`] = figure(reward, (r) => r.length);
    summary[`${KEY[reward]}_success_half_budget`] = figure(reward, (r) => r.half);
  }
  Object.assign(summary, {
    rollouts_used: usedRollouts,
    eval_episodes: f.evalEpisodes,
    scale: f.scale,
    learner_sha1: arsAtEnd === arsAtStart ? arsAtStart : `${arsAtStart}->${arsAtEnd}`,
    targets,
    progress_trap: trap,
    failed_runs: failed,
    quick,
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
