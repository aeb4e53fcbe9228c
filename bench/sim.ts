// Simulator benchmark: physics control steps per second (no rendering), renders per second per view
// at 96x96 on the real scene, control steps per second with 3 views rendered, and episodes per
// minute recorded into a LeRobot dataset (expert preset, H.264).
//
//   npm run bench:sim
//   npm run bench:sim -- --task stack_three --episodes 10
//
// Last output line: {"sim_steps_per_s", "renders_per_s_per_view", "control_steps_per_s_3views", ...}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeRobotDatasetWriter } from '../datasets/writer.ts';
import { SimEnv } from '../sim/env.ts';
import { rolloutExpert } from '../sim/expert.ts';
import { recordEpisode } from '../sim/record.ts';
import { createRenderer } from '../sim/render/index.ts';
import { median } from '../core/stats.ts';
import { round1 } from '../core/format.ts';

export const SIM_BENCH_DEFAULTS = { task: 'pick_place', episodes: 5, repeats: 3 };

interface Options {
  task: string;
  episodes: number;
  repeats: number;
}

export async function benchSim(o: Options): Promise<void> {
  const physics: number[] = [];
  const withViews: number[] = [];
  const renders: number[] = [];
  const perMinute: number[] = [];
  const tmp = await mkdtemp(join(tmpdir(), 'stageward-bench-sim-'));
  try {
    for (let rep = 0; rep < o.repeats; rep++) {
      // Physics only: expert episodes with no renderer.
      const bare = await SimEnv.create({ task: o.task });
      let steps = 0;
      let t0 = performance.now();
      for (let i = 0; i < o.episodes; i++) steps += rolloutExpert(bare, 'expert', 1000 + i).length;
      physics.push(steps / ((performance.now() - t0) / 1000));
      bare.close();

      // Three views rendered at 96x96 each control step.
      const renderer = createRenderer();
      const env = await SimEnv.create({ task: o.task, renderer });
      steps = 0;
      t0 = performance.now();
      for (let i = 0; i < o.episodes; i++) steps += rolloutExpert(env, 'expert', 1000 + i).length;
      withViews.push(steps / ((performance.now() - t0) / 1000));

      // Renders alone, mid-episode scene.
      env.reset(7);
      for (let i = 0; i < 20; i++) env.step([0.5, 0, -0.3, -1]);
      const snap = env.snapshot();
      const n = 300;
      t0 = performance.now();
      for (let i = 0; i < n; i++) renderer.render(snap, ['front', 'side', 'wrist'][i % 3]!, 96, 96);
      renders.push(n / ((performance.now() - t0) / 1000));

      // Recording into a dataset (simulation + rendering + H.264 + parquet).
      const writer = await LeRobotDatasetWriter.create(join(tmp, `ds-${rep}`), env.datasetSpec());
      t0 = performance.now();
      for (let i = 0; i < o.episodes; i++) await writer.addEpisode(recordEpisode(env, 2000 + i, 'expert', 20));
      await writer.finish();
      perMinute.push(o.episodes / ((performance.now() - t0) / 60_000));
      env.close();
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const figures = {
    sim_steps_per_s: round1(median(physics)),
    renders_per_s_per_view: round1(median(renders)),
    control_steps_per_s_3views: round1(median(withViews)),
    episodes_per_min_recorded: round1(median(perMinute)),
    task: o.task,
    image: '96x96',
    repeats: o.repeats,
  };
  console.log(
    `${o.task}: physics ${figures.sim_steps_per_s} control steps/s (50 mj_step each at 10 Hz); renders ${figures.renders_per_s_per_view}/s per 96x96 view`,
  );
  console.log(
    `with 3 views rendered: ${figures.control_steps_per_s_3views} control steps/s (target >= 100); recording: ${figures.episodes_per_min_recorded} episodes/min`,
  );
  console.log(JSON.stringify(figures));
}
