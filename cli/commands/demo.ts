// `stageward demo`: run the reward engine over one episode of the scripted expert in the MuJoCo
// simulator (three cameras, sent as JPEG; sim/bridge/demo.ts) and print per-step progress, stage and
// shaped reward next to the simulator's true stage.
//
//   stageward demo
//   stageward demo --task stack_three --preset mixed --seed 3 --shaping progress --gamma 0.95
//   stageward demo --provider webgpu,cpu

import { Command } from 'commander';
import { PROGRESS_SOURCES, type ProgressSource } from '../../models/engine.ts';
import type { ExecutionProvider } from '../../models/runtime.ts';
import { SHAPING_MODES, type ShapingMode } from '../../models/shaping.ts';
import { DEMO_DEFAULTS, runEngineDemo } from '../../sim/bridge/demo.ts';
import { EXPERT_PRESETS, type ExpertPreset } from '../../sim/expert.ts';
import { TASK_IDS } from '../../sim/tasks/index.ts';
import { choiceOption, intOption, numberOption, providersOption } from '../options.ts';

interface DemoOptions {
  model?: string;
  task: string;
  preset: ExpertPreset;
  seed: number;
  size: number;
  shaping: ShapingMode;
  gamma: number;
  progress: ProgressSource;
  provider: ExecutionProvider[];
}

export function demoCommand(): Command {
  const d = DEMO_DEFAULTS;
  return new Command('demo')
    .description('run the reward engine over a simulated expert episode (3 cameras as JPEG) and print per-step progress and shaped rewards')
    .option('--model <dir>', 'model package folder (default: the bundled model, else the test fixture)')
    .option('--task <id>', `simulator task: ${TASK_IDS.join(', ')}`, choiceOption(TASK_IDS), d.task)
    .option('--preset <p>', `expert quality: ${EXPERT_PRESETS.join(', ')}`, choiceOption(EXPERT_PRESETS), d.preset)
    .option('--seed <n>', 'simulator seed', intOption(0, 2 ** 31), d.seed)
    .option('--size <px>', 'camera resolution (the engine resizes to the model)', intOption(16, 1024), d.size)
    .option('--shaping <mode>', `shaping mode: ${SHAPING_MODES.join(', ')}`, choiceOption(SHAPING_MODES), d.shaping)
    .option('--gamma <g>', "the learner's discount", numberOption(0, 1), d.gamma)
    .option('--progress <head>', 'progress from sarm, grm or both', choiceOption(PROGRESS_SOURCES), d.progress)
    .option(
      '--provider <list>',
      'execution providers to try in order, comma-separated (cpu, webgpu, cuda, tensorrt)',
      providersOption,
      d.providers,
    )
    .action(async (o: DemoOptions) => runDemo(o));
}

async function runDemo(o: DemoOptions): Promise<void> {
  const { provider, ...rest } = o;
  const s = await runEngineDemo(
    { ...rest, providers: provider },
    {
      onModel: ({ card, dir, trained, providers }) => {
        console.log(`stageward demo: model ${card.name} ${card.version} from ${dir} (providers ${JSON.stringify(providers)})`);
        if (!trained) {
          console.log(
            '  (no bundled model yet: this is the test fixture with random weights, so the numbers show the pipeline, not a trained reward)',
          );
        }
      },
      onEpisodeStart: (e) => {
        console.log(
          `  task "${e.task}" (${e.instruction}), expert preset ${e.preset}, seed ${e.seed}; views ${e.views.join('/')} as ${e.size}x${e.size} JPEG; shaping ${e.shaping}, gamma ${e.gamma}`,
        );
        console.log('  step  true stage   model stage      tau    progress  reward   shaped     ms');
      },
      onStep: (r, info) => {
        console.log(
          `  ${String(r.step).padStart(4)}  ${info.stageName.padEnd(11)}  ${`${r.stage.index} ${r.stage.name}`.padEnd(15)} ${r.tau.toFixed(3)}  ${r.progress.toFixed(4)}    ` +
            `${r.reward.toFixed(2)}  ${r.shaped >= 0 ? ' ' : ''}${r.shaped.toFixed(4)}  ${r.timing.total_ms.toFixed(1).padStart(5)}`,
        );
      },
    },
  );
  console.log(
    `  episode done: ${s.steps} steps, final progress ${s.finalProgress.toFixed(4)}, shaped return ${s.shapedReturn.toFixed(4)}, env return ${s.envReturn}`,
  );
}
