// `stageward sim record`: record annotated episodes in the MuJoCo simulator as a LeRobot v3.0
// dataset (H.264 videos, parquet data, subtask annotations; sim/record-dataset.ts): demonstrations
// of the scripted expert, or rollouts of a state policy (the RL weak start, or any saved
// policy.json) with exploration noise and perturbation bursts (sim/rollout.ts).
//
//   stageward sim record --task pick_place --episodes 20 --preset mixed --seed 1 --out pp-demo
//   stageward sim record --task stack_three --episodes 10 --preset expert --seed 2 --out st-demo --size 128 --randomize all
//   stageward sim record --task pick_place --policy weak --noise 0.3 --perturb mixed --episodes 40 --seed 20 --out pp-rollouts

import { resolve } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { EXPERT_PRESETS, type ExpertPreset } from '../../sim/expert.ts';
import { DatasetRecording, RANDOMIZATION_KNOBS, RECORD_DEFAULTS, isRandomizationKnob, randomizationOf } from '../../sim/record-dataset.ts';
import type { RandomizationOptions } from '../../sim/scenes/appearance.ts';
import { TASK_IDS } from '../../sim/tasks/index.ts';
import { choiceOption, intOption, numberOption } from '../options.ts';
import { SEEDS_PER_RUN } from '../../sim/record.ts';
import { StagewardError } from '../../core/errors.ts';
import { PERTURBATIONS, type Perturbation } from '../../sim/rollout.ts';
import { loadStartPolicy } from '../../learn/rl/run.ts';
import type { TaskId } from '../../sim/tasks/task.ts';

function randomizeOption(value: string): RandomizationOptions {
  const names = value === 'all' ? [...RANDOMIZATION_KNOBS] : value.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!isRandomizationKnob(n))
      throw new InvalidArgumentError(`unknown knob "${n}" (use all, or a list of ${RANDOMIZATION_KNOBS.join(', ')})`);
  }
  return randomizationOf(names as typeof RANDOMIZATION_KNOBS);
}

interface RecordFlags {
  task: string;
  episodes: number;
  preset: ExpertPreset;
  seed: number;
  out: string;
  size: number;
  hz: number;
  randomize?: RandomizationOptions;
  overwrite?: boolean;
  maxIdle: number;
  progress: boolean;
  policy?: string;
  startSeed: number;
  noise: number;
  perturb: Perturbation;
  cameras?: { name: string; view: string }[];
}

/** `--cameras top=front,wrist=wrist`: simulator views to record, under the dataset names given (a bare view keeps its name). */
function camerasOption(value: string): { name: string; view: string }[] {
  const cameras = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((item) => {
      const [name, view = name] = item.split('=').map((s) => s.trim());
      if (!name || !view || !/^[A-Za-z0-9_.-]{1,64}$/.test(name))
        throw new InvalidArgumentError(`"${item.slice(0, 80)}" is not NAME=VIEW (NAME in [A-Za-z0-9_.-], at most 64 characters)`);
      return { name, view };
    });
  if (cameras.length === 0) throw new InvalidArgumentError('give at least one NAME=VIEW');
  if (new Set(cameras.map((c) => c.name)).size !== cameras.length) throw new InvalidArgumentError('camera names must be distinct');
  return cameras;
}

/** The `sim` group with `record`; the CLI adds `train-bc` and `eval-policy` (policy.ts) beside it. */
export function simCommand(): Command {
  const d = RECORD_DEFAULTS;
  const sim = new Command('sim').description('the embedded MuJoCo simulator');
  sim
    .command('record')
    .description('record scripted-expert demonstrations, or rollouts of a state policy, as a LeRobot v3.0 dataset with subtask annotations')
    .requiredOption('--task <id>', `task: ${TASK_IDS.join(', ')}`, choiceOption(TASK_IDS))
    .requiredOption('--out <dir>', 'dataset folder to create (written atomically)')
    .option('--episodes <n>', 'number of episodes', intOption(1, SEEDS_PER_RUN - 1), d.episodes)
    .option(
      '--preset <p>',
      `expert quality: ${EXPERT_PRESETS.join(', ')} (mixed: >= 40% flawed episodes)`,
      choiceOption(EXPERT_PRESETS),
      d.preset,
    )
    .option('--seed <n>', `run seed; episode i uses simulator seed seed*${SEEDS_PER_RUN} + i`, intOption(0, 40_000), d.seed)
    .option('--size <px>', 'square camera resolution', intOption(16, 1024), d.size)
    .option('--hz <n>', 'control rate and dataset fps', intOption(1, 100), d.hz)
    .option('--randomize <knobs>', 'domain randomisation: all, or a comma list of lights, colors, camera, distractors', randomizeOption)
    .option('--max-idle <steps>', 'end an episode after the expert idles this many control steps', intOption(1, 10_000), d.maxIdle)
    .option('--policy <weak|file>', 'roll out a state policy instead of the expert: weak (the RL weak start) or a saved policy.json')
    .option('--start-seed <n>', 'with --policy weak: the seed of its demonstrations', intOption(0, 40_000), 0)
    .option('--noise <std>', 'with --policy: Gaussian exploration noise on every action component', numberOption(0, 2), 0)
    .option('--perturb <kind>', `with --policy: perturbation bursts: ${PERTURBATIONS.join(', ')}`, choiceOption(PERTURBATIONS), 'none')
    .option(
      '--cameras <list>',
      'cameras to record and their dataset names, NAME=VIEW,... of the views front, side, wrist (default: all three, as named)',
      camerasOption,
    )
    .option('--overwrite', 'replace an existing dataset at --out')
    .option('--no-progress', 'no progress bar')
    .action(record);
  return sim;
}

async function record(f: RecordFlags): Promise<void> {
  const policy =
    f.policy === undefined ? undefined : await loadStartPolicy({ start: f.policy, startSeed: f.startSeed, task: f.task as TaskId });
  if (policy === undefined && (f.noise !== 0 || f.perturb !== 'none'))
    throw new StagewardError(
      'SW_ERR_BAD_OPTION',
      '--noise and --perturb apply to --policy rollouts; the expert has its own flaws (--preset)',
    );
  const rec = await DatasetRecording.create({
    ...(policy ? { policy: { policy: policy.policy, name: policy.about, rollout: { noise: f.noise, perturb: f.perturb } } } : {}),
    task: f.task,
    out: f.out,
    episodes: f.episodes,
    preset: f.preset,
    seed: f.seed,
    size: f.size,
    hz: f.hz,
    maxIdle: f.maxIdle,
    ...(f.randomize ? { randomize: f.randomize } : {}),
    ...(f.cameras ? { cameras: f.cameras } : {}),
    overwrite: f.overwrite ?? false,
  });
  const bar = f.progress
    ? new SingleBar(
        { format: 'recording {bar} {value}/{total} episodes | {frames} frames | {ok} succeeded | ETA {eta_formatted}' },
        Presets.shades_classic,
      )
    : undefined;
  const interrupt = () => void rec.abort().finally(() => process.exit(130));
  process.once('SIGINT', interrupt);
  bar?.start(f.episodes, 0, { frames: 0, ok: 0 });
  try {
    const { succeeded, frames } = await rec.run(({ frames, succeeded }) => bar?.increment(1, { frames, ok: succeeded }));
    bar?.stop();
    console.log(
      `wrote ${f.out}: ${f.episodes} episodes (${succeeded} succeeded), ${frames} frames, views ${rec.spec.views.join('/')} at ${rec.size}x${rec.size}, ${f.hz} fps`,
    );
    const source = policy ? { policy: policy.about, noise: f.noise, perturb: f.perturb } : { preset: f.preset };
    console.log(
      JSON.stringify({
        out: resolve(f.out),
        episodes: f.episodes,
        succeeded,
        frames,
        views: rec.spec.views,
        size: rec.size,
        fps: f.hz,
        ...source,
      }),
    );
  } catch (err) {
    bar?.stop();
    throw err;
  } finally {
    process.removeListener('SIGINT', interrupt);
  }
}
