// The replay model behind offline scoring: it answers an engine Episode from batched results and
// refuses (SW_ERR_INTERNAL) a head call whose inputs differ from the batched ones, so a window built
// differently can never turn into a silently different number.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCard } from '../../../models/card.ts';
import { RewardEngine } from '../../../models/engine.ts';
import { windowIndices } from '../../../models/window.ts';
import { ReplayModel } from '../../../offline/score/replay-model.ts';
import { expectCode, FIXTURE_MODEL_DIR } from '../../helpers.ts';

const card = parseCard(JSON.parse(readFileSync(join(FIXTURE_MODEL_DIR, 'model.json'), 'utf8')));
const V = card.views.length;
const D = card.featureDim;
const T = card.window.length;
const frame = () =>
  Object.fromEntries(
    card.views.map((v) => [
      v,
      {
        data: new Uint8Array(card.image.width * card.image.height * 3),
        width: card.image.width,
        height: card.image.height,
        channels: 3 as const,
      },
    ]),
  );

function sarmInput(t: number, features: (f: number) => Float32Array) {
  const batch = { features: new Float32Array(T * V * D), valid: new Float32Array(T), task: [0] };
  windowIndices(t, card.window).forEach((f, j) => {
    if (f < 0) return;
    batch.features.set(features(f), j * V * D);
    batch.valid[j] = 1;
  });
  return batch;
}

describe('ReplayModel', () => {
  const feats = (f: number) => new Float32Array(V * D).fill(f + 1);
  const logits = Float32Array.of(0, 3, 1, 0, 0, 0).subarray(0, card.maxStages);

  it('answers the engine with the batched outputs, which the engine turns into progress', async () => {
    const replay = new ReplayModel(card, false);
    const episode = await new RewardEngine(replay).start({ task: 'pick_place', gamma: 1, shaping: 'delta' });
    for (let t = 0; t < 3; t++)
      replay.push({
        frame: t,
        features: feats(t),
        sarm: { input: { batch: sarmInput(t, feats), row: 0, rows: 1 }, stageLogits: logits, tau: 0.5 },
      });
    for (let t = 0; t < 3; t++) {
      const r = await episode.step({ frames: frame() });
      expect(r.stage.index).toBe(1);
      expect(r.tau).toBe(0.5);
    }
    replay.compact();
    expect(replay.queued).toBe(0);
  });

  it('refuses a window that differs from the batched one', async () => {
    const replay = new ReplayModel(card, false);
    const episode = await new RewardEngine(replay).start({ task: 'pick_place', gamma: 1, shaping: 'delta' });
    replay.push({
      frame: 0,
      features: feats(0),
      sarm: { input: { batch: sarmInput(0, feats), row: 0, rows: 1 }, stageLogits: logits, tau: 0.5 },
    });
    const wrong = (f: number) => new Float32Array(V * D).fill(f + 2); // batched from other features
    replay.push({
      frame: 1,
      features: feats(1),
      sarm: { input: { batch: sarmInput(1, wrong), row: 0, rows: 1 }, stageLogits: logits, tau: 0.5 },
    });
    await episode.step({ frames: frame() });
    await expectCode(episode.step({ frames: frame() }), 'SW_ERR_INTERNAL', 'SARM window features for frame 1');
  });
});
