// Shared by the statistics and annotation tests: a small dataset with known values written through
// the dataset writer, and a plain re-statement of LeRobot's histogram quantile rule to compare with.
// The rule (lerobot/datasets/compute_stats.py, RunningQuantileStats): 5000 bins over
// [min - 1e-10, max + 1e-10] (numpy.linspace), bin i holds edges[i] <= x < edges[i + 1] (the last one
// also x = max edge); quantile q is the first bin whose cumulative count reaches q * n, interpolated
// linearly inside it; edges in float32 for float32 columns and images, float64 for int64 ones.

import { LeRobotDatasetWriter, type WriterOptions } from '../../datasets/writer.ts';
import type { DatasetSpec, RecordedEpisode, SubtaskSpan } from '../../datasets/types.ts';

export const S = 8;
export const SPEC: DatasetSpec = {
  robotType: 'stageward_mocap_gripper',
  fps: 10,
  views: ['front'],
  image: { height: S, width: S },
  stateNames: ['x', 'y'],
  actionNames: ['dx', 'dy'],
  stageNames: ['reach', 'grasp'],
};
export const LENGTHS = [10, 14];
export const SPANS: SubtaskSpan[][] = [
  [
    { name: 'reach', start: 0, end: 4 },
    { name: 'grasp', start: 5, end: 9 },
  ],
  [
    { name: 'reach', start: 1, end: 6 },
    { name: 'grasp', start: 9, end: 12 },
  ],
];

/** Pixel (x, y, channel c) of frame t of episode e. */
export function pixel(e: number, t: number, x: number, y: number, c: number): number {
  return (e * 31 + t * 7 + x * 3 + y * 5 + c * 50) % 256;
}

export const actionOf = (e: number, t: number) => [t, e + 0.5];
export const stateOf = (e: number, t: number) => [0.1 * t + e, (t * t) % 7];

export function episode(e: number): RecordedEpisode {
  const T = LENGTHS[e]!;
  const frame = (t: number) => {
    const data = new Uint8Array(S * S * 3);
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) data[(y * S + x) * 3 + c] = pixel(e, t, x, y, c);
    return { data, height: S, width: S, channels: 3 as const };
  };
  return {
    task: 'put the red cube in the bowl',
    frames: { front: Array.from({ length: T }, (_, t) => frame(t)) },
    state: Array.from({ length: T }, (_, t) => Float32Array.from(stateOf(e, t))),
    action: Array.from({ length: T }, (_, t) => Float32Array.from(actionOf(e, t))),
    reward: Array.from({ length: T }, (_, t) => (t === T - 1 ? 1 : 0)),
    trueStage: Array.from({ length: T }, (_, t) => (t < T / 2 ? 0 : 1)),
    trueProgress: Array.from({ length: T }, (_, t) => t / (T - 1)),
    subtasks: SPANS[e]!,
    success: true,
    meta: { seed: e },
  };
}

export async function writeDataset(dir: string, options: WriterOptions = {}): Promise<void> {
  const w = await LeRobotDatasetWriter.create(dir, SPEC, options);
  for (let e = 0; e < LENGTHS.length; e++) await w.addEpisode(episode(e));
  await w.finish();
}

/** The features of SPEC's datasets, in info.json order: stats.json and the episodes' stats/ columns follow it. */
export const FEATURES = [
  'action',
  'observation.state',
  'observation.images.front',
  'timestamp',
  'frame_index',
  'episode_index',
  'index',
  'task_index',
  'next.reward',
  'next.done',
  'annotation.true_stage',
  'annotation.true_progress',
];

export const QUANTILES = { q01: 0.01, q10: 0.1, q50: 0.5, q90: 0.9, q99: 0.99 } as const;

/** LeRobot's histogram quantiles of `values`, the rule restated naively. */
export function referenceQuantiles(values: readonly number[], precision: 'float32' | 'float64'): Record<keyof typeof QUANTILES, number> {
  const r = precision === 'float32' ? Math.fround : (x: number) => x;
  const n = values.length;
  const lo = values.reduce((a, b) => Math.min(a, b));
  const hi = values.reduce((a, b) => Math.max(a, b));
  if (n < 2) {
    const mean = values.reduce((a, b) => a + b, 0) / n;
    return { q01: mean, q10: mean, q50: mean, q90: mean, q99: mean };
  }
  const start = r(lo - 1e-10);
  const stop = r(hi + 1e-10);
  const step = r(r(stop - start) / 5000);
  const edge = (i: number) => (i === 5000 ? stop : r(r(i * step) + start));
  const hist = new Array<number>(5000).fill(0);
  for (const x of values) {
    let i = 4999;
    while (edge(i) > x) i--;
    hist[i]!++;
  }
  const out = {} as Record<keyof typeof QUANTILES, number>;
  for (const [key, q] of Object.entries(QUANTILES) as [keyof typeof QUANTILES, number][]) {
    const target = q * n;
    let cum = 0;
    let idx = 0;
    while (idx < 5000 && cum + hist[idx]! < target) cum += hist[idx++]!;
    if (idx === 0) out[key] = edge(0);
    else if (idx === 5000) out[key] = stop;
    else out[key] = edge(idx) + ((target - cum) / hist[idx]!) * r(edge(idx + 1) - edge(idx));
  }
  return out;
}

export const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;
export const std = (v: readonly number[]) => Math.sqrt(mean(v.map((x) => (x - mean(v)) ** 2)));
