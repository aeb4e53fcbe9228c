// `stageward demo`: run the reward engine over one episode of the scripted expert in the MuJoCo
// simulator (three cameras, sent as JPEG) and print per-step progress, stage and shaped reward next
// to the simulator's true stage. This is what `npm start` does until the server exists.
//
//   stageward demo
//   stageward demo --task stack_three --preset mixed --seed 3 --shaping progress --gamma 0.95
//   stageward demo --provider webgpu,cpu

import { Command } from 'commander';
import { RewardEngine } from '../../models/engine.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import { encodeJpegFrames } from '../../core/image.ts';
import { SHAPING_MODES, type ShapingMode } from '../../models/shaping.ts';
import { SimEnv } from '../../sim/env.ts';
import { EXPERT_PRESETS, ScriptedExpert, planEpisode, type ExpertPreset } from '../../sim/expert.ts';
import { createRenderer } from '../../sim/render/index.ts';
import { TASK_IDS } from '../../sim/tasks/index.ts';
import { choiceOption, intOption, numberOption, providersOption } from '../options.ts';
import { defaultModelDir } from '../../core/paths.ts';

interface DemoOptions {
  model?: string;
  task: string;
  preset: ExpertPreset;
  seed: number;
  size: number;
  shaping: ShapingMode;
  gamma: number;
  progress: 'sarm' | 'grm' | 'both';
  provider: ('cpu' | 'webgpu' | 'cuda' | 'tensorrt')[];
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('run the reward engine over a simulated expert episode (3 cameras as JPEG) and print per-step progress and shaped rewards')
    .option('--model <dir>', 'model package folder (default: the bundled model, else the test fixture)')
    .option('--task <id>', `simulator task: ${TASK_IDS.join(', ')}`, choiceOption(TASK_IDS), 'pick_place')
    .option('--preset <p>', `expert quality: ${EXPERT_PRESETS.join(', ')}`, choiceOption(EXPERT_PRESETS), 'expert')
    .option('--seed <n>', 'simulator seed', intOption(0, 2 ** 31), 0)
    .option('--size <px>', 'camera resolution (the engine resizes to the model)', intOption(16, 1024), 128)
    .option('--shaping <mode>', `shaping mode: ${SHAPING_MODES.join(', ')}`, choiceOption(SHAPING_MODES), 'pbrs')
    .option('--gamma <g>', "the learner's discount", numberOption(0, 1), 0.99)
    .option('--progress <head>', 'progress from sarm, grm or both', choiceOption(['sarm', 'grm', 'both'] as const), 'sarm')
    .option('--provider <list>', 'execution providers to try in order, comma-separated (cpu, webgpu, cuda, tensorrt)', providersOption, ['cpu'])
    .action(async (o: DemoOptions) => runDemo(o));
}

async function runDemo(o: DemoOptions): Promise<void> {
  const picked = o.model ? { dir: o.model, trained: true } : defaultModelDir();
  const model = await OnnxProgressModel.load(picked.dir, { providers: o.provider });
  const card = model.card;
  console.log(`stageward demo: model ${card.name} ${card.version} from ${picked.dir} (providers ${JSON.stringify(model.providers)})`);
  if (!picked.trained) {
    console.log('  (no bundled model yet: this is the test fixture with random weights, so the numbers show the pipeline, not a trained reward)');
  }
  const engine = new RewardEngine(model);
  const episode = await engine.start({ task: o.task, gamma: o.gamma, shaping: o.shaping, progress: o.progress });
  const env = await SimEnv.create({ task: o.task, image: { width: o.size, height: o.size }, renderer: createRenderer() });
  const expert = new ScriptedExpert(env.task, planEpisode(o.preset, o.seed), { stepM: env.maxEeSpeedMps / env.controlHz });
  console.log(`  task "${o.task}" (${env.task.instruction}), expert preset ${o.preset}, seed ${o.seed}; views ${card.views.join('/')} as ${o.size}x${o.size} JPEG; shaping ${o.shaping}, gamma ${o.gamma}`);
  console.log('  step  true stage   model stage      tau    progress  reward   shaped     ms');
  let obs = env.reset(o.seed);
  let info = env.info();
  let reward = 0;
  let terminated = false;
  let truncated = false;
  for (;;) {
    const frames = await encodeJpegFrames(obs.frames);
    const r = await episode.step({ frames, reward, terminated, truncated });
    console.log(
      `  ${String(r.step).padStart(4)}  ${info.stageName.padEnd(11)}  ${`${r.stage.index} ${r.stage.name}`.padEnd(15)} ${r.tau.toFixed(3)}  ${r.progress.toFixed(4)}    ` +
        `${r.reward.toFixed(2)}  ${r.shaped >= 0 ? ' ' : ''}${r.shaped.toFixed(4)}  ${r.timing.total_ms.toFixed(1).padStart(5)}`,
    );
    if (r.done) break;
    const out = env.step(expert.act(obs.state));
    ({ observation: obs, reward, terminated, truncated, info } = out);
    if (!terminated && !truncated && expert.idleSteps >= 20) truncated = true;
  }
  env.close();
  const s = await episode.end();
  console.log(`  episode done: ${s.steps} steps, final progress ${s.finalProgress.toFixed(4)}, shaped return ${s.shapedReturn.toFixed(4)}, env return ${s.envReturn}`);
  await model.close();
}
