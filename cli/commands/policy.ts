// `stageward sim train-bc` and `stageward sim eval-policy`: weighted behaviour cloning of the
// gated-linear state policy (sim/policy/README.md) from a LeRobot v3.0 dataset, and its success rate
// in the simulator over held-out seeds. cli/main.ts registers both under the `sim` group.
//
//   stageward sim train-bc --dataset pp-demo --uniform --out runs/bc.json
//   stageward sim train-bc --dataset pp-demo --weights pp-demo/rabc_weights.parquet --out runs/rabc.json
//   stageward sim train-bc --dataset pp-demo --weights pp-demo/rabc_weights.parquet --episodes 0-39 --ridge 1e-3 --out runs/rabc40.json
//   stageward sim eval-policy --policy runs/rabc.json --episodes 100 --seed 22
//   stageward sim eval-policy --policy runs/bc.json --episodes 200 --seed 22 --max-steps 200 --json runs/bc-eval.json

import { resolve } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { StagewardError } from '../../core/errors.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import { writeFileAtomic } from '../../core/files.ts';
import { fitBehaviourCloning } from '../../learn/policy/bc.ts';
import { applyWeights, readBcDataset, readSampleWeights } from '../../learn/policy/dataset-samples.ts';
import { evaluatePolicy, type PolicyEvaluation } from '../../learn/policy/evaluate.ts';
import { GatedLinearPolicy } from '../../learn/policy/linear-policy.ts';
import { TASK_IDS } from '../../sim/tasks/index.ts';
import type { TaskId } from '../../sim/tasks/task.ts';
import { choiceOption, intOption, numberOption } from '../options.ts';
import { episodeListOption } from '../options.ts';
import { SEEDS_PER_RUN } from '../../sim/record.ts';
import { DEFAULT_RIDGE } from '../../learn/policy/bc.ts';
import { DEFAULT_EVAL_SEED, failureBreakdown } from '../../learn/policy/evaluate.ts';

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
    .option('--weights <file>', 'per-frame weights: a parquet with episode_index, frame_index, index and weight, as stageward rabc writes <dataset>/rabc_weights.parquet; frames it lacks get weight 1')
    .option('--uniform', 'plain behaviour cloning: every frame weighs 1')
    .option('--episodes <list>', 'episode indices to train on, e.g. 0-39,45 (default all)', episodeListOption)
    .option('--ridge <r>', 'ridge strength, relative to the total weight', numberOption(0, 1e6), DEFAULT_RIDGE)
    .option('--task <id>', `the simulator task (default: from the dataset's episodes): ${TASK_IDS.join(', ')}`, choiceOption(TASK_IDS))
    .option('--no-progress', 'no progress bar')
    .addHelpText('after', [
      '',
      'Give exactly one of --weights FILE and --uniform. The fit minimises',
      '  sum_i w_i |a_i - W^T phi(s_i)|^2 + ridge * (sum_i w_i) * |W|^2',
      'in closed form, so an RA-BC weight enters exactly as in LeRobot\'s weighted loss sum(w * loss) / sum(w):',
      'a frame with weight 0 has no influence at all. The policy reads observation.state only.',
      '',
      'Examples:',
      '  stageward sim train-bc --dataset pp-demo --uniform --out runs/bc.json',
      '  stageward rabc --dataset pp-demo --chunk 10',
      '  stageward sim train-bc --dataset pp-demo --weights pp-demo/rabc_weights.parquet --out runs/rabc.json',
      '',
      'The last stdout line is a JSON summary (samples, used, weight_sum, mean_weight, residual_rms, out).',
    ].join('\n'))
    .action(async (f: TrainFlags) => trainBc(f));
}

export function evalPolicyCommand(): Command {
  return new Command('eval-policy')
    .description('success rate of a saved policy over seeded simulator episodes, with a Wilson 95% interval and where the failures stop')
    .requiredOption('--policy <file>', 'policy file (stageward sim train-bc writes one)')
    .option('--episodes <n>', 'number of episodes', intOption(1, SEEDS_PER_RUN - 1), 100)
    .option('--seed <n>', `run seed; episode i uses simulator seed seed*${SEEDS_PER_RUN} + i, as sim record does, so a --seed that no recording used is held out`, intOption(0, 40_000), DEFAULT_EVAL_SEED)
    .option('--max-steps <n>', "episode length limit in control steps (default: the task's)", intOption(1, 100_000))
    .option('--json <file>', 'also write the full result (per-episode outcomes included) to this JSON file')
    .option('--no-progress', 'no progress bar')
    .addHelpText('after', [
      '',
      'Examples:',
      '  stageward sim eval-policy --policy runs/rabc.json --episodes 100 --seed 22',
      '  stageward sim eval-policy --policy runs/bc.json --episodes 200 --seed 22 --json runs/bc-eval.json',
      '',
      'No frames are rendered (the policy reads observation.state), so 100 episodes take seconds.',
      'The last stdout line is one JSON object: {success_rate, ci95_low, ci95_high, episodes, ...}.',
    ].join('\n'))
    .action(async (f: EvalFlags) => evalPolicy(f));
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

async function trainBc(f: TrainFlags): Promise<void> {
  if ((f.weights === undefined) === (f.uniform !== true)) {
    throw new StagewardError('SW_ERR_POLICY', 'give exactly one of --weights FILE (RA-BC weights, e.g. <dataset>/rabc_weights.parquet) and --uniform (plain behaviour cloning)');
  }
  const ds = await LeRobotDataset.open(f.dataset);
  const selected = f.episodes ?? ds.episodes.map((e) => e.index);
  const bar = f.progress ? new SingleBar({ format: 'reading {bar} {value}/{total} episodes' }, Presets.shades_classic) : undefined;
  bar?.start(selected.length, 0);
  let data;
  try {
    data = await readBcDataset(ds, { episodes: selected, ...(f.task ? { task: f.task } : {}), onEpisode: (done) => bar?.update(done) });
  } finally {
    bar?.stop();
  }
  const weightsPath = f.weights === undefined ? null : resolve(f.weights);
  const weighted = applyWeights(data, weightsPath === null ? new Map() : await readSampleWeights(weightsPath), weightsPath ?? 'uniform');
  const t0 = performance.now();
  const fit = fitBehaviourCloning(data.task, weighted.samples, { ridge: f.ridge });
  const fitMs = performance.now() - t0;
  const seeds = data.episodes.map((e) => e.seed).filter((s): s is number => s !== null);
  const out = resolve(f.out);
  const provenance = {
    trainer: 'stageward sim train-bc',
    dataset: data.root,
    episodes: data.episodes.map((e) => e.index),
    weights: weightsPath ?? 'uniform',
    ridge: f.ridge,
    samples: fit.samples,
    used_samples: fit.used,
    weight_sum: fit.weightSum,
    mean_weight: weighted.meanWeight,
    share_weight_below_1: weighted.shareBelowOne,
    share_weight_0: weighted.shareZero,
    frames_without_weight: weightsPath === null ? 0 : weighted.missing,
    residual_rms: fit.residualRms,
    dataset_seed_range: seeds.length > 0 ? [Math.min(...seeds), Math.max(...seeds)] : null,
    created_at: new Date().toISOString(),
  };
  await fit.policy.save(out, provenance);
  console.log(`stageward sim train-bc: ${data.task} from ${data.root} (${data.episodes.length} episodes, ${fit.samples} frames), ${weightsPath === null ? 'uniform weights' : `weights ${weightsPath}`}, ridge ${f.ridge}`);
  if (weightsPath !== null) {
    console.log(`  weights: mean ${weighted.meanWeight.toFixed(3)} | below 1: ${pct(weighted.shareBelowOne)} | zero: ${pct(weighted.shareZero)} | frames without a weight (1): ${weighted.missing}`);
    if (weighted.weighted === 0) console.warn('stageward sim train-bc: the weights file covers none of the selected frames; this is plain behaviour cloning');
  }
  console.log(`  fit: ${fit.used} samples with weight > 0, weight sum ${fit.weightSum.toFixed(1)}, residual rms ${fit.residualRms.toFixed(4)} (${fitMs.toFixed(0)} ms)`);
  console.log(`  wrote ${out}`);
  console.log(JSON.stringify({ samples: fit.samples, used: fit.used, weight_sum: fit.weightSum, mean_weight: weighted.meanWeight, residual_rms: fit.residualRms, out }));
}

async function evalPolicy(f: EvalFlags): Promise<void> {
  const { policy, provenance } = await GatedLinearPolicy.load(f.policy);
  const base = f.seed * SEEDS_PER_RUN;
  const seeds = Array.from({ length: f.episodes }, (_, i) => base + i);
  const range = provenance.dataset_seed_range;
  if (Array.isArray(range) && range.length === 2 && base <= Number(range[1]) && base + f.episodes - 1 >= Number(range[0])) {
    console.warn(`stageward sim eval-policy: seeds ${base}..${base + f.episodes - 1} overlap the training data's seeds ${range[0]}..${range[1]}; this is not a held-out evaluation (pick another --seed)`);
  }
  console.log(`stageward sim eval-policy: ${resolve(f.policy)} (${policy.task.id}) on ${f.episodes} episodes, seeds ${base}..${base + f.episodes - 1}${f.maxSteps ? `, at most ${f.maxSteps} steps` : ''}`);
  const bar = f.progress ? new SingleBar({ format: 'evaluating {bar} {value}/{total} episodes | {ok} succeeded | ETA {eta_formatted}' }, Presets.shades_classic) : undefined;
  let ok = 0;
  bar?.start(f.episodes, 0, { ok });
  let result: PolicyEvaluation;
  try {
    result = await evaluatePolicy(policy, {
      task: policy.task.id, seeds, ...(f.maxSteps ? { maxSteps: f.maxSteps } : {}),
      onEpisode: (done, o) => bar?.update(done, { ok: (ok += o.success ? 1 : 0) }),
    });
  } finally {
    bar?.stop();
  }
  const failures = failureBreakdown(result, policy.task.stageNames);
  const [lo, hi] = result.ci95;
  console.log(`  success ${result.successes}/${result.episodes} = ${pct(result.successRate)} (95% Wilson interval ${pct(lo)}-${pct(hi)}), mean ${result.meanSteps.toFixed(1)} steps`);
  const failed = result.episodes - result.successes;
  if (failed > 0) {
    console.log(`  failures by final stage: ${Object.entries(failures).map(([s, n]) => `${s} ${n}`).join(', ')}`);
    const reached = result.outcomes.filter((o) => !o.success).reduce((a, o) => a + o.maxProgress, 0) / failed;
    console.log(`  failed episodes reached a true progress of ${reached.toFixed(3)} on average`);
  }
  const summary = {
    success_rate: result.successRate, ci95_low: lo, ci95_high: hi, episodes: result.episodes,
    successes: result.successes, mean_steps: result.meanSteps, seed: f.seed, failures_by_stage: failures,
  };
  if (f.json !== undefined) {
    await writeFileAtomic(resolve(f.json), `${JSON.stringify({ ...summary, policy: resolve(f.policy), task: policy.task.id, seeds: [base, base + f.episodes - 1], max_steps: f.maxSteps ?? null, provenance, outcomes: result.outcomes }, null, 2)}\n`);
    console.log(`  wrote ${resolve(f.json)}`);
  }
  console.log(JSON.stringify(summary));
}
