// `stageward start` (what `npm start` runs): the reward server with the bundled model, and the
// embedded MuJoCo simulator as a robot that streams episodes to it over a real WebSocket with the
// TypeScript client: three cameras as JPEG, the scripted expert alternating clean and flawed episodes.
// One line per episode (steps, final progress, success, shaped return, step latency p50/p99); other
// clients can connect to the printed URLs meanwhile. Runs until Ctrl-C (graceful shutdown) or
// `--episodes N`.
//
//   stageward start
//   stageward start --episodes 4 --port 0
//   stageward start --task stack_three --size 128 --model models/zoo/pick_place

import { Command } from 'commander';
import { isStagewardError } from '../../core/errors.ts';
import { encodeJpegFrames } from '../../core/image.ts';
import { quantile } from '../../core/stats.ts';
import { SimEnv } from '../../sim/env.ts';
import { ScriptedExpert, planEpisode, type ExpertPreset } from '../../sim/expert.ts';
import { createRenderer } from '../../sim/render/index.ts';
import { TASK_IDS } from '../../sim/tasks/index.ts';
import { StagewardClient } from '../../server/client.ts';
import { choiceOption, intOption } from '../options.ts';
import type { StagewardServer } from '../../server/server.ts';
import { configFromFlags, describeServer, shutdownOnSignals, startServer } from '../../server/run.ts';

interface StartOptions {
  model?: string;
  port?: number;
  config?: string;
  episodes?: number;
  task: string;
  size: number;
  seed: number;
}

/** Even episodes run the clean expert, odd ones a preset whose every episode fails. */
const PRESETS: ExpertPreset[] = ['expert', 'failed'];
/** An expert idle this many control steps has stopped: the episode is truncated. */
const MAX_IDLE_STEPS = 20;

export function startCommand(): Command {
  return new Command('start')
    .description('start the reward server and stream simulated robot episodes to it over WebSocket (npm start)')
    .option('--model <dir>', 'model package folder (default: the bundled model, else the test fixture)')
    .option('--port <n>', 'TCP port (0: any free port; default from the config)', intOption(0, 65535))
    .option('--config <file>', 'JSON config file (see configs/README.md)')
    .option('--episodes <n>', 'stop after this many episodes (default: run until Ctrl-C)', intOption(1, 1_000_000))
    .option('--task <id>', `simulator task: ${TASK_IDS.join(', ')}`, choiceOption(TASK_IDS), 'pick_place')
    .option('--size <px>', 'camera resolution (the server resizes to the model)', intOption(16, 1024), 96)
    .option('--seed <n>', 'seed of the first episode (episode i uses seed + i)', intOption(0, 2 ** 31), 0)
    .action(async (o: StartOptions) => runStart(o));
}

export async function runStart(o: StartOptions, log: (line: string) => void = console.log): Promise<void> {
  const config = configFromFlags({ model: o.model, port: o.port, config: o.config });
  const { server, trained, dir } = await startServer(config, log);
  for (const line of describeServer(server, dir, trained)) log(line);
  let stop = false;
  const signals = shutdownOnSignals(server, log, () => {
    stop = true;
  });
  let failure: unknown;
  try {
    await robot(server, o, () => stop, log);
  } catch (err) {
    // A shutdown under a step ends the robot with the server's error; anything else is reported.
    if (!(stop && isStagewardError(err))) failure = err;
  }
  if (stop) await signals.stopped;
  else await server.shutdown();
  signals.release();
  if (failure !== undefined) throw failure;
  log('stageward: stopped');
}

async function robot(server: StagewardServer, o: StartOptions, stopping: () => boolean, log: (line: string) => void): Promise<void> {
  const env = await SimEnv.create({ task: o.task, image: { width: o.size, height: o.size }, renderer: createRenderer() });
  const client = await StagewardClient.connect(server.url, { apiKey: server.config.apiKeys[0] });
  try {
    const ready = await client.hello({ task: o.task, gamma: 0.99, shaping: 'pbrs', views: [...env.views] });
    log(`robot: simulated ${o.task} (${env.task.instruction}), ${env.views.join('/')} as ${o.size}x${o.size} JPEG, session ${ready.session}; expert presets alternate ${PRESETS.join('/')}`);
    for (let i = 0; o.episodes === undefined || i < o.episodes; i++) {
      if (stopping()) break;
      const preset = PRESETS[i % PRESETS.length]!;
      const seed = o.seed + i;
      let obs = env.reset(seed);
      const expert = new ScriptedExpert(env.task, planEpisode(preset, seed), { stepM: env.maxEeSpeedMps / env.controlHz });
      await client.reset(undefined, { episode: i });
      const latency: number[] = [];
      let reward = 0;
      let terminated = false;
      let truncated = false;
      let success = false;
      for (;;) {
        const frames = await encodeJpegFrames(obs.frames);
        const t0 = performance.now();
        const r = await client.step(frames, { reward, terminated, truncated });
        latency.push(performance.now() - t0);
        if (r.done || stopping()) break;
        const out = env.step(expert.act(obs.state));
        ({ observation: obs, reward, terminated, truncated } = out);
        success ||= out.info.success;
        if (!terminated && !truncated && expert.idleSteps >= MAX_IDLE_STEPS) truncated = true;
      }
      if (stopping()) break;
      const s = await client.end({ success });
      const q = (p: number) => quantile(latency, p);
      log(
        `episode ${String(i).padStart(3)}  ${preset.padEnd(6)}  seed ${String(seed).padEnd(4)} ${String(s.steps).padStart(4)} steps  ` +
          `progress ${s.final_progress.toFixed(3)}  success ${success ? 'yes' : 'no '}  shaped return ${s.shaped_return >= 0 ? ' ' : ''}${s.shaped_return.toFixed(3)}  ` +
          `latency p50 ${q(0.5).toFixed(1)} ms p99 ${q(0.99).toFixed(1)} ms`,
      );
    }
  } finally {
    env.close();
    await client.close();
  }
}
