// The bundled pick_place_fast package (a distilled encoder with pick_place's own heads) rewards like
// pick_place: its head graphs are pick_place's byte for byte, its card names that teacher by the
// encoder's hash, and on simulator episodes that no training or evaluation used its per-frame
// progress stays close to the full model's and its episodes end where the full model's do.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZOO_DIR } from '../../core/paths.ts';
import { RewardEngine } from '../../models/engine.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import type { RecordedEpisode } from '../../datasets/types.ts';
import { recordEpisodes } from '../../sim/record.ts';
import { createRenderer } from '../../sim/render/index.ts';

const FULL = join(ZOO_DIR, 'pick_place');
const FAST = join(ZOO_DIR, 'pick_place_fast');
const sha256 = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

let full: OnnxProgressModel;
let fast: OnnxProgressModel;
const episodes: RecordedEpisode[] = [];

async function progressOf(model: OnnxProgressModel, ep: RecordedEpisode): Promise<number[]> {
  const episode = await new RewardEngine(model).start({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs', progress: 'both' });
  const out: number[] = [];
  for (let t = 0; t < ep.reward.length; t++) {
    const frames = Object.fromEntries(Object.entries(ep.frames).map(([view, list]) => [view, list[t]!]));
    out.push((await episode.step({ frames, reward: t === 0 ? 0 : ep.reward[t - 1]! })).progress);
  }
  return out;
}

beforeAll(async () => {
  // simulator seeds no recorded set uses (a run seed s records seeds s * 100000 + i): mixed demonstrations, some flawed
  await recordEpisodes(
    { task: 'pick_place', renderer: createRenderer() },
    4,
    { seedBase: 39_500, source: { kind: 'expert', preset: 'mixed', maxIdleSteps: 10 } },
    async (ep) => {
      episodes.push(ep);
    },
  );
  [full, fast] = await Promise.all([OnnxProgressModel.load(FULL), OnnxProgressModel.load(FAST)]);
}, 60_000);

afterAll(async () => {
  await Promise.all([full?.close(), fast?.close()]);
});

describe('the bundled pick_place_fast package', () => {
  it("keeps pick_place's heads and names its teacher by the encoder's hash", async () => {
    for (const graph of ['sarm.onnx', 'grm.onnx']) expect(await sha256(join(FAST, graph))).toBe(await sha256(join(FULL, graph)));
    const card = JSON.parse(await readFile(join(FAST, 'model.json'), 'utf8')) as {
      architecture: { encoder_block?: string };
      provenance: { teacher: { encoder_sha256: string } };
    };
    expect(card.architecture.encoder_block).toBe('separable');
    expect(card.provenance.teacher.encoder_sha256).toBe(await sha256(join(FULL, 'encoder.onnx')));
    expect(fast.card.views).toEqual(full.card.views);
    expect(fast.card.stages).toEqual(full.card.stages);
  });

  it("gives per-frame progress close to the full model's on unseen episodes", async () => {
    let sum = 0;
    let n = 0;
    let worst = 0;
    for (const ep of episodes) {
      const [a, b] = await Promise.all([progressOf(full, ep), progressOf(fast, ep)]);
      for (let t = 0; t < a.length; t++) {
        const d = Math.abs(a[t]! - b[t]!);
        sum += d;
        n++;
        worst = Math.max(worst, d);
      }
      // the end of the episode reads the same way: done when done, short of it when not
      expect(Math.abs(a.at(-1)! - b.at(-1)!)).toBeLessThan(0.1);
    }
    expect(sum / n).toBeLessThan(0.03);
    expect(worst).toBeLessThan(0.25);
  }, 120_000);
});
