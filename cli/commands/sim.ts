// `stageward sim record`: record annotated demonstrations of the scripted expert in the MuJoCo
// simulator as a LeRobot v3.0 dataset (H.264 videos, parquet data, subtask annotations).
//
//   stageward sim record --task pick_place --episodes 20 --preset mixed --seed 1 --out pp-demo
//   stageward sim record --task stack_three --episodes 10 --preset expert --seed 2 --out st-demo --size 128 --randomize all

import { SingleBar, Presets } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { LeRobotDatasetWriter } from '../../datasets/writer.ts';
import { EXPERT_PRESETS, type ExpertPreset } from '../../sim/expert.ts';
import { recordEpisodes } from '../../sim/record.ts';
import { createRenderer } from '../../sim/render/index.ts';
import type { RandomizationOptions } from '../../sim/scenes/appearance.ts';
import { SimEnv } from '../../sim/env.ts';
import { TASK_IDS } from '../../sim/tasks/index.ts';
import { choiceOption, intOption } from '../options.ts';
import { SEEDS_PER_RUN } from '../../sim/record.ts';

const KNOBS = ['lights', 'colors', 'camera', 'distractors'] as const;

function randomizeOption(value: string): RandomizationOptions {
  const names = value === 'all' ? [...KNOBS] : value.split(',').map((s) => s.trim());
  const out: RandomizationOptions = {};
  for (const n of names) {
    if (n === 'lights') out.lights = true;
    else if (n === 'colors') out.colors = true;
    else if (n === 'camera') out.cameraJitter = true;
    else if (n === 'distractors') out.distractors = true;
    else throw new InvalidArgumentError(`unknown knob "${n}" (use all, or a list of ${KNOBS.join(', ')})`);
  }
  return out;
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
}

/** The `sim` group with `record`; the CLI adds `train-bc` and `eval-policy` (policy.ts) beside it. */
export function simCommand(): Command {
  const sim = new Command('sim').description('the embedded MuJoCo simulator');
  sim
    .command('record')
    .description('record scripted-expert episodes as a LeRobot v3.0 dataset with subtask annotations')
    .requiredOption('--task <id>', `task: ${TASK_IDS.join(', ')}`, choiceOption(TASK_IDS))
    .requiredOption('--out <dir>', 'dataset folder to create (written atomically)')
    .option('--episodes <n>', 'number of episodes', intOption(1, SEEDS_PER_RUN - 1), 20)
    .option('--preset <p>', `expert quality: ${EXPERT_PRESETS.join(', ')} (mixed: >= 40% flawed episodes)`, choiceOption(EXPERT_PRESETS), 'expert')
    .option('--seed <n>', `run seed; episode i uses simulator seed seed*${SEEDS_PER_RUN} + i`, intOption(0, 40_000), 0)
    .option('--size <px>', 'square camera resolution', intOption(16, 1024), 96)
    .option('--hz <n>', 'control rate and dataset fps', intOption(1, 100), 10)
    .option('--randomize <knobs>', 'domain randomisation: all, or a comma list of lights, colors, camera, distractors', randomizeOption)
    .option('--max-idle <steps>', 'end an episode after the expert idles this many control steps', intOption(1, 10_000), 20)
    .option('--overwrite', 'replace an existing dataset at --out')
    .option('--no-progress', 'no progress bar')
    .action(record);
  return sim;
}

async function record(f: RecordFlags): Promise<void> {
  const size = f.size % 2 === 0 ? f.size : f.size + 1; // H.264 yuv420p needs even sides
  const renderer = createRenderer();
  const envOptions = {
    task: f.task, controlHz: f.hz, image: { width: size, height: size }, renderer, ...(f.randomize ? { randomization: f.randomize } : {}),
  };
  const probe = await SimEnv.create(envOptions);
  const spec = probe.datasetSpec();
  probe.close();
  const writer = await LeRobotDatasetWriter.create(f.out, spec, { overwrite: f.overwrite ?? false });
  const bar = f.progress ? new SingleBar({ format: 'recording {bar} {value}/{total} episodes | {frames} frames | {ok} succeeded | ETA {eta_formatted}' }, Presets.shades_classic) : undefined;
  let frames = 0;
  let ok = 0;
  const interrupt = () => void writer.abort().finally(() => process.exit(130));
  process.once('SIGINT', interrupt);
  bar?.start(f.episodes, 0, { frames, ok });
  try {
    await recordEpisodes(envOptions, f.episodes, { seedBase: f.seed * SEEDS_PER_RUN, preset: f.preset, maxIdleSteps: f.maxIdle }, async (ep) => {
      await writer.addEpisode(ep);
      frames += ep.state.length;
      ok += ep.success ? 1 : 0;
      bar?.increment(1, { frames, ok });
    });
    const summary = await writer.finish();
    bar?.stop();
    console.log(`wrote ${f.out}: ${f.episodes} episodes (${ok} succeeded), ${frames} frames, views ${spec.views.join('/')} at ${size}x${size}, ${f.hz} fps`);
    void summary;
  } catch (err) {
    bar?.stop();
    await writer.abort();
    throw err;
  } finally {
    process.removeListener('SIGINT', interrupt);
  }
}
