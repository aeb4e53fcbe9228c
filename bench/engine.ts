// Engine benchmark: per-step latency of the episode engine for every view at the model's resolution
// (preprocess, encode the new frames, window, SARM + GRM heads, progress, shaping), against the same
// network run step by step in PyTorch eager on the same machine in the same run.
//
//   npm run bench:engine
//   npm run bench:engine -- --steps 2000 --provider webgpu,cpu
//
// Last output line: {"engine_step_p50_ms", "engine_step_p99_ms", "torch_step_p50_ms", "speedup", ...}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RewardEngine, type ProgressSource } from '../models/engine.ts';
import { OnnxProgressModel } from '../models/package.ts';
import type { RawImage } from '../core/image.ts';
import { exportRandomPackage, runTrainer } from '../models/python.ts';
import type { ExecutionProvider } from '../models/runtime.ts';
import { mulberry32 } from '../core/random.ts';
import { renderDemoView } from './demo-episode.ts';
import { median, quantile } from '../core/stats.ts';

interface Options {
  steps: number;
  episodeLength: number;
  progress: ProgressSource;
  provider: ExecutionProvider[];
  threads: number;
  model?: string;
}

export const ENGINE_BENCH_DEFAULTS = {
  /** Timed steps per side (>= 1000 for the report). */
  steps: 1200,
  /** Steps per episode before a new one starts. */
  episodeLength: 200,
  progress: 'both' as ProgressSource,
  provider: ['cpu'] as ExecutionProvider[],
  /** Intra-op threads for ONNX Runtime (0: one per core) and torch (0: its default). */
  threads: 1,
};

const WARMUP_STEPS = 30;

export async function benchEngine(o: Options): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'stageward-bench-'));
  try {
    // absolute: the PyTorch side runs in models/train, where a path relative to here would not resolve
    let dir = o.model === undefined ? undefined : resolve(o.model);
    if (dir === undefined) {
      dir = join(tmp, 'model');
      exportRandomPackage(dir);
    }
    const engineMs = await timeEngine(dir, o);
    console.log('running the same network in PyTorch eager...');
    const r = runTrainer(
      [
        '-m',
        'stageward_train.bench_torch',
        '--model',
        dir,
        '--steps',
        String(o.steps),
        '--warmup',
        String(WARMUP_STEPS),
        '--episode-length',
        String(o.episodeLength),
        '--progress',
        o.progress,
        '--threads',
        String(o.threads),
      ],
      { capture: true },
    );
    if (r.status !== 0) throw new Error('the PyTorch benchmark failed');
    const torch = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      torch_step_p50_ms: number;
      torch_step_p99_ms: number;
      torch_version: string;
    };
    const figures = {
      engine_step_p50_ms: round(median(engineMs)),
      engine_step_p99_ms: round(quantile(engineMs, 0.99)),
      torch_step_p50_ms: round(torch.torch_step_p50_ms),
      torch_step_p99_ms: round(torch.torch_step_p99_ms),
      speedup: round(torch.torch_step_p50_ms / median(engineMs)),
      steps: o.steps,
      progress: o.progress,
      provider: o.provider.join(','),
      torch_version: torch.torch_version,
    };
    console.log(
      `engine (onnxruntime-node, ${o.provider.join('>')}): p50 ${figures.engine_step_p50_ms} ms, p99 ${figures.engine_step_p99_ms} ms over ${o.steps} steps`,
    );
    console.log(
      `PyTorch ${torch.torch_version} eager:            p50 ${figures.torch_step_p50_ms} ms, p99 ${figures.torch_step_p99_ms} ms`,
    );
    console.log(`speedup (torch p50 / engine p50): ${figures.speedup}x`);
    console.log(JSON.stringify(figures));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function timeEngine(dir: string, o: Options): Promise<number[]> {
  const model = await OnnxProgressModel.load(dir, { providers: o.provider, intraOpThreads: o.threads });
  const card = model.card;
  const engine = new RewardEngine(model);
  console.log(
    `engine: model ${card.name}, ${card.views.length} views at ${card.image.width}x${card.image.height}, providers ${JSON.stringify(model.providers)}`,
  );
  // Frames are made before timing: the clock covers the engine, not the scene generator.
  const rand = mulberry32(7);
  const pool: Record<string, RawImage>[] = [];
  for (let i = 0; i < 16; i++) {
    const frame: Record<string, RawImage> = {};
    card.views.forEach((v, j) => (frame[v] = renderDemoView(j, i / 15, card.image.height, card.image.width, rand)));
    pool.push(frame);
  }
  const samples: number[] = [];
  let episode = await engine.start({ task: card.tasks[0]!, gamma: 0.99, shaping: 'pbrs', progress: o.progress });
  for (let i = 0; i < o.steps + WARMUP_STEPS; i++) {
    if (i > 0 && i % o.episodeLength === 0) {
      await episode.end();
      episode = await engine.start({ task: card.tasks[0]!, gamma: 0.99, shaping: 'pbrs', progress: o.progress });
    }
    const t0 = performance.now();
    await episode.step({ frames: pool[i % pool.length]!, reward: 0 });
    const ms = performance.now() - t0;
    if (i >= WARMUP_STEPS) samples.push(ms);
  }
  await model.close();
  return samples;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
