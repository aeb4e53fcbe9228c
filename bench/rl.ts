// Simulator bridge benchmark: environment steps per second with `pbrs` rewards from the reward model
// (three 96x96 views rendered per step), the scripted expert (mixed preset) as the policy, through the
// engine in process and through the reward server over a real WebSocket, with 1 and with 8 parallel
// environments; plus the model-free pbrs-true rate and 8 environments rendering on the main thread, for
// scale. Each figure is the median over repeats of one run of `--episodes` episodes (the same seeds
// each time) on a bridge that has been warmed up with one short run. Also checks that the in-process
// and WebSocket rewards of the same episodes are identical.
//
//   npm run bench:rl
//   stageward bench rl --episodes 8 --repeats 1
//   stageward bench rl --max-steps 80 --model models/zoo/pick_place
//
// Last output line: {"env_steps_per_s_inprocess", "env_steps_per_s_ws", "env_steps_per_s_8env", ...}

import { availableParallelism, loadavg } from 'node:os';
import { Presets, SingleBar } from 'cli-progress';
import { SimBridge, expertPolicies, type BridgeOptions, type EpisodeResult } from '../sim/bridge/index.ts';
import type { TaskId } from '../sim/tasks/task.ts';
import { median } from '../core/stats.ts';
import { round1 } from '../core/format.ts';

export const RL_BENCH_DEFAULTS = { task: 'pick_place', episodes: 16, repeats: 3 };

interface Options {
  task: string;
  episodes: number;
  repeats: number;
  maxSteps?: number;
  model?: string;
}

interface Setup {
  key: string;
  label: string;
  options: Partial<BridgeOptions>;
}

const SETUPS: Setup[] = [
  { key: 'env_steps_per_s_inprocess', label: 'in process, 1 env', options: { transport: 'inprocess', envs: 1 } },
  { key: 'env_steps_per_s_ws', label: 'WebSocket, 1 env', options: { transport: 'ws', envs: 1 } },
  { key: 'env_steps_per_s_8env', label: 'in process, 8 envs', options: { transport: 'inprocess', envs: 8 } },
  { key: 'env_steps_per_s_ws_8env', label: 'WebSocket, 8 envs', options: { transport: 'ws', envs: 8 } },
  {
    key: 'env_steps_per_s_8env_main_thread_render',
    label: 'in process, 8 envs, rendering on the main thread',
    options: { transport: 'inprocess', envs: 8, renderThreads: 0 },
  },
  {
    key: 'env_steps_per_s_true_progress_8env',
    label: 'pbrs-true (no model, no rendering), 8 envs',
    options: { reward: 'pbrs-true', envs: 8 },
  },
];

function identical(a: EpisodeResult[], b: EpisodeResult[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (e, i) =>
        e.length === b[i]!.length &&
        e.phi0 === b[i]!.phi0 &&
        e.steps.every((s, t) => s.shaped === b[i]!.steps[t]!.shaped && s.progress === b[i]!.steps[t]!.progress),
    )
  );
}

export async function benchRl(o: Options): Promise<void> {
  const seeds = Array.from({ length: o.episodes }, (_, i) => 1000 + i);
  const warmSeeds = [7, 8];
  const load = loadavg()[0]!;
  const rates: Record<string, number[]> = {};
  const results: Record<string, EpisodeResult[]> = {};
  let steps = 0;
  let renderThreads = 0;
  const bar = new SingleBar({ format: 'bench rl {bar} {value}/{total} runs | {setup}' }, Presets.shades_classic);
  bar.start(SETUPS.length * o.repeats, 0, { setup: '' });
  try {
    for (const setup of SETUPS) {
      bar.update({ setup: setup.label });
      const bridge = await SimBridge.create({
        task: o.task as TaskId,
        reward: 'pbrs',
        gamma: 0.99,
        envs: 1,
        maxSteps: o.maxSteps,
        model: o.model,
        ...setup.options,
      });
      try {
        if (setup.key === 'env_steps_per_s_8env') renderThreads = bridge.options.renderThreads;
        await bridge.runEpisodes(warmSeeds, expertPolicies(bridge, warmSeeds, 'mixed'));
        rates[setup.key] = [];
        for (let rep = 0; rep < o.repeats; rep++) {
          const t0 = performance.now();
          const run = await bridge.runEpisodes(seeds, expertPolicies(bridge, seeds, 'mixed'));
          const s = (performance.now() - t0) / 1000;
          const n = run.reduce((a, e) => a + e.length, 0);
          rates[setup.key]!.push(n / s);
          steps = n;
          results[setup.key] ??= run;
          bar.increment();
        }
      } finally {
        await bridge.close();
      }
    }
  } finally {
    bar.stop();
  }
  const figures: Record<string, unknown> = {};
  for (const setup of SETUPS) figures[setup.key] = round1(median(rates[setup.key]!));
  Object.assign(figures, {
    ws_rewards_identical:
      identical(results.env_steps_per_s_inprocess!, results.env_steps_per_s_ws!) &&
      identical(results.env_steps_per_s_inprocess!, results.env_steps_per_s_8env!),
    task: o.task,
    reward: 'pbrs',
    policy: 'scripted expert, mixed preset',
    episodes: o.episodes,
    env_steps_per_run: steps,
    repeats: o.repeats,
    render_threads: renderThreads,
    cpu_cores: availableParallelism(),
    load_avg_1m_at_start: Math.round(load * 100) / 100,
  });
  for (const setup of SETUPS) console.log(`${setup.label.padEnd(52)} ${String(figures[setup.key]).padStart(7)} env steps/s`);
  console.log(
    `rewards in process, over WebSocket and with 8 envs identical: ${figures.ws_rewards_identical ? 'yes' : 'NO'}; ${steps} env steps per run, median of ${o.repeats}`,
  );
  console.log(JSON.stringify(figures));
}
