// `stageward rl`: online RL in the simulator bridge (sim/rl/README.md). The reward-weighted exploration
// regression of sim/rl/power.ts (PoWER family) trains the
// gated-linear state policy from a start policy on one reward mode; the deterministic current policy is
// evaluated on fixed held-out seeds at the start and every few iterations (not counted in the rollout
// budget). Writes the learning curve (CSV + PNG), a summary and the final policy to --out.
//
//   stageward rl --task pick_place --reward pbrs --rollouts 300 --seed 1 --out runs/rl-pbrs-1
//   stageward rl --task pick_place --reward sparse --rollouts 300 --seed 1 --out runs/rl-sparse-1
//   stageward rl --task pick_place --reward progress --rollouts 300 --seed 1 --out runs/rl-progress-1
//   stageward rl --task pick_place --reward pbrs-true --rollouts 96 --seed 2 --eval-every 1 --out runs/rl-true-2
//   stageward rl --task pick_place --reward pbrs --transport ws --rollouts 96 --seed 1 --out runs/rl-ws
//   stageward rl --task pick_place --reward pbrs --url ws://127.0.0.1:8765 --rollouts 300 --seed 1 --out runs/rl-remote
//   stageward rl --task pick_place --reward pbrs --start runs/bc.json --rollouts 300 --seed 1 --out runs/rl-from-bc

import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { StagewardError } from '../../core/errors.ts';
import { DEFAULT_GAMMA, MAX_ENVS, REWARD_MODES, REWARD_TRANSPORTS, SimBridge, type RewardMode, type RewardTransport } from '../../sim/bridge/index.ts';
import { writeFileAtomic } from '../../core/files.ts';
import { evaluatePolicy } from '../../learn/policy/evaluate.ts';
import { GatedLinearPolicy } from '../../learn/policy/linear-policy.ts';
import { HOVER_PROGRESS, RL_DEFAULTS, trainRl, type RlIteration } from '../../learn/rl/power.ts';
import { writeCurveFiles, type CurveRow, type EvalPoint } from '../../learn/rl/curve.ts';
import { WEAK_START_DEMOS, weakStartPolicy } from '../../learn/rl/start.ts';
import { TASK_IDS } from '../../sim/tasks/index.ts';
import type { TaskId } from '../../sim/tasks/task.ts';
import { choiceOption, intOption, numberOption } from '../options.ts';
import { DEFAULT_EVAL_SEED } from '../../learn/policy/evaluate.ts';
import { SEEDS_PER_RUN } from '../../sim/record.ts';

/** One sentence per reward mode, for --help, the summary and the README. */
export const REWARD_ABOUT: Record<RewardMode, string> = {
  sparse: "the simulator's success reward only (1 on the step that succeeds): no model, nothing rendered; the baseline",
  progress: "naive dense reward r + Phi(s') with the reward model's progress: pays for being near the goal at every step, so hovering short of success can out-earn finishing (the semantic trap)",
  pbrs: "r + gamma*Phi(s') - Phi(s) with the reward model's learned progress as the potential: dense, and policy invariant (the optimal policy stays the sparse task's)",
  'pbrs-true': "the same shaping with the simulator's own true progress as the potential: no model, nothing rendered; the upper bound for a learned potential",
};

/** Scale of the potential term: see sim/rl/README.md, Results. */
export const DEFAULT_RL_SCALE = 0.25;
export const DEFAULT_RL_ROLLOUTS = 300;
export const DEFAULT_EVAL_EPISODES = 50;
export const DEFAULT_EVAL_EVERY = 3;

interface RlFlags {
  task: TaskId;
  reward: string;
  rollouts: number;
  seed: number;
  out: string;
  start: string;
  startSeed: number;
  envs: number;
  transport?: RewardTransport;
  url?: string;
  apiKey?: string;
  model?: string;
  gamma: number;
  scale: number;
  evalEpisodes: number;
  evalEvery: number;
  evalSeed: number;
  maxSteps?: number;
  episodesPerIteration?: number;
  noise?: number;
  temperature?: number;
  horizonDecay?: number;
  ridge?: number;
  progress: boolean;
}

interface RlPlan {
  reward: RewardMode;
  transport: RewardTransport;
  episodesPerIteration: number;
  noiseStd: number;
  temperature: number;
  horizonDecay: number;
  ridge: number;
  /** Rollouts the learner will run: whole iterations of episodesPerIteration within the budget. */
  usable: number;
  iterations: number;
  evalSeeds: number[];
}

/** Check the flags against each other before anything is loaded; stable codes for what commander cannot see. */
function plan(f: RlFlags): RlPlan {
  if (!REWARD_MODES.includes(f.reward as RewardMode)) {
    throw new StagewardError('SW_ERR_BAD_OPTION', `unknown reward mode --reward ${JSON.stringify(f.reward)} (use one of ${REWARD_MODES.join(', ')})`);
  }
  if (f.url !== undefined && f.transport === 'inprocess') throw new StagewardError('SW_ERR_BAD_OPTION', '--url names a reward server; it needs --transport ws (or leave --transport out)');
  const perIteration = f.episodesPerIteration ?? RL_DEFAULTS.episodesPerIteration;
  if (f.rollouts < perIteration) {
    throw new StagewardError('SW_ERR_POLICY', `--rollouts ${f.rollouts} is less than one iteration (--episodes-per-iteration ${perIteration})`);
  }
  const iterations = Math.floor(f.rollouts / perIteration);
  const base = f.evalSeed * SEEDS_PER_RUN;
  return {
    reward: f.reward as RewardMode,
    transport: f.transport ?? (f.url !== undefined ? 'ws' : 'inprocess'),
    episodesPerIteration: perIteration,
    noiseStd: f.noise ?? RL_DEFAULTS.noiseStd,
    temperature: f.temperature ?? RL_DEFAULTS.temperature,
    horizonDecay: f.horizonDecay ?? RL_DEFAULTS.horizonDecay,
    ridge: f.ridge ?? RL_DEFAULTS.ridge,
    usable: iterations * perIteration,
    iterations,
    evalSeeds: Array.from({ length: f.evalEpisodes }, (_, i) => base + i),
  };
}

export function rlCommand(): Command {
  return new Command('rl')
    .description(
      'online RL in the simulator: reward-weighted exploration regression (PoWER family, sim/rl/power.ts) trains the gated-linear state policy from a weak ' +
        'start on one reward mode, evaluates the deterministic policy on held-out seeds as it goes, and writes the learning ' +
        'curve (curve.csv, curve.png), summary.json and the final policy.json to --out',
    )
    .requiredOption('--reward <mode>', `the learner's reward: ${REWARD_MODES.join(', ')} (see below)`)
    .requiredOption('--out <dir>', 'output folder (created; each file written atomically; curve.csv/png are updated as the run goes)')
    .option('--task <id>', `simulator task: ${TASK_IDS.join(', ')}`, choiceOption(TASK_IDS), 'pick_place')
    .option('--rollouts <n>', 'rollout budget: training episodes in all (whole iterations of --episodes-per-iteration episodes are run)', intOption(1, 10_000_000), DEFAULT_RL_ROLLOUTS)
    .option('--seed <n>', 'seed of the exploration noise and of the training episodes', intOption(0, 1_000_000), 0)
    .option('--start <weak|file>', `start policy: weak (behaviour cloning of ${WEAK_START_DEMOS.map(([p, n]) => `${n} ${p}`).join(' + ')} scripted demos, about 5% success on pick_place) or a policy file (stageward sim train-bc writes one)`, 'weak')
    .option('--start-seed <n>', 'demo seed of the weak start (the same for every run that should share the start)', intOption(0, 1_000_000), 0)
    .option('--envs <n>', 'parallel simulator environments (their frames go to the reward model as one batch)', intOption(1, MAX_ENVS), 8)
    .option('--transport <t>', `where model rewards come from: ${REWARD_TRANSPORTS.join(', ')} (ws without --url starts a reward server here); ignored by sparse and pbrs-true`, choiceOption(REWARD_TRANSPORTS))
    .option('--url <ws-url>', 'a running reward server (ws://host:port); implies --transport ws')
    .option('--api-key <key>', 'API key for --url')
    .option('--model <dir>', 'reward model package for progress and pbrs (default models/zoo/<task>)')
    .option('--gamma <g>', "the learner's discount (PBRS uses the same gamma)", numberOption(0, 1), DEFAULT_GAMMA)
    .option('--scale <lambda>', 'scale of the potential term (progress, pbrs, pbrs-true): r + lambda * (gamma Phi(s\') - Phi(s)); PBRS stays policy invariant at any lambda. 0.25 keeps the learned potential\'s errors from drowning the success reward (see sim/rl/README.md, Results)', numberOption(0, 100), DEFAULT_RL_SCALE)
    .option('--eval-episodes <n>', 'held-out evaluation episodes per evaluation', intOption(1, SEEDS_PER_RUN - 1), DEFAULT_EVAL_EPISODES)
    .option('--eval-every <iterations>', 'evaluate every this many iterations (and at the start and the end)', intOption(1, 1_000_000), DEFAULT_EVAL_EVERY)
    .option('--eval-seed <n>', `evaluation run seed: episode i uses simulator seed seed*${SEEDS_PER_RUN} + i, as sim eval-policy does`, intOption(0, 40_000), DEFAULT_EVAL_SEED)
    .option('--max-steps <n>', "episode length limit in control steps, training and evaluation (default: the task's)", intOption(1, 100_000))
    .option('--episodes-per-iteration <n>', `episodes per policy update (default ${RL_DEFAULTS.episodesPerIteration})`, intOption(2, 10_000))
    .option('--noise <std>', `Gaussian exploration on each action component, action units (default ${RL_DEFAULTS.noiseStd})`, numberOption(1e-6, 10))
    .option('--temperature <t>', `temperature of the exponentiated step weights, in units of the returns' std (default ${RL_DEFAULTS.temperature})`, numberOption(1e-3, 100))
    .option('--horizon-decay <d>', `extra decay of the per-step return beyond gamma (default ${RL_DEFAULTS.horizonDecay}: about 1 s at 10 Hz)`, numberOption(0, 1))
    .option('--ridge <r>', `ridge of the weighted regression, relative to the total weight (default ${RL_DEFAULTS.ridge})`, numberOption(1e-9, 100))
    .option('--no-progress', 'no progress bar')
    .addHelpText('after', [
      '',
      'Reward modes (r is the simulator\'s sparse reward, Phi a potential in [0, 1]):',
      ...REWARD_MODES.map((m) => `  ${m.padEnd(10)} ${REWARD_ABOUT[m]}`),
      '',
      'progress and pbrs render the three camera views and query the reward model every step (about 150-300 env steps/s',
      'with 8 envs); sparse and pbrs-true render nothing (about 1000 env steps/s).',
      '',
      'Evaluation runs the deterministic current policy (no exploration noise) from state on --eval-episodes fixed held-out',
      'seeds, with a Wilson 95% interval; it is not counted in --rollouts. "hover share": episodes that end by the time',
      `limit, unfinished, with true progress >= ${HOVER_PROGRESS} (carried to the goal but never finished): the trap's signature.`,
      '',
      'Examples:',
      '  stageward rl --task pick_place --reward pbrs --rollouts 300 --seed 1 --out runs/rl-pbrs-1',
      '  stageward rl --task pick_place --reward pbrs-true --rollouts 96 --seed 2 --eval-every 1 --out runs/rl-true-2',
      '  stageward rl --reward pbrs --transport ws --rollouts 96 --seed 1 --out runs/rl-ws',
      '',
      'The last stdout line is one JSON object: {reward, rollouts, seed, start_success, final_success, final_ci95, hover_share, wall_s, ...}.',
    ].join('\n'))
    .action(async (f: RlFlags) => runRl(f));
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const r1 = (x: number) => Math.round(x * 10) / 10;

async function loadStart(f: RlFlags): Promise<{ policy: GatedLinearPolicy; about: string }> {
  if (f.start === 'weak') {
    const demos = WEAK_START_DEMOS.map(([p, n]) => `${n} ${p}`).join(' + ');
    return { policy: await weakStartPolicy(f.task, f.startSeed), about: `weak (BC of ${demos} scripted demos, start seed ${f.startSeed})` };
  }
  const path = resolve(f.start);
  const { policy } = await GatedLinearPolicy.load(path);
  if (policy.task.id !== f.task) throw new StagewardError('SW_ERR_POLICY', `${path} is a ${policy.task.id} policy; this run's --task is ${f.task}`);
  return { policy, about: path };
}

async function runRl(f: RlFlags): Promise<void> {
  const t0 = performance.now();
  const p = plan(f);
  const out = resolve(f.out);
  await mkdir(out, { recursive: true });
  const start = await loadStart(f);
  const bridge = await SimBridge.create({
    task: f.task, reward: p.reward, gamma: f.gamma, scale: f.scale, envs: f.envs, transport: p.transport,
    ...(f.url !== undefined ? { url: f.url } : {}), ...(f.apiKey !== undefined ? { apiKey: f.apiKey } : {}),
    ...(f.model !== undefined ? { model: f.model } : {}), ...(f.maxSteps !== undefined ? { maxSteps: f.maxSteps } : {}),
  });
  const o = bridge.options;
  const source = o.needsModel ? `${o.transport === 'ws' ? `over WebSocket${o.url ? ` from ${o.url}` : ' (server started here)'}` : 'in process'}, model ${o.model}` : 'no model, nothing rendered';
  console.log(`stageward rl: ${f.task}, reward ${p.reward} (${source}), ${p.usable} of ${f.rollouts} rollouts = ${p.iterations} iterations of ${p.episodesPerIteration} episodes (noise ${p.noiseStd}, temperature ${p.temperature}, horizon decay ${p.horizonDecay}), seed ${f.seed}, gamma ${f.gamma}, ${bridge.maxSteps} steps max -> ${out}`);
  console.log(`  start: ${start.about}; evaluation: ${f.evalEpisodes} held-out episodes (seeds ${p.evalSeeds[0]}..${p.evalSeeds.at(-1)}) every ${f.evalEvery} iteration(s)`);

  const rows: CurveRow[] = [];
  const title = `${f.task}: PoWER-style RL with reward ${p.reward}, seed ${f.seed}`;
  const bar = f.progress
    ? new SingleBar({ format: `rl ${p.reward} {bar} {value}/{total} rollouts | it {iteration} | train {train} | eval {evalText} | ETA {eta_formatted}` }, Presets.shades_classic)
    : undefined;
  let evalS = 0;
  let writeS = 0;

  const evaluate = async (policy: GatedLinearPolicy): Promise<EvalPoint> => {
    const te = performance.now();
    const r = await evaluatePolicy(policy, {
      task: f.task, seeds: p.evalSeeds, maxSteps: bridge.maxSteps,
      onEpisode: (done) => bar?.update({ evalText: `running ${done}/${f.evalEpisodes}` }),
    });
    evalS += (performance.now() - te) / 1000;
    const n = r.outcomes.length;
    const mean = (g: (x: (typeof r.outcomes)[number]) => number) => (n ? r.outcomes.reduce((a, x) => a + g(x), 0) / n : 0);
    return {
      episodes: r.episodes, successes: r.successes, successRate: r.successRate, ci95: r.ci95, meanLength: r.meanSteps,
      hoverShare: mean((x) => (!x.success && x.steps >= bridge.maxSteps && x.finalProgress >= HOVER_PROGRESS ? 1 : 0)),
      meanFinalTrueProgress: mean((x) => x.finalProgress),
    };
  };
  const save = async () => {
    const tw = performance.now();
    const last = [...rows].reverse().find((r) => r.eval)?.eval;
    const subtitle = `start ${pct(rows[0]!.eval!.successRate)}${last && rows.length > 1 ? `, latest eval ${pct(last.successRate)} (95% ${pct(last.ci95[0])}-${pct(last.ci95[1])})` : ''}; ${rows.at(-1)!.rollouts} of ${p.usable} rollouts; ${f.evalEpisodes} eval episodes per point`;
    await writeCurveFiles(out, rows, { title, subtitle, rolloutsMax: p.usable });
    writeS += (performance.now() - tw) / 1000;
  };

  let trainS = 0;
  let envSteps = 0;
  let lastIt: RlIteration | undefined;
  let final: GatedLinearPolicy;
  try {
    const startEval = await evaluate(start.policy);
    rows.push({ rollouts: 0, iteration: 0, train: null, eval: startEval, wallS: r1((performance.now() - t0) / 1000) });
    await save();
    console.log(`  start policy: eval success ${startEval.successes}/${startEval.episodes} = ${pct(startEval.successRate)} (95% ${pct(startEval.ci95[0])}-${pct(startEval.ci95[1])})`);
    bar?.start(p.usable, 0, { iteration: 0, train: '-', evalText: pct(startEval.successRate) });
    const ta = performance.now();
    const [e0, w0] = [evalS, writeS];
    let lastRollouts = 0;
    final = await trainRl(bridge, start.policy, { rollouts: f.rollouts, seed: f.seed, episodesPerIteration: p.episodesPerIteration, noiseStd: p.noiseStd, temperature: p.temperature, horizonDecay: p.horizonDecay, ridge: p.ridge, gamma: f.gamma }, async (it) => {
      envSteps += it.meanLength * (it.rollouts - lastRollouts);
      lastRollouts = it.rollouts;
      lastIt = it;
      const isLast = it.rollouts + p.episodesPerIteration > f.rollouts;
      const train = { successRate: it.successRate, meanReturn: it.meanReturn, meanEnvReturn: it.meanEnvReturn, meanLength: it.meanLength, meanFinalTrueProgress: it.meanFinalTrueProgress, hoverShare: it.hoverShare };
      bar?.update(it.rollouts, { iteration: it.iteration, train: pct(it.successRate) });
      const ev = isLast || it.iteration % f.evalEvery === 0 ? await evaluate(it.policy) : null;
      if (ev) bar?.update({ evalText: pct(ev.successRate) });
      rows.push({ rollouts: it.rollouts, iteration: it.iteration, train, eval: ev, wallS: r1((performance.now() - t0) / 1000) });
      await save();
    });
    trainS = (performance.now() - ta) / 1000 - (evalS - e0) - (writeS - w0);
    // The last iteration is always evaluated; should the learner stop earlier than planned, evaluate what it returned.
    const lastRow = rows.at(-1)!;
    if (lastRow.eval === null) {
      lastRow.eval = await evaluate(final);
      await save();
    }
  } finally {
    bar?.stop();
    await bridge.close();
  }

  const evals = rows.filter((r) => r.eval !== null);
  const startEval = rows[0]!.eval!;
  const finalEval = evals.at(-1)!.eval!;
  const best = evals.reduce((a, r) => (r.eval!.successRate > a.eval!.successRate ? r : a));
  const wallS = (performance.now() - t0) / 1000;
  const options = {
    task: f.task, reward: p.reward, rollouts_budget: f.rollouts, scale: f.scale, seed: f.seed, start: f.start, start_seed: f.start === 'weak' ? f.startSeed : null,
    envs: f.envs, transport: o.needsModel ? o.transport : null, url: o.needsModel ? (o.url ?? null) : null, model: o.needsModel ? o.model : null,
    gamma: f.gamma, max_steps: bridge.maxSteps, eval_episodes: f.evalEpisodes, eval_every: f.evalEvery, eval_seed: f.evalSeed,
    eval_seeds: [p.evalSeeds[0], p.evalSeeds.at(-1)], episodes_per_iteration: p.episodesPerIteration, noise_std: p.noiseStd, temperature: p.temperature, horizon_decay: p.horizonDecay, ridge: p.ridge,
  };
  const summary = {
    format: 'stageward-rl/1',
    task: f.task,
    reward: p.reward,
    reward_about: REWARD_ABOUT[p.reward],
    algorithm: 'reward-weighted exploration regression (PoWER, Kober & Peters 2009; PI2-style exponentiated returns) over the gated-linear state policy',
    options,
    start: start.about,
    rollouts: rows.at(-1)!.rollouts,
    iterations: lastIt?.iteration ?? 0,
    start_success: startEval.successRate,
    start_ci95: startEval.ci95,
    final_success: finalEval.successRate,
    final_ci95: finalEval.ci95,
    final_successes: finalEval.successes,
    eval_episodes: finalEval.episodes,
    best_success: best.eval!.successRate,
    best_rollouts: best.rollouts,
    // the trap measures of the final policy on the evaluation seeds, and of the last training iteration
    hover_share: finalEval.hoverShare,
    mean_length: finalEval.meanLength,
    mean_final_true_progress: finalEval.meanFinalTrueProgress,
    train_last: lastIt ? { success_rate: lastIt.successRate, hover_share: lastIt.hoverShare, mean_length: lastIt.meanLength, mean_return: lastIt.meanReturn, mean_final_true_progress: lastIt.meanFinalTrueProgress } : null,
    eval_curve: evals.map((r) => ({ rollouts: r.rollouts, success: r.eval!.successRate, ci95: r.eval!.ci95, hover_share: r.eval!.hoverShare, mean_length: r.eval!.meanLength })),
    env_steps: Math.round(envSteps),
    env_steps_per_s: trainS > 0 ? r1(envSteps / trainS) : null,
    train_s: r1(trainS),
    eval_s: r1(evalS),
    wall_s: r1(wallS),
    created_at: new Date().toISOString(),
  };
  await final.save(join(out, 'policy.json'), {
    trainer: 'stageward rl', algorithm: summary.algorithm, ...options, rollouts: summary.rollouts, start_success: summary.start_success,
    final_success: summary.final_success, final_ci95: summary.final_ci95, created_at: summary.created_at,
  });
  await writeFileAtomic(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);

  console.log('');
  console.log('  rollouts | eval success (95% interval)   | hover | length | train success | train return');
  for (const r of rows) {
    const e = r.eval ? `${pct(r.eval.successRate).padStart(6)} (${pct(r.eval.ci95[0])}-${pct(r.eval.ci95[1])})`.padEnd(29) : ''.padEnd(29);
    const h = r.eval ? r.eval.hoverShare.toFixed(2) : '';
    const len = r.eval ? r.eval.meanLength.toFixed(1) : '';
    const t = r.train ? `${pct(r.train.successRate).padStart(13)} | ${r.train.meanReturn.toFixed(4).padStart(12)}` : `${''.padStart(13)} |`;
    console.log(`  ${String(r.rollouts).padStart(8)} | ${e} | ${h.padStart(5)} | ${len.padStart(6)} | ${t}`);
  }
  console.log('');
  console.log(`  final: eval success ${finalEval.successes}/${finalEval.episodes} = ${pct(finalEval.successRate)} (95% ${pct(finalEval.ci95[0])}-${pct(finalEval.ci95[1])}), start ${pct(startEval.successRate)}, best ${pct(best.eval!.successRate)} at ${best.rollouts} rollouts`);
  console.log(`  trap measures (final policy, eval seeds): hover share ${finalEval.hoverShare.toFixed(2)}, mean length ${finalEval.meanLength.toFixed(1)} steps, mean final true progress ${finalEval.meanFinalTrueProgress.toFixed(3)}`);
  console.log(`  time: ${r1(wallS)} s wall, training ${r1(trainS)} s (${Math.round(envSteps)} env steps, ${summary.env_steps_per_s ?? '-'} env steps/s), evaluation ${r1(evalS)} s`);
  console.log(`  wrote ${join(out, 'curve.csv')}, curve.png, summary.json, policy.json`);
  console.log(JSON.stringify({
    reward: p.reward, rollouts: summary.rollouts, seed: f.seed, start_success: startEval.successRate, final_success: finalEval.successRate,
    final_ci95: finalEval.ci95.map(r3), hover_share: finalEval.hoverShare, wall_s: summary.wall_s,
    mean_length: r1(finalEval.meanLength), best_success: best.eval!.successRate, env_steps_per_s: summary.env_steps_per_s, out,
  }));
}
