// `stageward rl`: online RL in the simulator bridge (learn/rl/README.md). The run itself (plan, start
// policy, train, evaluate, write curve.csv/png, summary.json and policy.json to --out) is runRl in
// learn/rl/run.ts; this verb turns the flags into its options, drives the progress bar and prints the
// run's lines, the table and the last JSON line.
//
//   stageward rl --task pick_place --reward pbrs --rollouts 300 --seed 1 --out runs/rl-pbrs-1
//   stageward rl --task pick_place --reward sparse --rollouts 300 --seed 1 --out runs/rl-sparse-1
//   stageward rl --task pick_place --reward progress --rollouts 300 --seed 1 --out runs/rl-progress-1
//   stageward rl --task pick_place --reward pbrs-true --rollouts 96 --seed 2 --eval-every 1 --out runs/rl-true-2
//   stageward rl --task pick_place --reward pbrs --transport ws --rollouts 96 --seed 1 --out runs/rl-ws
//   stageward rl --task pick_place --reward pbrs --url ws://127.0.0.1:8765 --rollouts 300 --seed 1 --out runs/rl-remote
//   stageward rl --task pick_place --reward pbrs --start runs/bc.json --rollouts 300 --seed 1 --out runs/rl-from-bc

import { join } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { DEFAULT_GAMMA, MAX_ENVS, REWARD_MODES, REWARD_TRANSPORTS } from '../../sim/bridge/index.ts';
import { DEFAULT_EVAL_SEED } from '../../learn/policy/evaluate.ts';
import { HOVER_PROGRESS, RL_DEFAULTS } from '../../learn/rl/power.ts';
import {
  DEFAULT_EVAL_EPISODES,
  DEFAULT_EVAL_EVERY,
  DEFAULT_RL_ENVS,
  DEFAULT_RL_ROLLOUTS,
  DEFAULT_RL_SCALE,
  DEFAULT_RL_START,
  DEFAULT_RL_TASK,
  REWARD_ABOUT,
  runRl,
  type RlRunOptions,
} from '../../learn/rl/run.ts';
import { WEAK_START_DEMOS } from '../../learn/rl/start.ts';
import { TASK_IDS } from '../../sim/tasks/index.ts';
import { choiceOption, intOption, numberOption } from '../options.ts';
import { SEEDS_PER_RUN } from '../../sim/record.ts';
import { percent, round1, round3 } from '../../core/format.ts';

/** What commander hands the action: the run's options (defaults filled in by the flags) and the bar switch. */
interface RlFlags extends RlRunOptions {
  progress: boolean;
}

export function rlCommand(): Command {
  return new Command('rl')
    .description(
      'online RL in the simulator: reward-weighted exploration regression (PoWER family, learn/rl/power.ts) trains the gated-linear state policy from a weak ' +
        'start on one reward mode, evaluates the deterministic policy on held-out seeds as it goes, and writes the learning ' +
        'curve (curve.csv, curve.png), summary.json and the final policy.json to --out',
    )
    .requiredOption('--reward <mode>', `the learner's reward: ${REWARD_MODES.join(', ')} (see below)`)
    .requiredOption('--out <dir>', 'output folder (created; each file written atomically; curve.csv/png are updated as the run goes)')
    .option('--task <id>', `simulator task: ${TASK_IDS.join(', ')}`, choiceOption(TASK_IDS), DEFAULT_RL_TASK)
    .option(
      '--rollouts <n>',
      'rollout budget: training episodes in all (whole iterations of --episodes-per-iteration episodes are run)',
      intOption(1, 10_000_000),
      DEFAULT_RL_ROLLOUTS,
    )
    .option('--seed <n>', 'seed of the exploration noise and of the training episodes', intOption(0, 1_000_000), 0)
    .option(
      '--start <weak|file>',
      `start policy: weak (behaviour cloning of ${WEAK_START_DEMOS.map(([p, n]) => `${n} ${p}`).join(' + ')} scripted demos, about 5% success on pick_place) or a policy file (stageward sim train-bc writes one)`,
      DEFAULT_RL_START,
    )
    .option(
      '--start-seed <n>',
      'demo seed of the weak start (the same for every run that should share the start)',
      intOption(0, 1_000_000),
      0,
    )
    .option(
      '--envs <n>',
      'parallel simulator environments (their frames go to the reward model as one batch)',
      intOption(1, MAX_ENVS),
      DEFAULT_RL_ENVS,
    )
    .option(
      '--transport <t>',
      `where model rewards come from: ${REWARD_TRANSPORTS.join(', ')} (ws without --url starts a reward server here); ignored by sparse and pbrs-true`,
      choiceOption(REWARD_TRANSPORTS),
    )
    .option('--url <ws-url>', 'a running reward server (ws://host:port); implies --transport ws')
    .option('--api-key <key>', 'API key for --url')
    .option('--model <dir>', 'reward model package for progress and pbrs (default models/zoo/<task>)')
    .option('--gamma <g>', "the learner's discount (PBRS uses the same gamma)", numberOption(0, 1), DEFAULT_GAMMA)
    .option(
      '--scale <lambda>',
      "scale of the potential term (progress, pbrs, pbrs-true): r + lambda * (gamma Phi(s') - Phi(s)); PBRS stays policy invariant at any lambda; the experiments run every reward mode at the same scale (learn/rl/README.md)",
      numberOption(0, 100),
      DEFAULT_RL_SCALE,
    )
    .option('--eval-episodes <n>', 'held-out evaluation episodes per evaluation', intOption(1, SEEDS_PER_RUN - 1), DEFAULT_EVAL_EPISODES)
    .option(
      '--eval-every <iterations>',
      'evaluate every this many iterations (and at the start and the end)',
      intOption(1, 1_000_000),
      DEFAULT_EVAL_EVERY,
    )
    .option(
      '--eval-seed <n>',
      `evaluation run seed: episode i uses simulator seed seed*${SEEDS_PER_RUN} + i, as sim eval-policy does`,
      intOption(0, 40_000),
      DEFAULT_EVAL_SEED,
    )
    .option(
      '--max-steps <n>',
      "episode length limit in control steps, training and evaluation (default: the task's)",
      intOption(1, 100_000),
    )
    .option(
      '--time-limit-only',
      'training episodes do not end on success but run to the time limit, so staying near the goal is a real attractor (the semantic-trap variant); evaluation is unchanged',
    )
    .option(
      '--episodes-per-iteration <n>',
      `episodes per policy update (default ${RL_DEFAULTS.episodesPerIteration})`,
      intOption(2, 10_000),
    )
    .option(
      '--noise <std>',
      `Gaussian exploration on each action component, action units (default ${RL_DEFAULTS.noiseStd})`,
      numberOption(1e-6, 10),
    )
    .option(
      '--noise-correlation <rho>',
      `step-to-step correlation of the exploration noise, an AR(1) process with the same std, 0 for white noise (default ${RL_DEFAULTS.noiseCorrelation})`,
      numberOption(0, 0.999),
    )
    .option(
      '--temperature <t>',
      `temperature of the exponentiated step weights, in units of the returns' std (default ${RL_DEFAULTS.temperature})`,
      numberOption(1e-3, 100),
    )
    .option(
      '--horizon-decay <d>',
      `extra decay of the per-step return beyond gamma (default ${RL_DEFAULTS.horizonDecay}: about 1 s at 10 Hz)`,
      numberOption(0, 1),
    )
    .option(
      '--ridge <r>',
      `ridge of the weighted regression, relative to the total weight (default ${RL_DEFAULTS.ridge})`,
      numberOption(1e-9, 100),
    )
    .option('--no-progress', 'no progress bar')
    .addHelpText(
      'after',
      [
        '',
        "Reward modes (r is the simulator's sparse reward, Phi a potential in [0, 1]):",
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
      ].join('\n'),
    )
    .action(async (f: RlFlags) => rl(f));
}

async function rl(f: RlFlags): Promise<void> {
  const { progress, ...options } = f;
  let bar: SingleBar | undefined;
  let usable = 0;
  const run = await runRl(options satisfies RlRunOptions, {
    onSetup: ({ plan: p, out, start, bridge: o, maxSteps }) => {
      const source = o.needsModel
        ? `${o.transport === 'ws' ? `over WebSocket${o.url ? ` from ${o.url}` : ' (server started here)'}` : 'in process'}, model ${o.model}`
        : 'no model, nothing rendered';
      console.log(
        `stageward rl: ${f.task}, reward ${p.reward} (${source}), ${p.usable} of ${f.rollouts} rollouts = ${p.iterations} iterations of ${p.episodesPerIteration} episodes (noise ${p.noiseStd}, correlation ${p.noiseCorrelation}, temperature ${p.temperature}, horizon decay ${p.horizonDecay}), seed ${f.seed}, gamma ${f.gamma}, ${maxSteps} steps max -> ${out}`,
      );
      console.log(
        `  start: ${start}; evaluation: ${f.evalEpisodes} held-out episodes (seeds ${p.evalSeeds[0]}..${p.evalSeeds.at(-1)}) every ${f.evalEvery} iteration(s)`,
      );
      bar = progress
        ? new SingleBar(
            {
              format: `rl ${p.reward} {bar} {value}/{total} rollouts | it {iteration} | train {train} | eval {evalText} | ETA {eta_formatted}`,
            },
            Presets.shades_classic,
          )
        : undefined;
      usable = p.usable;
    },
    onEvalEpisode: (done, of) => bar?.update({ evalText: `running ${done}/${of}` }),
    onStartEvaluated: (startEval) => {
      console.log(
        `  start policy: eval success ${startEval.successes}/${startEval.episodes} = ${percent(startEval.successRate)} (95% ${percent(startEval.ci95[0])}-${percent(startEval.ci95[1])})`,
      );
      bar?.start(usable, 0, { iteration: 0, train: '-', evalText: percent(startEval.successRate) });
    },
    onIteration: (it) => bar?.update(it.rollouts, { iteration: it.iteration, train: percent(it.successRate) }),
    onEvaluated: (ev) => bar?.update({ evalText: percent(ev.successRate) }),
    onTrainingEnd: () => bar?.stop(),
  });
  const { out, rows, summary, startEval, finalEval, best } = run;

  console.log('');
  console.log('  rollouts | eval success (95% interval)   | hover | length | train success | train return');
  for (const r of rows) {
    const e = r.eval
      ? `${percent(r.eval.successRate).padStart(6)} (${percent(r.eval.ci95[0])}-${percent(r.eval.ci95[1])})`.padEnd(29)
      : ''.padEnd(29);
    const h = r.eval ? r.eval.hoverShare.toFixed(2) : '';
    const len = r.eval ? r.eval.meanLength.toFixed(1) : '';
    const t = r.train
      ? `${percent(r.train.successRate).padStart(13)} | ${r.train.meanReturn.toFixed(4).padStart(12)}`
      : `${''.padStart(13)} |`;
    console.log(`  ${String(r.rollouts).padStart(8)} | ${e} | ${h.padStart(5)} | ${len.padStart(6)} | ${t}`);
  }
  console.log('');
  console.log(
    `  final: eval success ${finalEval.successes}/${finalEval.episodes} = ${percent(finalEval.successRate)} (95% ${percent(finalEval.ci95[0])}-${percent(finalEval.ci95[1])}), start ${percent(startEval.successRate)}, best ${percent(best.eval.successRate)} at ${best.rollouts} rollouts`,
  );
  console.log(
    `  trap measures (final policy, eval seeds): hover share ${finalEval.hoverShare.toFixed(2)}, mean length ${finalEval.meanLength.toFixed(1)} steps, mean final true progress ${finalEval.meanFinalTrueProgress.toFixed(3)}`,
  );
  console.log(
    `  time: ${summary.wall_s} s wall, training ${summary.train_s} s (${summary.env_steps} env steps, ${summary.env_steps_per_s ?? '-'} env steps/s), evaluation ${summary.eval_s} s`,
  );
  console.log(`  wrote ${join(out, 'curve.csv')}, curve.png, summary.json, policy.json, ${run.html}`);
  console.log(
    JSON.stringify({
      reward: summary.reward,
      rollouts: summary.rollouts,
      seed: f.seed,
      start_success: startEval.successRate,
      final_success: finalEval.successRate,
      final_ci95: finalEval.ci95.map(round3),
      hover_share: finalEval.hoverShare,
      wall_s: summary.wall_s,
      mean_length: round1(finalEval.meanLength),
      best_success: best.eval.successRate,
      env_steps_per_s: summary.env_steps_per_s,
      out,
    }),
  );
}
