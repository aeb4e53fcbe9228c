// `stageward demo`: run the engine over a generated episode and print per-step progress, stage and
// shaped reward. This is what `npm start` does until the server and simulator exist.
//
//   stageward demo
//   stageward demo --steps 60 --shaping progress --gamma 0.95 --provider webgpu,cpu

import { Command } from 'commander';
import sharp from 'sharp';
import { RewardEngine } from '../../models/engine.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import type { FrameSet } from '../../models/preprocess.ts';
import { SHAPING_MODES, type ShapingMode } from '../../models/shaping.ts';
import { demoEpisode } from '../demo-episode.ts';
import { choiceOption, intOption, numberOption, providersOption } from '../options.ts';
import { defaultModelDir } from '../paths.ts';

interface DemoOptions {
  model?: string;
  task?: string;
  steps: number;
  seed: number;
  shaping: ShapingMode;
  gamma: number;
  progress: 'sarm' | 'grm' | 'both';
  provider: ('cpu' | 'webgpu' | 'cuda' | 'tensorrt')[];
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('run the reward engine over a generated episode (camera frames as JPEG) and print per-step progress and shaped rewards')
    .option('--model <dir>', 'model package folder (default: the bundled model, else the test fixture)')
    .option('--task <task>', "task string (default: the model's first task)")
    .option('--steps <n>', 'episode length in steps', intOption(2, 100_000), 30)
    .option('--seed <n>', 'seed of the generated episode', intOption(0, 2 ** 31), 0)
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
  const task = o.task ?? card.tasks[0]!;
  const engine = new RewardEngine(model);
  const episode = await engine.start({ task, gamma: o.gamma, shaping: o.shaping, progress: o.progress });
  console.log(`  task "${task}", ${o.steps} steps, views ${card.views.join('/')} as 320x240 JPEG, shaping ${o.shaping}, gamma ${o.gamma}`);
  console.log('  step  stage            tau    progress  reward   shaped     ms');
  let t = 0;
  for (const frame of demoEpisode(card.views, o.steps, 240, 320, o.seed)) {
    const frames: FrameSet = {};
    for (const [view, img] of Object.entries(frame.views)) {
      frames[view] = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
    }
    const last = t === o.steps - 1;
    const r = await episode.step({ frames, reward: last ? 1 : 0, terminated: last });
    console.log(
      `  ${String(r.step).padStart(4)}  ${`${r.stage.index} ${r.stage.name}`.padEnd(15)} ${r.tau.toFixed(3)}  ${r.progress.toFixed(4)}    ` +
        `${r.reward.toFixed(2)}  ${r.shaped >= 0 ? ' ' : ''}${r.shaped.toFixed(4)}  ${r.timing.total_ms.toFixed(1).padStart(5)}`,
    );
    t++;
  }
  const s = await episode.end();
  console.log(`  episode done: ${s.steps} steps, final progress ${s.finalProgress.toFixed(4)}, shaped return ${s.shapedReturn.toFixed(4)}, env return ${s.envReturn}`);
  await model.close();
}
