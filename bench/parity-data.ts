// The exporter's parity fixture (test/fixtures/parity) as engine inputs, for checks that compare
// execution providers outside the test suite (bench gpu).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readNpy } from '../datasets/npy.ts';
import type { GrmBatch, SarmBatch } from '../models/package.ts';
import type { FrameSet } from '../models/preprocess.ts';
import { REPO_ROOT } from '../core/paths.ts';

const DIR = join(REPO_ROOT, 'test', 'fixtures', 'parity');

async function arr(name: string) {
  return readNpy(join(DIR, `${name}.npy`));
}
const f32 = async (name: string) => (await arr(name)).data as Float32Array;
const ints = async (name: string) => Array.from((await arr(name)).data as BigInt64Array, Number);

export type GraphOutputs = Record<'features' | 'stageLogits' | 'tau' | 'hop', Float32Array>;

export async function parityInputs(): Promise<{
  pixels: { data: Uint8Array; n: number };
  sarm: SarmBatch;
  grm: GrmBatch;
  reference: GraphOutputs;
}> {
  const px = await arr('enc_pixels');
  return {
    pixels: { data: px.data as Uint8Array, n: px.shape[0]! },
    sarm: { features: await f32('sarm_features'), valid: await f32('sarm_valid'), task: await ints('sarm_task') },
    grm: {
      start: await f32('grm_start'),
      goal: await f32('grm_goal'),
      before: await f32('grm_before'),
      after: await f32('grm_after'),
      task: await ints('grm_task'),
    },
    reference: {
      features: await f32('enc_features'),
      stageLogits: await f32('sarm_stage_logits'),
      tau: await f32('sarm_tau'),
      hop: await f32('grm_hop'),
    },
  };
}

export async function parityEpisode(): Promise<{ taskIndex: number; frames: FrameSet[]; goal: FrameSet }> {
  const manifest = JSON.parse(await readFile(join(DIR, 'manifest.json'), 'utf8')) as { task_index: number };
  const card = JSON.parse(await readFile(join(REPO_ROOT, 'test', 'fixtures', 'tiny-model', 'model.json'), 'utf8')) as { views: string[] };
  const frames = await arr('ep_frames');
  const goal = await arr('ep_goal');
  const [steps, views, h, w] = frames.shape as [number, number, number, number];
  const size = h * w * 3;
  const set = (data: Uint8Array, base: number): FrameSet =>
    Object.fromEntries(
      card.views.map((v, i) => [
        v,
        { data: data.subarray(base + i * size, base + (i + 1) * size), height: h, width: w, channels: 3 as const },
      ]),
    );
  return {
    taskIndex: manifest.task_index,
    frames: Array.from({ length: steps }, (_, t) => set(frames.data as Uint8Array, t * views * size)),
    goal: set(goal.data as Uint8Array, 0),
  };
}

export function maxAbsDiffs(a: GraphOutputs, b: GraphOutputs): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(a) as (keyof GraphOutputs)[]) {
    let m = 0;
    for (let i = 0; i < a[k].length; i++) m = Math.max(m, Math.abs(a[k][i]! - b[k][i]!));
    out[k] = m;
  }
  return out;
}
