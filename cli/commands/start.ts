// `stageward start` (what `npm start` runs): the reward server with the bundled model
// (server/run.ts), and the embedded MuJoCo simulator as a robot that streams episodes to it over a
// real WebSocket (sim/bridge/robot.ts): three cameras as JPEG, the scripted expert alternating clean
// and flawed episodes. One line per episode (steps, final progress, success, shaped return, step
// latency p50/p99); other clients can connect to the printed URLs meanwhile. Runs until Ctrl-C
// (graceful shutdown) or `--episodes N`.
//
//   stageward start
//   stageward start --episodes 4 --port 0
//   stageward start --task stack_three --size 128 --model models/zoo/pick_place

import { Command } from 'commander';
import { quantile } from '../../core/stats.ts';
import { ROBOT_DEFAULTS, serveSimRobot } from '../../sim/bridge/robot.ts';
import { TASK_IDS } from '../../sim/tasks/index.ts';
import { choiceOption, intOption } from '../options.ts';
import { configFromFlags } from '../../server/run.ts';

interface StartOptions {
  model?: string;
  port?: number;
  config?: string;
  episodes?: number;
  task: string;
  size: number;
  seed: number;
}

export function startCommand(): Command {
  return new Command('start')
    .description('start the reward server and stream simulated robot episodes to it over WebSocket (npm start)')
    .option('--model <dir>', 'model package folder (default: the bundled model, else the test fixture)')
    .option('--port <n>', 'TCP port (0: any free port; default from the config)', intOption(0, 65535))
    .option('--config <file>', 'JSON config file (see configs/README.md)')
    .option('--episodes <n>', 'stop after this many episodes (default: run until Ctrl-C)', intOption(1, 1_000_000))
    .option('--task <id>', `simulator task: ${TASK_IDS.join(', ')}`, choiceOption(TASK_IDS), ROBOT_DEFAULTS.task)
    .option('--size <px>', 'camera resolution (the server resizes to the model)', intOption(16, 1024), ROBOT_DEFAULTS.size)
    .option('--seed <n>', 'seed of the first episode (episode i uses seed + i)', intOption(0, 2 ** 31), ROBOT_DEFAULTS.seed)
    .action(async (o: StartOptions) => runStart(o));
}

export async function runStart(o: StartOptions, log: (line: string) => void = console.log): Promise<void> {
  const config = configFromFlags({ model: o.model, port: o.port, config: o.config });
  await serveSimRobot(
    config,
    { task: o.task, size: o.size, seed: o.seed, ...(o.episodes !== undefined ? { episodes: o.episodes } : {}) },
    {
      log,
      onReady: (r) =>
        log(
          `robot: simulated ${r.task} (${r.instruction}), ${r.views.join('/')} as ${r.size}x${r.size} JPEG, session ${r.ready.session}; expert presets alternate ${r.presets.join('/')}`,
        ),
      onEpisode: ({ index, preset, seed, success, summary: s, latencyMs }) => {
        const q = (p: number) => quantile(latencyMs, p);
        log(
          `episode ${String(index).padStart(3)}  ${preset.padEnd(6)}  seed ${String(seed).padEnd(4)} ${String(s.steps).padStart(4)} steps  ` +
            `progress ${s.final_progress.toFixed(3)}  success ${success ? 'yes' : 'no '}  shaped return ${s.shaped_return >= 0 ? ' ' : ''}${s.shaped_return.toFixed(3)}  ` +
            `latency p50 ${q(0.5).toFixed(1)} ms p99 ${q(0.99).toFixed(1)} ms`,
        );
      },
    },
  );
}
