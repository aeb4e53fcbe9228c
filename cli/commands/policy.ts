// `stageward sim train-bc` and `stageward sim eval-policy`: weighted behaviour cloning of the
// gated-linear state policy (learn/policy/README.md) from a LeRobot v3.0 dataset
// (learn/policy/train.ts), and its success rate in the simulator over held-out seeds
// (learn/policy/evaluate-file.ts). cli/main.ts registers both under the `sim` group.
//
//   stageward sim train-bc --dataset pp-demo --uniform --out runs/bc.json
//   stageward sim train-bc --dataset pp-demo --weights pp-demo/rabc_weights.parquet --out runs/rabc.json
//   stageward sim train-bc --dataset pp-demo --weights pp-demo/rabc_weights.parquet --episodes 0-39 --ridge 1e-3 --out runs/rabc40.json
//   stageward sim eval-policy --policy runs/rabc.json --episodes 100 --seed 22
//   stageward sim eval-policy --policy runs/bc.json --episodes 200 --seed 22 --max-steps 200 --json runs/bc-eval.json

import { Presets, SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { StagewardError } from '../../core/errors.ts';
import { DEFAULT_RIDGE } from '../../learn/policy/bc.ts';
import { DEFAULT_EVAL_SEED } from '../../learn/policy/evaluate.ts';
import { DEFAULT_POLICY_EVAL_EPISODES, evaluatePolicyFile } from '../../learn/policy/evaluate-file.ts';
import { trainBcFromDataset } from '../../learn/policy/train.ts';
import { TASK_IDS } from '../../sim/tasks/index.ts';
import type { TaskId } from '../../sim/tasks/task.ts';
import { choiceOption, intOption, numberOption } from '../options.ts';
import { episodeListOption } from '../options.ts';
import { SEEDS_PER_RUN } from '../../sim/record.ts';
import { percent } from '../../core/format.ts';

interface TrainFlags {
  dataset: string;
  weights?: string;
  uniform?: boolean;
  episodes?: number[];
  ridge: number;
  task?: TaskId;
  out: string;
  progress: boolean;
}

interface EvalFlags {
  policy: string;
  episodes: number;
  seed: number;
  maxSteps?: number;
  json?: string;
  progress: boolean;
}

export function trainBcCommand(): Command {
  return new Command('train-bc')
    .description(
      'behaviour cloning of the gated-linear state policy from a LeRobot dataset: weighted ridge regression of action on ' +
        'phase-gated features of observation.state, with per-frame weights from an RA-BC weights file (stageward rabc) or ' +
        'uniform; saves the policy as JSON with its provenance',
    )
    .requiredOption('--dataset <dir>', 'LeRobot v3.0 dataset folder with observation.state and action (e.g. from stageward sim record)')
    .requiredOption('--out <file>', 'policy file to write (JSON, written atomically)')
    .option(
      '--weights <file>',
      'per-frame weights: a parquet with episode_index, frame_index, index and weight, as stageward rabc writes <dataset>/rabc_weights.parquet; frames it lacks get weight 1',
    )
    .option('--uniform', 'plain behaviour cloning: every frame weighs 1')
    .option('--episodes <list>', 'episode indices to train on, e.g. 0-39,45 (default all)', episodeListOption)
    .option('--ridge <r>', 'ridge strength, relative to the total weight', numberOption(0, 1e6), DEFAULT_RIDGE)
    .option('--task <id>', `the simulator task (default: from the dataset's episodes): ${TASK_IDS.join(', ')}`, choiceOption(TASK_IDS))
    .option('--no-progress', 'no progress bar')
    .addHelpText(
      'after',
      [
        '',
        'Give exactly one of --weights FILE and --uniform. The fit minimises',
        '  sum_i w_i |a_i - W^T phi(s_i)|^2 + ridge * (sum_i w_i) * |W|^2',
        "in closed form, so an RA-BC weight enters exactly as in LeRobot's weighted loss sum(w * loss) / sum(w):",
        'a frame with weight 0 has no influence at all. The policy reads observation.state only.',
        '',
        'Examples:',
        '  stageward sim train-bc --dataset pp-demo --uniform --out runs/bc.json',
        '  stageward rabc --dataset pp-demo --chunk 10',
        '  stageward sim train-bc --dataset pp-demo --weights pp-demo/rabc_weights.parquet --out runs/rabc.json',
        '',
        'The last stdout line is a JSON summary (samples, used, weight_sum, mean_weight, residual_rms, out).',
      ].join('\n'),
    )
    .action(async (f: TrainFlags) => trainBc(f));
}

export function evalPolicyCommand(): Command {
  return new Command('eval-policy')
    .description('success rate of a saved policy over seeded simulator episodes, with a Wilson 95% interval and where the failures stop')
    .requiredOption('--policy <file>', 'policy file (stageward sim train-bc writes one)')
    .option('--episodes <n>', 'number of episodes', intOption(1, SEEDS_PER_RUN - 1), DEFAULT_POLICY_EVAL_EPISODES)
    .option(
      '--seed <n>',
      `run seed; episode i uses simulator seed seed*${SEEDS_PER_RUN} + i, as sim record does, so a --seed that no recording used is held out`,
      intOption(0, 40_000),
      DEFAULT_EVAL_SEED,
    )
    .option('--max-steps <n>', "episode length limit in control steps (default: the task's)", intOption(1, 100_000))
    .option('--json <file>', 'also write the full result (per-episode outcomes included) to this JSON file')
    .option('--no-progress', 'no progress bar')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  stageward sim eval-policy --policy runs/rabc.json --episodes 100 --seed 22',
        '  stageward sim eval-policy --policy runs/bc.json --episodes 200 --seed 22 --json runs/bc-eval.json',
        '',
        'No frames are rendered (the policy reads observation.state), so 100 episodes take seconds.',
        'The last stdout line is one JSON object: {success_rate, ci95_low, ci95_high, episodes, ...}.',
      ].join('\n'),
    )
    .action(async (f: EvalFlags) => evalPolicy(f));
}

async function trainBc(f: TrainFlags): Promise<void> {
  if ((f.weights === undefined) === (f.uniform !== true)) {
    throw new StagewardError(
      'SW_ERR_POLICY',
      'give exactly one of --weights FILE (RA-BC weights, e.g. <dataset>/rabc_weights.parquet) and --uniform (plain behaviour cloning)',
    );
  }
  const bar = f.progress ? new SingleBar({ format: 'reading {bar} {value}/{total} episodes' }, Presets.shades_classic) : undefined;
  const { data, weightsPath, weighted, fit, fitMs, out } = await trainBcFromDataset(
    {
      dataset: f.dataset,
      weights: f.weights ?? null,
      ridge: f.ridge,
      out: f.out,
      ...(f.episodes ? { episodes: f.episodes } : {}),
      ...(f.task ? { task: f.task } : {}),
    },
    { onReadStart: (n) => bar?.start(n, 0), onEpisodeRead: (done) => bar?.update(done), onReadEnd: () => bar?.stop() },
  );
  console.log(
    `stageward sim train-bc: ${data.task} from ${data.root} (${data.episodes.length} episodes, ${fit.samples} frames), ${weightsPath === null ? 'uniform weights' : `weights ${weightsPath}`}, ridge ${f.ridge}`,
  );
  if (weightsPath !== null) {
    console.log(
      `  weights: mean ${weighted.meanWeight.toFixed(3)} | below 1: ${percent(weighted.shareBelowOne)} | zero: ${percent(weighted.shareZero)} | frames without a weight (1): ${weighted.missing}`,
    );
    if (weighted.weighted === 0)
      console.warn('stageward sim train-bc: the weights file covers none of the selected frames; this is plain behaviour cloning');
  }
  console.log(
    `  fit: ${fit.used} samples with weight > 0, weight sum ${fit.weightSum.toFixed(1)}, residual rms ${fit.residualRms.toFixed(4)} (${fitMs.toFixed(0)} ms)`,
  );
  console.log(`  wrote ${out}`);
  console.log(
    JSON.stringify({
      samples: fit.samples,
      used: fit.used,
      weight_sum: fit.weightSum,
      mean_weight: weighted.meanWeight,
      residual_rms: fit.residualRms,
      out,
    }),
  );
}

async function evalPolicy(f: EvalFlags): Promise<void> {
  const bar = f.progress
    ? new SingleBar({ format: 'evaluating {bar} {value}/{total} episodes | {ok} succeeded | ETA {eta_formatted}' }, Presets.shades_classic)
    : undefined;
  let ok = 0;
  const run = await evaluatePolicyFile(
    {
      policy: f.policy,
      episodes: f.episodes,
      seed: f.seed,
      ...(f.maxSteps !== undefined ? { maxSteps: f.maxSteps } : {}),
      ...(f.json !== undefined ? { json: f.json } : {}),
    },
    {
      onLoaded: ({ path, policy, seeds: [first, last], overlap }) => {
        if (overlap)
          console.warn(
            `stageward sim eval-policy: seeds ${first}..${last} overlap the training data's seeds ${overlap[0]}..${overlap[1]}; this is not a held-out evaluation (pick another --seed)`,
          );
        console.log(
          `stageward sim eval-policy: ${path} (${policy.task.id}) on ${f.episodes} episodes, seeds ${first}..${last}${f.maxSteps ? `, at most ${f.maxSteps} steps` : ''}`,
        );
        bar?.start(f.episodes, 0, { ok });
      },
      onEpisode: (done, o) => bar?.update(done, { ok: (ok += o.success ? 1 : 0) }),
      onEvaluationEnd: () => bar?.stop(),
    },
  );
  const { result, failures, failedMeanMaxProgress, summary } = run;
  const [lo, hi] = result.ci95;
  console.log(
    `  success ${result.successes}/${result.episodes} = ${percent(result.successRate)} (95% Wilson interval ${percent(lo)}-${percent(hi)}), mean ${result.meanSteps.toFixed(1)} steps`,
  );
  if (failedMeanMaxProgress !== null) {
    console.log(
      `  failures by final stage: ${Object.entries(failures)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ')}`,
    );
    console.log(`  failed episodes reached a true progress of ${failedMeanMaxProgress.toFixed(3)} on average`);
  }
  if (run.json !== null) console.log(`  wrote ${run.json}`);
  console.log(JSON.stringify(summary));
}
