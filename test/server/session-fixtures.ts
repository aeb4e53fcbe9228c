// What the protocol state machines' unit tests share (native-session.test.ts, openpi-session.test.ts):
// the fixture models, the deterministic test images, the refusal check, and the reference run of an
// episode on the engine directly that a session's replies are compared with.

import { expect } from 'vitest';
import { StagewardError, type ErrorCode } from '../../core/errors.ts';
import type { ModelCard } from '../../models/card.ts';
import { RewardEngine, type EpisodeOptions, type EpisodeSummary, type StepResult } from '../../models/engine.ts';
import type { ProgressModel } from '../../models/package.ts';
import type { FrameSet } from '../../models/preprocess.ts';
import { fixtureCard, FuzzProgressModel } from '../fuzz/fake-model.ts';

export type Reply = Record<string, any>;

/** The fixture card's stage names per task (test/fixtures/tiny-model/model.json). */
export const PICK_STAGES = ['reach', 'grasp', 'lift', 'carry', 'place'];
export const STACK_STAGES = ['reach_a', 'grasp_a', 'stack_a', 'reach_b', 'grasp_b', 'stack_b', 'retreat'];

/** The step result's fields as a reward reply carries them, in order (server/PROTOCOL.md). */
export const STEP_FIELDS = ['episode', 'step', 'progress', 'stage', 'tau', 'heads', 'uncertainty', 'reward', 'shaped', 'done', 'timing'];

/** The fixture's card with a declared fill for missing views (missingViews "fill" needs one). */
export class FillModel extends FuzzProgressModel {
  override readonly card: ModelCard = { ...fixtureCard(), missingViews: { fill: 'black' } };
}

/** A 64 x 64 RGB uint8 image whose pixels follow `seed` (the fake model's outputs follow the pixels). */
export function pixels(seed: number): Uint8Array {
  return Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 7 + seed * 31 + ((i * seed) % 13)) % 256);
}

/** The refusal `p` rejects with: a StagewardError of `code`, with exactly `message` when given. */
export async function refused(p: Promise<unknown>, code: ErrorCode, message?: string | RegExp): Promise<StagewardError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected a refusal ${code}`).toBeInstanceOf(StagewardError);
  const e = err as StagewardError;
  expect(e.code, e.message).toBe(code);
  if (typeof message === 'string') expect(e.message).toBe(message);
  else if (message !== undefined) expect(e.message).toMatch(message);
  return e;
}

export interface ReferenceStep {
  seed: number;
  reward?: number;
  terminated?: boolean;
}

/**
 * An episode run on an engine directly (no batching, no session): `raw(seed, views)` gives each step's
 * frames for the views the client sends (the model's, less `options.fill`).
 */
export async function referenceRun(
  options: EpisodeOptions,
  steps: readonly ReferenceStep[],
  raw: (seed: number, views: readonly string[]) => FrameSet,
  model?: ProgressModel,
): Promise<{ results: StepResult[]; summary: EpisodeSummary }> {
  const engine = new RewardEngine(model ?? new FuzzProgressModel());
  const episode = await engine.start(options);
  const views = engine.card.views.filter((v) => !(options.fill ?? []).includes(v));
  const results: StepResult[] = [];
  for (const { seed, ...rest } of steps) results.push(await episode.step({ frames: raw(seed, views), ...rest }));
  return { results, summary: await episode.end() };
}

/** A reply carries the engine's step result field for field. */
export function expectSameStep(reply: Reply, r: StepResult): void {
  expect(reply.step).toBe(r.step);
  expect(reply.progress).toBe(r.progress);
  expect(reply.stage).toEqual(r.stage);
  expect(reply.tau).toBe(r.tau);
  expect(reply.heads).toEqual(r.heads);
  expect(reply.hop).toBe(r.hop);
  expect(reply.uncertainty).toBe(r.uncertainty);
  expect(reply.reward).toBe(r.reward);
  expect(reply.shaped).toBe(r.shaped);
  expect(reply.done).toBe(r.done);
}
