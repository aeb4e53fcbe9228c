// The fuzz targets' ProgressModel: the fixture's card (test/fixtures/tiny-model/model.json) with
// outputs that are cheap, deterministic functions of the inputs, so the engine's whole step pipeline
// (views, preprocessing, feature cache, windows, heads, shaping) runs thousands of times a second
// without ONNX Runtime. The same idea as FakeProgressModel in test/server/helpers.ts, which cannot be
// imported here: that file pulls in vitest, ws and the server.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE_MODEL_DIR } from '../../core/paths.ts';
import { parseCard, type ModelCard } from '../../models/card.ts';
import type { GrmBatch, ProgressModel, SarmBatch, SarmOutput } from '../../models/package.ts';
import type { ExecutionProvider } from '../../models/runtime.ts';

let card: ModelCard | undefined;

/** The fixture model's card (3 views, 64 x 64, two tasks, a GRM head), read once. */
export function fixtureCard(): ModelCard {
  card ??= parseCard(JSON.parse(readFileSync(join(FIXTURE_MODEL_DIR, 'model.json'), 'utf8')));
  return card;
}

export class FuzzProgressModel implements ProgressModel {
  readonly card = fixtureCard();
  readonly providers: Record<string, ExecutionProvider> = { encoder: 'cpu', sarm: 'cpu', grm: 'cpu' };

  async encode(pixels: Uint8Array, n: number): Promise<Float32Array> {
    const d = this.card.featureDim;
    const per = pixels.length / n;
    const out = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let j = 0; j < per; j += 97) sum += pixels[i * per + j]!;
      for (let k = 0; k < d; k++) out[i * d + k] = (sum % 1000) / 1000 + k / d;
    }
    return out;
  }

  async sarm(batch: SarmBatch): Promise<SarmOutput> {
    const b = batch.task.length;
    const k = this.card.maxStages;
    const per = batch.features.length / b;
    const stageLogits = new Float32Array(b * k);
    const tau = new Float32Array(b);
    for (let i = 0; i < b; i++) {
      let s = 0;
      for (let j = 0; j < per; j++) s += batch.features[i * per + j]!;
      for (let c = 0; c < k; c++) stageLogits[i * k + c] = Math.sin(s + c);
      tau[i] = (Math.cos(s) + 1) / 2;
    }
    return { stageLogits, tau };
  }

  async grm(batch: GrmBatch): Promise<Float32Array> {
    const b = batch.task.length;
    const per = batch.after.length / b;
    const out = new Float32Array(b);
    for (let i = 0; i < b; i++) out[i] = Math.tanh(batch.after[i * per]! - batch.before[i * per]!);
    return out;
  }

  async close(): Promise<void> {}
}
