// One online RL run in the simulator bridge (what `stageward rl` runs): the reward-weighted exploration
// regression of power.ts (PoWER family) trains the gated-linear state policy from a start policy on one
// reward mode; the deterministic current policy is evaluated on fixed held-out seeds at the start and
// every few iterations (not counted in the rollout budget). Writes the learning curve (curve.csv,
// curve.png, updated as the run goes), report.html (html-report.ts: the curve as interactive charts and
// the per-iteration table in one self-contained page, updated with curve.png and completed at the end),
// summary.json (format `stageward-rl/1`) and the final policy.json to `out`.
//
//   const run = await runRl({ task: 'pick_place', reward: 'pbrs', rollouts: 300, seed: 1, out: 'runs/rl-pbrs-1' });
//   run.summary.final_success
//
// Options are checked against each other (planRl) before anything is created or loaded. Hooks report
// the run's progress (a progress bar, log lines); they never change it.

import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { StagewardError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../core/files.ts';
import {
  DEFAULT_GAMMA,
  REWARD_MODES,
  SimBridge,
  type ResolvedBridgeOptions,
  type RewardMode,
  type RewardTransport,
} from '../../sim/bridge/index.ts';
import { runSeeds } from '../../sim/record.ts';
import type { TaskId } from '../../sim/tasks/task.ts';
import { DEFAULT_EVAL_SEED, evaluatePolicy } from '../policy/evaluate.ts';
import { GatedLinearPolicy } from '../policy/linear-policy.ts';
import { writeCurveFiles, type CurveRow, type EvalPoint } from './curve.ts';
import { writeRlReport } from './html-report.ts';
import { HOVER_PROGRESS, RL_DEFAULTS, trainRl, type RlIteration } from './power.ts';
import { WEAK_START_DEMOS, weakStartPolicy } from './start.ts';
import { percent, round1 } from '../../core/format.ts';

/** One sentence per reward mode, for --help, the summary and the README. */
export const REWARD_ABOUT: Record<RewardMode, string> = {
  sparse: "the simulator's success reward only (1 on the step that succeeds): no model, nothing rendered; the baseline",
  progress:
    "naive dense reward r + Phi(s') with the reward model's progress: pays for being near the goal at every step, so hovering short of success can out-earn finishing (the semantic trap)",
  pbrs: "r + gamma*Phi(s') - Phi(s) with the reward model's learned progress as the potential: dense, and policy invariant (the optimal policy stays the sparse task's)",
  'pbrs-true':
    "the same shaping with the simulator's own true progress as the potential: no model, nothing rendered; the upper bound for a learned potential",
};

/** Scale of the potential term: see learn/rl/README.md, Results. */
export const DEFAULT_RL_SCALE = 1;
export const DEFAULT_RL_ROLLOUTS = 150;
export const DEFAULT_EVAL_EPISODES = 50;
export const DEFAULT_EVAL_EVERY = 3;
export const DEFAULT_RL_TASK: TaskId = 'pick_place';
/** Parallel simulator environments (their frames go to the reward model as one batch). */
export const DEFAULT_RL_ENVS = 8;
/** The start policy: `weak` (weakStartPolicy) or a policy file. */
export const DEFAULT_RL_START = 'weak';

/** The summary's format tag. */
export const RL_SUMMARY_FORMAT = 'stageward-rl/1';
export const RL_ALGORITHM =
  'reward-weighted exploration regression (PoWER, Kober & Peters 2009; PI2-style exponentiated returns) over the gated-linear state policy';

export interface RlRunOptions {
  /** The learner's reward: one of REWARD_MODES (checked by planRl). */
  reward: string;
  /** Output folder (created). */
  out: string;
  /** Default DEFAULT_RL_TASK. */
  task?: TaskId;
  /** The rollout budget: training episodes in all; whole iterations are run. Default DEFAULT_RL_ROLLOUTS. */
  rollouts?: number;
  /** Seed of the exploration noise and of the training episodes; default 0. */
  seed?: number;
  /** 'weak' or a policy file; default DEFAULT_RL_START. */
  start?: string;
  /** Demo seed of the weak start; default 0. */
  startSeed?: number;
  /** Default DEFAULT_RL_ENVS. */
  envs?: number;
  /** Where model rewards come from; default ws with `url`, else inprocess. */
  transport?: RewardTransport;
  /** A running reward server (ws://host:port); implies transport ws. */
  url?: string;
  apiKey?: string;
  /** Reward model package; default models/zoo/<task> (the bridge's). */
  model?: string;
  /** Default DEFAULT_GAMMA. */
  gamma?: number;
  /** Scale of the potential term; default DEFAULT_RL_SCALE. */
  scale?: number;
  /** Held-out evaluation episodes per evaluation; default DEFAULT_EVAL_EPISODES. */
  evalEpisodes?: number;
  /** Evaluate every this many iterations (and at the start and the end); default DEFAULT_EVAL_EVERY. */
  evalEvery?: number;
  /** Evaluation run seed: episode i uses simulator seed evalSeed * SEEDS_PER_RUN + i; default DEFAULT_EVAL_SEED. */
  evalSeed?: number;
  /** Episode length limit, training and evaluation; default the task's. */
  maxSteps?: number;
  /**
   * Training episodes do not end on success but run to the time limit (a time-limit-only task), so that
   * staying near the goal is a real attractor for a reward that pays for being there. Default false.
   * Evaluation is the same either way: success is reaching the goal at some step.
   */
  timeLimitOnly?: boolean;
  /** The learner's settings; defaults RL_DEFAULTS. */
  episodesPerIteration?: number;
  noise?: number;
  noiseCorrelation?: number;
  temperature?: number;
  horizonDecay?: number;
  ridge?: number;
}

/** The options with every default filled in (all but where model rewards come from and the episode limit). */
type Optional = 'transport' | 'url' | 'apiKey' | 'model' | 'maxSteps';
export type ResolvedRlRunOptions = Required<Omit<RlRunOptions, Optional>> & Pick<RlRunOptions, Optional>;

export interface RlPlan {
  reward: RewardMode;
  transport: RewardTransport;
  episodesPerIteration: number;
  noiseStd: number;
  noiseCorrelation: number;
  temperature: number;
  horizonDecay: number;
  ridge: number;
  /** Rollouts the learner will run: whole iterations of episodesPerIteration within the budget. */
  usable: number;
  iterations: number;
  evalSeeds: number[];
}

export function resolveRlRunOptions(o: RlRunOptions): ResolvedRlRunOptions {
  return {
    ...o,
    task: o.task ?? DEFAULT_RL_TASK,
    rollouts: o.rollouts ?? DEFAULT_RL_ROLLOUTS,
    seed: o.seed ?? 0,
    start: o.start ?? DEFAULT_RL_START,
    startSeed: o.startSeed ?? 0,
    envs: o.envs ?? DEFAULT_RL_ENVS,
    gamma: o.gamma ?? DEFAULT_GAMMA,
    scale: o.scale ?? DEFAULT_RL_SCALE,
    evalEpisodes: o.evalEpisodes ?? DEFAULT_EVAL_EPISODES,
    evalEvery: o.evalEvery ?? DEFAULT_EVAL_EVERY,
    evalSeed: o.evalSeed ?? DEFAULT_EVAL_SEED,
    timeLimitOnly: o.timeLimitOnly ?? false,
    episodesPerIteration: o.episodesPerIteration ?? RL_DEFAULTS.episodesPerIteration,
    noise: o.noise ?? RL_DEFAULTS.noiseStd,
    noiseCorrelation: o.noiseCorrelation ?? RL_DEFAULTS.noiseCorrelation,
    temperature: o.temperature ?? RL_DEFAULTS.temperature,
    horizonDecay: o.horizonDecay ?? RL_DEFAULTS.horizonDecay,
    ridge: o.ridge ?? RL_DEFAULTS.ridge,
  };
}

/** Check the options against each other before anything is loaded; stable codes for what a flag parser cannot see. */
export function planRl(f: ResolvedRlRunOptions): RlPlan {
  if (!REWARD_MODES.includes(f.reward as RewardMode)) {
    throw new StagewardError(
      'SW_ERR_BAD_OPTION',
      `unknown reward mode --reward ${JSON.stringify(f.reward)} (use one of ${REWARD_MODES.join(', ')})`,
    );
  }
  if (f.url !== undefined && f.transport === 'inprocess')
    throw new StagewardError('SW_ERR_BAD_OPTION', '--url names a reward server; it needs --transport ws (or leave --transport out)');
  const perIteration = f.episodesPerIteration;
  if (f.rollouts < perIteration) {
    throw new StagewardError(
      'SW_ERR_POLICY',
      `--rollouts ${f.rollouts} is less than one iteration (--episodes-per-iteration ${perIteration})`,
    );
  }
  const iterations = Math.floor(f.rollouts / perIteration);
  return {
    reward: f.reward as RewardMode,
    transport: f.transport ?? (f.url !== undefined ? 'ws' : 'inprocess'),
    episodesPerIteration: perIteration,
    noiseStd: f.noise,
    noiseCorrelation: f.noiseCorrelation,
    temperature: f.temperature,
    horizonDecay: f.horizonDecay,
    ridge: f.ridge,
    usable: iterations * perIteration,
    iterations,
    evalSeeds: runSeeds(f.evalSeed, f.evalEpisodes),
  };
}

/** The start policy and a line saying what it is. */
export async function loadStartPolicy(
  f: Pick<ResolvedRlRunOptions, 'start' | 'startSeed' | 'task'>,
): Promise<{ policy: GatedLinearPolicy; about: string }> {
  if (f.start === 'weak') {
    const demos = WEAK_START_DEMOS.map(([p, n]) => `${n} ${p}`).join(' + ');
    return { policy: await weakStartPolicy(f.task, f.startSeed), about: `weak (BC of ${demos} scripted demos, start seed ${f.startSeed})` };
  }
  const path = resolve(f.start);
  const { policy } = await GatedLinearPolicy.load(path);
  if (policy.task.id !== f.task)
    throw new StagewardError('SW_ERR_POLICY', `${path} is a ${policy.task.id} policy; this run's --task is ${f.task}`);
  return { policy, about: path };
}

/** The run's settings as summary.json and the policy's provenance record them. */
export interface RlRunSettings {
  task: TaskId;
  reward: RewardMode;
  rollouts_budget: number;
  scale: number;
  seed: number;
  start: string;
  start_seed: number | null;
  envs: number;
  transport: RewardTransport | null;
  url: string | null;
  model: string | null;
  gamma: number;
  max_steps: number;
  time_limit_only: boolean;
  eval_episodes: number;
  eval_every: number;
  eval_seed: number;
  eval_seeds: [number | undefined, number | undefined];
  episodes_per_iteration: number;
  noise_std: number;
  noise_correlation: number;
  temperature: number;
  horizon_decay: number;
  ridge: number;
}

/** summary.json of a run. */
export interface RlSummary {
  format: typeof RL_SUMMARY_FORMAT;
  task: TaskId;
  reward: RewardMode;
  reward_about: string;
  algorithm: string;
  options: RlRunSettings;
  start: string;
  rollouts: number;
  iterations: number;
  start_success: number;
  start_ci95: [number, number];
  final_success: number;
  final_ci95: [number, number];
  final_successes: number;
  eval_episodes: number;
  best_success: number;
  best_rollouts: number;
  /** The trap measures of the final policy on the evaluation seeds. */
  hover_share: number;
  mean_length: number;
  mean_final_true_progress: number;
  /** The trap measures of the last training iteration. */
  train_last: {
    success_rate: number;
    hover_share: number;
    mean_length: number;
    mean_return: number;
    mean_final_true_progress: number;
  } | null;
  eval_curve: { rollouts: number; success: number; ci95: [number, number]; hover_share: number; mean_length: number }[];
  env_steps: number;
  env_steps_per_s: number | null;
  train_s: number;
  eval_s: number;
  wall_s: number;
  created_at: string;
}

/** What a run is about to do, once it is set up (the bridge created, the start policy loaded). */
export interface RlSetup {
  options: ResolvedRlRunOptions;
  plan: RlPlan;
  /** The output folder, absolute. */
  out: string;
  /** What the start policy is. */
  start: string;
  /** The bridge's resolved options: where model rewards come from, if the mode needs a model. */
  bridge: ResolvedBridgeOptions;
  /** Episode length limit in control steps. */
  maxSteps: number;
}

export interface RlRunHooks {
  /** Set up, before the start policy is evaluated. */
  onSetup?: (setup: RlSetup) => void;
  /** After each episode of an evaluation: episodes done, of how many. */
  onEvalEpisode?: (done: number, of: number) => void;
  /** The start policy's evaluation, before the first iteration. */
  onStartEvaluated?: (start: EvalPoint) => void;
  /** After each learner iteration, before its evaluation (if it has one). */
  onIteration?: (it: RlIteration) => void;
  /** After each evaluation during training. */
  onEvaluated?: (ev: EvalPoint) => void;
  /** Training and evaluation are over (or failed), before the bridge closes. */
  onTrainingEnd?: () => void;
}

export interface RlRunResult {
  /** The output folder, absolute. */
  out: string;
  /** report.html, absolute. */
  html: string;
  /** The learning curve: row 0 is the start policy's evaluation, then one row per iteration. */
  rows: CurveRow[];
  summary: RlSummary;
  startEval: EvalPoint;
  finalEval: EvalPoint;
  /** The evaluated row with the highest success (the first of equals). */
  best: CurveRow & { eval: EvalPoint };
}

export async function runRl(options: RlRunOptions, hooks: RlRunHooks = {}): Promise<RlRunResult> {
  const t0 = performance.now();
  const f = resolveRlRunOptions(options);
  const p = planRl(f);
  const out = resolve(f.out);
  await mkdir(out, { recursive: true });
  const start = await loadStartPolicy(f);
  const bridge = await SimBridge.create({
    task: f.task,
    reward: p.reward,
    gamma: f.gamma,
    scale: f.scale,
    envs: f.envs,
    transport: p.transport,
    ...(f.url !== undefined ? { url: f.url } : {}),
    ...(f.apiKey !== undefined ? { apiKey: f.apiKey } : {}),
    ...(f.model !== undefined ? { model: f.model } : {}),
    ...(f.maxSteps !== undefined ? { maxSteps: f.maxSteps } : {}),
    terminateOnSuccess: !f.timeLimitOnly,
  });
  const o = bridge.options;
  hooks.onSetup?.({ options: f, plan: p, out, start: start.about, bridge: o, maxSteps: bridge.maxSteps });

  const rows: CurveRow[] = [];
  const title = `${f.task}: PoWER-style RL with reward ${p.reward}, seed ${f.seed}`;
  let evalS = 0;
  let writeS = 0;

  const evaluate = async (policy: GatedLinearPolicy): Promise<EvalPoint> => {
    const te = performance.now();
    const r = await evaluatePolicy(policy, {
      task: f.task,
      seeds: p.evalSeeds,
      maxSteps: bridge.maxSteps,
      onEpisode: (done) => hooks.onEvalEpisode?.(done, f.evalEpisodes),
    });
    evalS += (performance.now() - te) / 1000;
    const n = r.outcomes.length;
    const mean = (g: (x: (typeof r.outcomes)[number]) => number) => (n ? r.outcomes.reduce((a, x) => a + g(x), 0) / n : 0);
    return {
      episodes: r.episodes,
      successes: r.successes,
      successRate: r.successRate,
      ci95: r.ci95,
      meanLength: r.meanSteps,
      hoverShare: mean((x) => (!x.success && x.steps >= bridge.maxSteps && x.finalProgress >= HOVER_PROGRESS ? 1 : 0)),
      meanFinalTrueProgress: mean((x) => x.finalProgress),
    };
  };
  const subtitleNow = () => {
    const last = [...rows].reverse().find((r) => r.eval)?.eval;
    return `start ${percent(rows[0]!.eval!.successRate)}${last && rows.length > 1 ? `, latest eval ${percent(last.successRate)} (95% ${percent(last.ci95[0])}-${percent(last.ci95[1])})` : ''}; ${rows.at(-1)!.rollouts} of ${p.usable} rollouts; ${f.evalEpisodes} eval episodes per point`;
  };
  const save = async () => {
    const tw = performance.now();
    const subtitle = subtitleNow();
    await writeCurveFiles(out, rows, { title, subtitle, rolloutsMax: p.usable });
    await writeRlReport(out, rows, { title, subtitle, summary: null });
    writeS += (performance.now() - tw) / 1000;
  };

  let trainS = 0;
  let envSteps = 0;
  let lastIt: RlIteration | undefined;
  let final: GatedLinearPolicy;
  try {
    const startEval = await evaluate(start.policy);
    rows.push({ rollouts: 0, iteration: 0, train: null, eval: startEval, wallS: round1((performance.now() - t0) / 1000) });
    await save();
    hooks.onStartEvaluated?.(startEval);
    const ta = performance.now();
    const [e0, w0] = [evalS, writeS];
    let lastRollouts = 0;
    const learner = {
      rollouts: f.rollouts,
      seed: f.seed,
      episodesPerIteration: p.episodesPerIteration,
      noiseStd: p.noiseStd,
      noiseCorrelation: p.noiseCorrelation,
      temperature: p.temperature,
      horizonDecay: p.horizonDecay,
      ridge: p.ridge,
      gamma: f.gamma,
    };
    final = await trainRl(bridge, start.policy, learner, async (it) => {
      envSteps += it.meanLength * (it.rollouts - lastRollouts);
      lastRollouts = it.rollouts;
      lastIt = it;
      const isLast = it.rollouts + p.episodesPerIteration > f.rollouts;
      const train = {
        successRate: it.successRate,
        meanReturn: it.meanReturn,
        meanEnvReturn: it.meanEnvReturn,
        meanLength: it.meanLength,
        meanFinalTrueProgress: it.meanFinalTrueProgress,
        hoverShare: it.hoverShare,
      };
      hooks.onIteration?.(it);
      const ev = isLast || it.iteration % f.evalEvery === 0 ? await evaluate(it.policy) : null;
      if (ev) hooks.onEvaluated?.(ev);
      rows.push({ rollouts: it.rollouts, iteration: it.iteration, train, eval: ev, wallS: round1((performance.now() - t0) / 1000) });
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
    hooks.onTrainingEnd?.();
    await bridge.close();
  }

  const evals = rows.filter((r): r is CurveRow & { eval: EvalPoint } => r.eval !== null);
  const startEval = rows[0]!.eval!;
  const finalEval = evals.at(-1)!.eval;
  const best = evals.reduce((a, r) => (r.eval.successRate > a.eval.successRate ? r : a));
  const wallS = (performance.now() - t0) / 1000;
  const settings: RlRunSettings = {
    task: f.task,
    reward: p.reward,
    rollouts_budget: f.rollouts,
    scale: f.scale,
    seed: f.seed,
    start: f.start,
    start_seed: f.start === 'weak' ? f.startSeed : null,
    envs: f.envs,
    transport: o.needsModel ? o.transport : null,
    url: o.needsModel ? (o.url ?? null) : null,
    model: o.needsModel ? o.model : null,
    gamma: f.gamma,
    max_steps: bridge.maxSteps,
    time_limit_only: f.timeLimitOnly,
    eval_episodes: f.evalEpisodes,
    eval_every: f.evalEvery,
    eval_seed: f.evalSeed,
    eval_seeds: [p.evalSeeds[0], p.evalSeeds.at(-1)],
    episodes_per_iteration: p.episodesPerIteration,
    noise_std: p.noiseStd,
    noise_correlation: p.noiseCorrelation,
    temperature: p.temperature,
    horizon_decay: p.horizonDecay,
    ridge: p.ridge,
  };
  const summary: RlSummary = {
    format: RL_SUMMARY_FORMAT,
    task: f.task,
    reward: p.reward,
    reward_about: REWARD_ABOUT[p.reward],
    algorithm: RL_ALGORITHM,
    options: settings,
    start: start.about,
    rollouts: rows.at(-1)!.rollouts,
    iterations: lastIt?.iteration ?? 0,
    start_success: startEval.successRate,
    start_ci95: startEval.ci95,
    final_success: finalEval.successRate,
    final_ci95: finalEval.ci95,
    final_successes: finalEval.successes,
    eval_episodes: finalEval.episodes,
    best_success: best.eval.successRate,
    best_rollouts: best.rollouts,
    hover_share: finalEval.hoverShare,
    mean_length: finalEval.meanLength,
    mean_final_true_progress: finalEval.meanFinalTrueProgress,
    train_last: lastIt
      ? {
          success_rate: lastIt.successRate,
          hover_share: lastIt.hoverShare,
          mean_length: lastIt.meanLength,
          mean_return: lastIt.meanReturn,
          mean_final_true_progress: lastIt.meanFinalTrueProgress,
        }
      : null,
    eval_curve: evals.map((r) => ({
      rollouts: r.rollouts,
      success: r.eval.successRate,
      ci95: r.eval.ci95,
      hover_share: r.eval.hoverShare,
      mean_length: r.eval.meanLength,
    })),
    env_steps: Math.round(envSteps),
    env_steps_per_s: trainS > 0 ? round1(envSteps / trainS) : null,
    train_s: round1(trainS),
    eval_s: round1(evalS),
    wall_s: round1(wallS),
    created_at: new Date().toISOString(),
  };
  await final.save(join(out, 'policy.json'), {
    trainer: 'stageward rl',
    algorithm: summary.algorithm,
    ...settings,
    rollouts: summary.rollouts,
    start_success: summary.start_success,
    final_success: summary.final_success,
    final_ci95: summary.final_ci95,
    created_at: summary.created_at,
  });
  await writeFileAtomic(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const html = await writeRlReport(out, rows, { title, subtitle: subtitleNow(), summary });
  return { out, html, rows, summary, startEval, finalEval, best };
}
