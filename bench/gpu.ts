// GPU check: load the fixture package on each requested execution provider (webgpu, cuda, ...),
// compare its outputs with CPU and with the exporter's torch reference, and time an engine step
// (every view at the model's resolution) and a batched encode against CPU in the same run.
//
//   stageward bench gpu                               # webgpu and cuda, fixture + a 96x96 package if given
//   stageward bench gpu --model /tmp/default-model --providers webgpu
//
// A provider that cannot start is reported with the reason, not hidden behind the CPU fallback.
// Last output line: one JSON object of the figures.

import { RewardEngine } from '../models/engine.ts';
import { OnnxProgressModel } from '../models/package.ts';
import type { FrameSet } from '../models/preprocess.ts';
import type { RawImage } from '../core/image.ts';
import type { ExecutionProvider } from '../models/runtime.ts';
import { mulberry32 } from '../core/random.ts';
import { renderDemoView } from './demo-episode.ts';
import { FIXTURE_MODEL_DIR } from '../core/paths.ts';
import { maxAbsDiffs, parityEpisode, parityInputs } from './parity-data.ts';
import { median, quantile } from '../core/stats.ts';

export const GPU_BENCH_DEFAULTS = {
  /** Providers to check. */
  providers: ['webgpu', 'cuda'] as ExecutionProvider[],
  /** Timed engine steps per provider. */
  steps: 500,
};

interface Options {
  providers: ExecutionProvider[];
  model?: string;
  steps: number;
}

type Figures = Record<string, number | string | boolean>;

export async function benchGpu(o: Options): Promise<void> {
  const figures: Figures = {};
  const cpu = await OnnxProgressModel.load(FIXTURE_MODEL_DIR);
  const cpuOut = await runParity(cpu);
  const timeDir = o.model ?? FIXTURE_MODEL_DIR;
  const cpuTiming = await timeModel(timeDir, 'cpu', o.steps);
  Object.assign(figures, prefixed('cpu', cpuTiming));
  console.log(
    `cpu: step p50 ${cpuTiming.step_p50_ms} ms, p99 ${cpuTiming.step_p99_ms} ms; encode x64 p50 ${cpuTiming.encode64_p50_ms} ms (${timeDir})`,
  );

  for (const provider of o.providers) {
    const logs: string[] = [];
    const model = await OnnxProgressModel.load(FIXTURE_MODEL_DIR, { providers: [provider], log: (m) => logs.push(m) });
    const got = Object.values(model.providers);
    if (!got.every((p) => p === provider)) {
      figures[`${provider}_available`] = false;
      figures[`${provider}_reason`] = logs[0] ?? `graphs ran on ${got.join(', ')}`;
      console.log(`${provider}: unavailable: ${figures[`${provider}_reason`]}`);
      await model.close();
      continue;
    }
    figures[`${provider}_available`] = true;
    const out = await runParity(model);
    const vsTorch = maxAbsDiffs(out.graphs, out.reference);
    const vsCpu = maxAbsDiffs(out.graphs, cpuOut.graphs);
    const episodeVsCpu = Math.max(...out.episode.map((p, i) => Math.abs(p - cpuOut.episode[i]!)));
    figures[`${provider}_max_abs_diff_vs_cpu`] = Math.max(...Object.values(vsCpu));
    figures[`${provider}_max_abs_diff_vs_torch`] = Math.max(...Object.values(vsTorch));
    figures[`${provider}_episode_progress_max_diff_vs_cpu`] = episodeVsCpu;
    console.log(
      `${provider}: outputs vs cpu ${JSON.stringify(vsCpu)}, vs torch ${JSON.stringify(vsTorch)}, episode progress vs cpu ${episodeVsCpu}`,
    );
    await model.close();
    const timing = await timeModel(timeDir, provider, o.steps);
    Object.assign(figures, prefixed(provider, timing));
    console.log(
      `${provider}: step p50 ${timing.step_p50_ms} ms, p99 ${timing.step_p99_ms} ms; encode x64 p50 ${timing.encode64_p50_ms} ms`,
    );
  }
  await cpu.close();
  console.log(JSON.stringify(figures));
}

function prefixed(p: string, o: Record<string, number>): Figures {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${p}_${k}`, v]));
}

async function runParity(model: OnnxProgressModel) {
  const inp = await parityInputs();
  const graphs = {
    features: await model.encode(inp.pixels.data, inp.pixels.n),
    ...(await model.sarm(inp.sarm)),
    hop: await model.grm(inp.grm),
  };
  const ep = await parityEpisode();
  const engine = new RewardEngine(model);
  const episode = await engine.start({
    task: model.card.tasks[ep.taskIndex]!,
    gamma: 0.99,
    shaping: 'pbrs',
    progress: 'both',
    goal: ep.goal,
  });
  const progress: number[] = [];
  for (const frames of ep.frames) progress.push((await episode.step({ frames })).progress);
  return { graphs, reference: inp.reference, episode: progress };
}

async function timeModel(dir: string, provider: ExecutionProvider, steps: number): Promise<Record<string, number>> {
  const model = await OnnxProgressModel.load(dir, { providers: [provider], log: () => {} });
  const card = model.card;
  const rand = mulberry32(3);
  const pool: FrameSet[] = Array.from({ length: 8 }, (_, i) =>
    Object.fromEntries(
      card.views.map((v, j): [string, RawImage] => [v, renderDemoView(j, i / 7, card.image.height, card.image.width, rand)]),
    ),
  );
  const engine = new RewardEngine(model);
  const episode = await engine.start({ task: card.tasks[0]!, gamma: 0.99, shaping: 'pbrs', progress: card.grm.present ? 'both' : 'sarm' });
  const stepMs: number[] = [];
  for (let i = 0; i < steps + 20; i++) {
    const t0 = performance.now();
    await episode.step({ frames: pool[i % pool.length]! });
    if (i >= 20) stepMs.push(performance.now() - t0);
  }
  const batch = new Uint8Array(64 * card.image.height * card.image.width * 3).map((_, i) => (i * 31) & 255);
  const encMs: number[] = [];
  for (let i = 0; i < 40; i++) {
    const t0 = performance.now();
    await model.encode(batch, 64);
    if (i >= 5) encMs.push(performance.now() - t0);
  }
  await model.close();
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { step_p50_ms: r(median(stepMs)), step_p99_ms: r(quantile(stepMs, 0.99)), encode64_p50_ms: r(median(encMs)) };
}
