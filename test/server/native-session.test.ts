// The native protocol's state machine (server/native-session.ts) driven directly: decoded messages
// into handle(), the replies and refusals out, over a real RewardEngine (with the server's batching)
// and the fuzz targets' fast fake model (test/fuzz/fake-model.ts). No sockets, no ONNX: milliseconds
// per test. Values are checked against a second engine run directly on the same frames, and the
// shaping terms against their definitions (models/shaping.ts).

import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { StagewardError } from '../../core/errors.ts';
import { mulberry32 } from '../../core/random.ts';
import { BatchingProgressModel } from '../../models/batching.ts';
import type { ModelCard } from '../../models/card.ts';
import { RewardEngine, type EpisodeOptions } from '../../models/engine.ts';
import type { ProgressModel } from '../../models/package.ts';
import type { RawImage } from '../../core/image.ts';
import type { FrameSet } from '../../models/preprocess.ts';
import { ApiKeys } from '../../server/auth.ts';
import { decodeFrame } from '../../server/codec.ts';
import type { MissingViewsPolicy } from '../../server/config.ts';
import type { MessageContext } from '../../server/connection.ts';
import type { Decoded } from '../../server/msgpack.ts';
import { NativeSession } from '../../server/native-session.ts';
import { NdArray } from '../../server/ndarray.ts';
import { fixtureCard, FuzzProgressModel } from '../fuzz/fake-model.ts';
import {
  expectSameStep,
  FillModel,
  PICK_STAGES,
  pixels,
  referenceRun,
  refused,
  STACK_STAGES,
  STEP_FIELDS,
  type ReferenceStep,
  type Reply,
} from './session-fixtures.ts';
import { CONFIG, fuzzEngine, fuzzSession, LIMITS } from '../fuzz/harness.ts';

const CARD = fixtureCard();
const VIEWS = CARD.views; // front, side, wrist
const HELLO = { type: 'hello', protocol: 1, task: 'pick_place', gamma: 0.99, shaping: 'pbrs' };
const REWARD_KEYS = ['type', 'seq', ...STEP_FIELDS];

/** The fixture's card cut to its first task. */
class OneTaskModel extends FuzzProgressModel {
  override readonly card: ModelCard = {
    ...fixtureCard(),
    tasks: ['pick_place'],
    stages: [fixtureCard().stages[0]!],
    instructions: { pick_place: fixtureCard().instructions.pick_place! },
  };
}

/** An engine as the server builds it (batching over the model). */
function serverEngine(model: ProgressModel = new FuzzProgressModel()): RewardEngine {
  return new RewardEngine(new BatchingProgressModel(model, { ...CONFIG.batching }), { limits: { maxImagePixels: LIMITS.maxImagePixels } });
}

interface Setup {
  engine?: RewardEngine;
  keys?: string[];
  authenticated?: boolean;
  missingViews?: MissingViewsPolicy;
  promptMap?: Record<string, string>;
}
function open(s: Setup = {}): NativeSession {
  const engine = s.engine ?? fuzzEngine();
  return new NativeSession({
    ...fuzzSession(engine),
    missingViews: s.missingViews ?? 'refuse',
    promptMap: s.promptMap ?? {},
    keys: new ApiKeys(s.keys ?? CONFIG.apiKeys),
    authenticated: s.authenticated ?? false,
  });
}

/** Frames as the decoder hands them over: uint8 HWC numpy arrays. */
function frames(seed: number, views: readonly string[] = VIEWS): Record<string, NdArray> {
  return Object.fromEntries(views.map((v, i) => [v, new NdArray('|u1', [64, 64, 3], pixels(seed * 3 + i))]));
}
/** The same frames as raw images, for an engine called directly. */
function raw(seed: number, views: readonly string[] = VIEWS): FrameSet {
  return Object.fromEntries(
    views.map((v, i): [string, RawImage] => [v, { data: pixels(seed * 3 + i), height: 64, width: 64, channels: 3 }]),
  );
}

function ctx(queueMs = 0): MessageContext {
  const now = performance.now();
  return { receivedAt: now - queueMs, startedAt: now, kind: 'binary' };
}
const send = async (s: NativeSession, m: Record<string, unknown>, c: MessageContext = ctx()): Promise<Reply> =>
  (await s.handle(m as Decoded, c)) as Reply;

/** Steps of a reference episode, run on the engine directly. */
const reference = (options: EpisodeOptions, steps: ReferenceStep[], model?: ProgressModel) => referenceRun(options, steps, raw, model);

async function ready(s: NativeSession, extra: Record<string, unknown> = {}): Promise<Reply> {
  const r = await send(s, { ...HELLO, ...extra });
  expect(r.type).toBe('ready');
  return r;
}

describe('the session before and at hello', () => {
  it('is the native endpoint, sends no greeting, and awaits a hello until one succeeds', async () => {
    const s = open();
    expect(s.endpoint).toBe('native');
    expect(s.greeting()).toBeUndefined();
    expect(s.awaitingHello).toBe(true);
    await refused(send(s, { ...HELLO, gamma: 2 }), 'SW_ERR_BAD_OPTION');
    expect(s.awaitingHello).toBe(true);
    await ready(s);
    expect(s.awaitingHello).toBe(false);
  });

  it('refuses reset, step and end before hello, naming the message', async () => {
    const s = open();
    await refused(
      send(s, { type: 'step', seq: 0, frames: frames(0) }),
      'SW_ERR_NO_SESSION',
      'a step arrived before hello; send hello first',
    );
    await refused(send(s, { type: 'reset' }), 'SW_ERR_NO_SESSION', 'a reset arrived before hello; send hello first');
    await refused(send(s, { type: 'end' }), 'SW_ERR_NO_SESSION', 'a end arrived before hello; send hello first');
    await refused(send(s, { type: 'dance' }), 'SW_ERR_PROTOCOL', /unknown message type "dance"/);
    await refused(s.handle([1, 2] as Decoded, ctx()), 'SW_ERR_PROTOCOL', 'a message must be a map');
    expect(s.awaitingHello).toBe(true);
    await ready(s);
  });

  it('answers hello with ready: the session, the task and its stages, the model and the advertised limits', async () => {
    const s = open();
    const r = await send(s, HELLO);
    expect(r).toEqual({
      type: 'ready',
      session: 's1',
      replica: 'fuzz',
      protocol: 1,
      task: 'pick_place',
      task_match: 'id',
      filled_views: [],
      model: {
        name: 'tiny-fixture',
        version: '0.0.1',
        views: ['front', 'side', 'wrist'],
        stages: PICK_STAGES,
        image: { height: 64, width: 64 },
        fps: 10,
        grm: true,
      },
      limits: {
        maxPayloadBytes: LIMITS.maxPayloadBytes,
        maxImagePixels: LIMITS.maxImagePixels,
        maxViews: LIMITS.maxViews,
        maxInFlightSteps: LIMITS.maxInFlightSteps,
        idleTimeoutMs: LIMITS.idleTimeoutMs,
      },
    });
    expect(Object.keys(r)).toEqual(['type', 'session', 'replica', 'protocol', 'task', 'task_match', 'filled_views', 'model', 'limits']);
  });

  it("takes an instruction as the task and advertises that task's stages", async () => {
    const s = open();
    const r = await ready(s, { task: 'Stack the red cube on the green cube, then the yellow cube on the red cube.' });
    expect(r).toMatchObject({ task: 'stack_three', task_match: 'instruction', model: { stages: STACK_STAGES } });
    await send(s, { type: 'reset' });
    const step = await send(s, { type: 'step', frames: frames(1) });
    const ref = await reference({ task: 'stack_three', gamma: 0.99, shaping: 'pbrs' }, [{ seed: 1 }]);
    expectSameStep(step, ref.results[0]!);
    expect(STACK_STAGES).toContain(step.stage.name);
    expect(step.stage.probs).toHaveLength(7);
  });

  it('takes a promptMap key as the task', async () => {
    const s = open({ promptMap: { 'tidy the table': 'stack_three' } });
    expect(await ready(s, { task: '  Tidy the TABLE! ' })).toMatchObject({ task: 'stack_three', task_match: 'prompt_map' });
  });

  it('refuses a task the model lacks, even on a one-task model (a hello names its task; no fallback)', async () => {
    await refused(send(open(), { ...HELLO, task: 'fold_shirt' }), 'SW_ERR_TASK_UNKNOWN', /^task "fold_shirt" matches none/);
    const one = open({ engine: serverEngine(new OneTaskModel()) });
    await refused(send(one, { ...HELLO, task: 'juggle' }), 'SW_ERR_TASK_UNKNOWN', /^task "juggle" matches none/);
    expect(await ready(one)).toMatchObject({ task: 'pick_place', task_match: 'id' });
  });

  it('refuses a second hello, whatever it says, and keeps the first one', async () => {
    const s = open();
    await ready(s);
    const msg = 'this session already had its hello; open a new connection for other settings';
    await refused(send(s, HELLO), 'SW_ERR_PROTOCOL', msg);
    await refused(send(s, { ...HELLO, task: 'stack_three', gamma: 0.5 }), 'SW_ERR_PROTOCOL', msg);
    await send(s, { type: 'reset' });
    const r0 = await send(s, { type: 'step', frames: frames(0) });
    const r1 = await send(s, { type: 'step', frames: frames(1) });
    expect(PICK_STAGES).toContain(r1.stage.name);
    expect(r1.shaped).toBeCloseTo(0.99 * r1.progress - r0.progress, 12);
  });

  it('serves only its own model: by name or name@version', async () => {
    expect(await ready(open(), { model: 'tiny-fixture' })).toMatchObject({ type: 'ready' });
    expect(await ready(open(), { model: 'tiny-fixture@0.0.1' })).toMatchObject({ type: 'ready' });
    await refused(
      send(open(), { ...HELLO, model: 'tiny-fixture@0.0.2' }),
      'SW_ERR_MODEL_UNAVAILABLE',
      'this server serves model "tiny-fixture" (version 0.0.1), not "tiny-fixture@0.0.2"',
    );
    await refused(
      send(open(), { ...HELLO, model: '0.0.1' }),
      'SW_ERR_MODEL_UNAVAILABLE',
      'this server serves model "tiny-fixture" (version 0.0.1), not "0.0.1"',
    );
    // the echo of a client's string is bounded
    const long = 'm'.repeat(300);
    const e = await refused(send(open(), { ...HELLO, model: long }), 'SW_ERR_MODEL_UNAVAILABLE');
    expect(e.message).toBe(`this server serves model "tiny-fixture" (version 0.0.1), not "${'m'.repeat(64)}"... (300 characters)`);
  });

  it('checks every episode option at hello, not at the first reset', async () => {
    await refused(send(open(), { ...HELLO, gamma: 1.5 }), 'SW_ERR_BAD_OPTION', /gamma/);
    await refused(send(open(), { ...HELLO, shaping: 'magic' }), 'SW_ERR_BAD_OPTION', /shaping/);
    await refused(send(open(), { ...HELLO, progress: 'vibes' }), 'SW_ERR_BAD_OPTION', /progress/);
    await refused(send(open(), { ...HELLO, scale: 1e9 }), 'SW_ERR_BAD_OPTION', /scale/);
    await refused(send(open(), { ...HELLO, composition: 'mean' }), 'SW_ERR_BAD_OPTION', /composition/);
    await refused(send(open(), { ...HELLO, views: ['front', 'side', 'top'] }), 'SW_ERR_VIEW_UNKNOWN');
    await refused(send(open(), { ...HELLO, views: ['front', 'side'] }), 'SW_ERR_VIEW_MISSING', /wrist/);
    await refused(send(open(), { ...HELLO, shapping: 'pbrs' }), 'SW_ERR_PROTOCOL', /shapping/);
  });
});

describe('authentication', () => {
  const KEY = 'k-0123456789abcdef';
  const AUTH = 'an API key is required (header `Authorization: Api-Key <key>` or hello `api_key`)';

  it('with keys configured, a hello without a valid header needs a valid api_key', async () => {
    const none = open({ keys: [KEY] });
    const e = await refused(send(none, HELLO), 'SW_ERR_AUTH', AUTH);
    expect(e.closeCode).toBe(4401);
    expect(none.awaitingHello).toBe(true);
    await refused(send(open({ keys: [KEY] }), { ...HELLO, api_key: 'nope' }), 'SW_ERR_AUTH', 'the API key is not valid');
    await refused(send(open({ keys: [KEY, 'other'] }), { ...HELLO, api_key: `${KEY} ` }), 'SW_ERR_AUTH', 'the API key is not valid');
    expect(await ready(open({ keys: ['other', KEY] }), { api_key: KEY })).toMatchObject({ type: 'ready' });
  });

  it('a valid header key is enough, whatever the hello says', async () => {
    expect(await ready(open({ keys: [KEY], authenticated: true }))).toMatchObject({ type: 'ready' });
    expect(await ready(open({ keys: [KEY], authenticated: true }), { api_key: 'stale' })).toMatchObject({ type: 'ready' });
  });

  it('with no keys configured, access is open and any api_key is ignored', async () => {
    expect(await ready(open({ keys: [] }))).toMatchObject({ type: 'ready' });
    expect(await ready(open({ keys: [] }), { api_key: 'anything' })).toMatchObject({ type: 'ready' });
  });

  it('auth comes before the model and task checks, and a refused hello leaves the session waiting', async () => {
    const s = open({ keys: [KEY] });
    await refused(send(s, { ...HELLO, model: 'other', task: 'fold_shirt' }), 'SW_ERR_AUTH', AUTH);
    await refused(send(s, { type: 'reset' }), 'SW_ERR_NO_SESSION');
    expect(await ready(s, { api_key: KEY })).toMatchObject({ task: 'pick_place' });
  });
});

describe('episodes: reset, step, end', () => {
  it('reset answers episode with its label: the client label, else the count of episodes started', async () => {
    const s = open();
    await ready(s);
    expect(await send(s, { type: 'reset' })).toEqual({ type: 'episode', episode: 0 });
    expect(await send(s, { type: 'reset' })).toEqual({ type: 'episode', episode: 1 });
    expect(await send(s, { type: 'reset', episode: 'run-7/ep-2' })).toEqual({ type: 'episode', episode: 'run-7/ep-2' });
    expect(await send(s, { type: 'reset', episode: null })).toEqual({ type: 'episode', episode: 3 });
    expect(await send(s, { type: 'reset', episode: 0 })).toEqual({ type: 'episode', episode: 0 });
    await refused(send(s, { type: 'reset', episode: -1 }), 'SW_ERR_PROTOCOL', /episode/);
    const step = await send(s, { type: 'step', seq: 9, frames: frames(0) });
    expect(step).toMatchObject({ episode: 0, step: 0 });
  });

  it('a step or end with no episode is refused until a reset', async () => {
    const s = open();
    await ready(s);
    await refused(
      send(s, { type: 'step', seq: 0, frames: frames(0) }),
      'SW_ERR_NO_EPISODE',
      'a step arrived with no episode; send reset first',
    );
    await refused(send(s, { type: 'end' }), 'SW_ERR_NO_EPISODE', 'end arrived with no episode; send reset first');
    await send(s, { type: 'reset' });
    expect(await send(s, { type: 'step', frames: frames(0) })).toMatchObject({ type: 'reward', step: 0 });
  });

  it('step replies carry the engine result for the frames, seq echoed, PBRS shaping from the hello', async () => {
    const s = open();
    await ready(s);
    await send(s, { type: 'reset' });
    const r0 = await send(s, { type: 'step', seq: 0, t: 0, frames: frames(0) }, ctx(4));
    expect(Object.keys(r0)).toEqual(REWARD_KEYS);
    expect(r0).toMatchObject({ type: 'reward', seq: 0, episode: 0, step: 0, reward: 0, shaped: 0, done: false, uncertainty: null });
    expect(Object.keys(r0.timing)).toEqual(['queue_ms', 'infer_ms', 'total_ms']);
    expect(r0.timing.queue_ms).toBeCloseTo(4, 2);
    const r1 = await send(s, { type: 'step', seq: 17, t: 5, frames: frames(1), reward: 0.25 });
    const r2 = await send(s, { type: 'step', frames: frames(2), reward: -1 });
    expect(r2).not.toHaveProperty('seq');
    expect(Object.keys(r2)).toEqual(REWARD_KEYS.filter((k) => k !== 'seq'));
    expect(r1).toMatchObject({ seq: 17, step: 1, reward: 0.25 });
    const ref = await reference({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs' }, [
      { seed: 0 },
      { seed: 1, reward: 0.25 },
      { seed: 2, reward: -1 },
    ]);
    [r0, r1, r2].forEach((r, i) => expectSameStep(r, ref.results[i]!));
    // reward = r + gamma * Phi(s') - Phi(s)
    expect(r1.shaped).toBeCloseTo(0.25 + 0.99 * r1.progress - r0.progress, 12);
    expect(r2.shaped).toBeCloseTo(-1 + 0.99 * r2.progress - r1.progress, 12);
    // the frames matter: other frames, another progress
    expect(new Set([r0.progress, r1.progress, r2.progress]).size).toBe(3);
  });

  it('uses the hello options in every episode: gamma, shaping, scale, composition, progress', async () => {
    const cases: [Record<string, unknown>, EpisodeOptions][] = [
      [
        { gamma: 0.5, shaping: 'delta', scale: 2 },
        { task: 'pick_place', gamma: 0.5, shaping: 'delta', scale: 2 },
      ],
      [
        { gamma: 0.9, shaping: 'progress' },
        { task: 'pick_place', gamma: 0.9, shaping: 'progress' },
      ],
      [{ shaping: 'sparse' }, { task: 'pick_place', gamma: 0.99, shaping: 'sparse' }],
      [
        { composition: 'expected', task: 'stack_three' },
        { task: 'stack_three', gamma: 0.99, shaping: 'pbrs', composition: 'expected' },
      ],
      [{ progress: 'grm' }, { task: 'pick_place', gamma: 0.99, shaping: 'pbrs', progress: 'grm' }],
      [
        { progress: 'both', scale: -3 },
        { task: 'pick_place', gamma: 0.99, shaping: 'pbrs', progress: 'both', scale: -3 },
      ],
    ];
    for (const [hello, options] of cases) {
      const s = open();
      await ready(s, hello);
      const ref = await reference(options, [{ seed: 3 }, { seed: 4, reward: 0.5 }, { seed: 5, reward: 1 }]);
      for (const episode of [0, 1]) {
        expect(await send(s, { type: 'reset' })).toEqual({ type: 'episode', episode });
        const replies = [
          await send(s, { type: 'step', frames: frames(3) }),
          await send(s, { type: 'step', frames: frames(4), reward: 0.5 }),
          await send(s, { type: 'step', frames: frames(5), reward: 1 }),
        ];
        replies.forEach((r, i) => expectSameStep(r, ref.results[i]!));
      }
    }
  });

  it('a reset mid-episode drops it without a summary and starts over from step 0', async () => {
    const s = open();
    await ready(s);
    await send(s, { type: 'reset', episode: 'a' });
    await send(s, { type: 'step', frames: frames(7) });
    await send(s, { type: 'step', frames: frames(8) });
    expect(await send(s, { type: 'reset', episode: 'b' })).toEqual({ type: 'episode', episode: 'b' });
    const r0 = await send(s, { type: 'step', frames: frames(0) });
    const r1 = await send(s, { type: 'step', frames: frames(1) });
    const ref = await reference({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs' }, [{ seed: 0 }, { seed: 1 }]);
    expectSameStep(r0, ref.results[0]!);
    expectSameStep(r1, ref.results[1]!);
    expect(await send(s, { type: 'end' })).toMatchObject({ type: 'summary', episode: 'b', steps: 2 });
  });

  it('end answers the summary of the episode, with the client flags over the steps, and ends it', async () => {
    const s = open();
    await ready(s);
    await send(s, { type: 'reset', episode: 4 });
    await send(s, { type: 'step', frames: frames(0) });
    await send(s, { type: 'step', frames: frames(1), reward: 2 });
    await send(s, { type: 'step', frames: frames(2), reward: 0.5 });
    const summary = await send(s, { type: 'end', success: true, truncated: true });
    const ref = await reference({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs' }, [
      { seed: 0 },
      { seed: 1, reward: 2 },
      { seed: 2, reward: 0.5 },
    ]);
    expect(summary).toEqual({
      type: 'summary',
      episode: 4,
      steps: 3,
      final_progress: ref.summary.finalProgress,
      max_progress: ref.summary.maxProgress,
      shaped_return: ref.summary.shapedReturn,
      env_return: 2.5,
      terminated: false,
      truncated: true,
      success: true,
    });
    expect(summary.final_progress).toBe(ref.results[2]!.progress);
    await refused(send(s, { type: 'step', frames: frames(3) }), 'SW_ERR_NO_EPISODE');
    await refused(send(s, { type: 'end' }), 'SW_ERR_NO_EPISODE', 'end arrived with no episode; send reset first');
    // the next episode is counted on: the label is the number of episodes started
    expect(await send(s, { type: 'reset' })).toEqual({ type: 'episode', episode: 1 });
    expect(await send(s, { type: 'end' })).toEqual({
      type: 'summary',
      episode: 1,
      steps: 0,
      final_progress: 0,
      max_progress: 0,
      shaped_return: 0,
      env_return: 0,
      terminated: false,
      truncated: false,
    });
  });

  it('a terminated or truncated step ends the episode: further steps are refused, end reports the flags', async () => {
    for (const flag of ['terminated', 'truncated'] as const) {
      const s = open();
      await ready(s);
      await send(s, { type: 'reset' });
      await send(s, { type: 'step', frames: frames(0) });
      const last = await send(s, { type: 'step', seq: 1, frames: frames(1), reward: 1, [flag]: true });
      expect(last).toMatchObject({ seq: 1, step: 1, done: true });
      const ref = await reference({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs' }, [
        { seed: 0 },
        { seed: 1, reward: 1, [flag]: true },
      ]);
      expectSameStep(last, ref.results[1]!);
      await refused(send(s, { type: 'step', seq: 2, frames: frames(2) }), 'SW_ERR_EPISODE_ENDED');
      expect(await send(s, { type: 'end' })).toMatchObject({
        steps: 2,
        terminated: flag === 'terminated',
        truncated: flag === 'truncated',
      });
    }
  });

  it('passes reward and flags on to the engine, which checks them', async () => {
    const s = open();
    await ready(s);
    await send(s, { type: 'reset' });
    await refused(send(s, { type: 'step', seq: 3, frames: frames(0), reward: 'a lot' }), 'SW_ERR_BAD_VALUE', /reward/);
    await refused(send(s, { type: 'step', frames: frames(0), terminated: 1 }), 'SW_ERR_BAD_VALUE', /terminated/);
    await refused(send(s, { type: 'step', frames: frames(0), truncated: 'yes' }), 'SW_ERR_BAD_VALUE', /truncated/);
    await refused(send(s, { type: 'step', frames: { ...frames(0), top: frames(1).front } }), 'SW_ERR_VIEW_UNKNOWN');
    await refused(send(s, { type: 'step', frames: frames(0, ['front']) }), 'SW_ERR_VIEW_MISSING');
    // failed steps change nothing: this is still step 0
    expect(await send(s, { type: 'step', frames: frames(0), reward: 3 })).toMatchObject({ step: 0, reward: 3, shaped: 3 });
  });

  it('`t`, when given, must increase within an episode; failed steps and steps without t do not move it', async () => {
    const s = open();
    await ready(s);
    await send(s, { type: 'reset' });
    expect(await send(s, { type: 'step', t: 0, frames: frames(0) })).toMatchObject({ step: 0 });
    await refused(
      send(s, { type: 'step', t: 0, frames: frames(1) }),
      'SW_ERR_PROTOCOL',
      '`t` must increase within an episode: 0 follows 0',
    );
    expect(await send(s, { type: 'step', t: 3, frames: frames(1) })).toMatchObject({ step: 1 });
    expect(await send(s, { type: 'step', frames: frames(2) })).toMatchObject({ step: 2 });
    await refused(
      send(s, { type: 'step', t: 2, frames: frames(3) }),
      'SW_ERR_PROTOCOL',
      '`t` must increase within an episode: 2 follows 3',
    );
    await refused(
      send(s, { type: 'step', t: 3, frames: frames(3) }),
      'SW_ERR_PROTOCOL',
      '`t` must increase within an episode: 3 follows 3',
    );
    await refused(send(s, { type: 'step', t: 4, frames: frames(3), reward: Number.NaN }), 'SW_ERR_BAD_VALUE');
    expect(await send(s, { type: 'step', t: 4, frames: frames(3) })).toMatchObject({ step: 3 });
    await refused(send(s, { type: 'step', t: 1.5, frames: frames(4) }), 'SW_ERR_PROTOCOL', /`t` must be a non-negative integer/);
    // a new episode starts the clock again
    await send(s, { type: 'reset' });
    expect(await send(s, { type: 'step', t: 0, frames: frames(0) })).toMatchObject({ step: 0 });
    await send(s, { type: 'reset' });
    expect(await send(s, { type: 'step', t: 1, frames: frames(0) })).toMatchObject({ step: 0 });
    expect(await send(s, { type: 'step', t: 2, frames: frames(0) })).toMatchObject({ step: 1 });
  });
});

describe('goal frames', () => {
  it('are refused unless the hello chose progress grm or both', async () => {
    const msg = '`goal` is used only with progress "grm" or "both"; this session\'s hello chose "sarm"';
    for (const hello of [{}, { progress: 'sarm' }]) {
      const s = open();
      await ready(s, hello);
      await refused(send(s, { type: 'reset', goal: frames(9) }), 'SW_ERR_BAD_OPTION', msg);
      // the refusal started nothing
      await refused(send(s, { type: 'step', frames: frames(0) }), 'SW_ERR_NO_EPISODE');
      expect(await send(s, { type: 'reset', goal: null })).toEqual({ type: 'episode', episode: 0 });
    }
  });

  it('anchor GRM progress with grm or both, exactly as the engine does', async () => {
    for (const progress of ['grm', 'both'] as const) {
      const s = open();
      await ready(s, { progress });
      await refused(send(s, { type: 'reset', goal: frames(9, ['front']) }), 'SW_ERR_VIEW_MISSING');
      expect(await send(s, { type: 'reset', goal: frames(9) })).toEqual({ type: 'episode', episode: 0 });
      const replies = [await send(s, { type: 'step', frames: frames(0) }), await send(s, { type: 'step', frames: frames(1) })];
      const engine = new RewardEngine(new FuzzProgressModel());
      const ep = await engine.start({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs', progress, goal: raw(9) });
      for (const [i, r] of replies.entries()) {
        expectSameStep(r, await ep.step({ frames: raw(i) }));
        expect(r.hop).toBeTypeOf('number');
        expect(r.heads.grm).toBeTypeOf('number');
      }
    }
  });
});

describe('missing views', () => {
  it('with missingViews "fill", the views a hello leaves out are filled and listed in ready', async () => {
    const s = open({ engine: serverEngine(new FillModel()), missingViews: 'fill' });
    const r = await ready(s, { views: ['wrist', 'front'] });
    expect(r.filled_views).toEqual(['side']);
    await send(s, { type: 'reset' });
    const two = ['front', 'wrist'];
    const replies = [await send(s, { type: 'step', frames: frames(0, two) }), await send(s, { type: 'step', frames: frames(1, two) })];
    const ref = await reference(
      { task: 'pick_place', gamma: 0.99, shaping: 'pbrs', views: two, fill: ['side'] },
      [{ seed: 0 }, { seed: 1 }],
      new FillModel(),
    );
    replies.forEach((x, i) => expectSameStep(x, ref.results[i]!));
    // the filled view must not be sent
    await refused(send(s, { type: 'step', frames: frames(2) }), 'SW_ERR_VIEW_UNKNOWN', /filled/);
    // ... and every episode of the session fills it
    await send(s, { type: 'reset' });
    expect(await send(s, { type: 'step', frames: frames(0, two) })).toMatchObject({ step: 0, progress: ref.results[0]!.progress });
  });

  it('with missingViews "fill", a hello that lists every view, or none, fills nothing', async () => {
    for (const views of [undefined, ['front', 'side', 'wrist']]) {
      const s = open({ engine: serverEngine(new FillModel()), missingViews: 'fill' });
      expect((await ready(s, views === undefined ? {} : { views })).filled_views).toEqual([]);
      await send(s, { type: 'reset' });
      await refused(send(s, { type: 'step', frames: frames(0, ['front', 'wrist']) }), 'SW_ERR_VIEW_MISSING');
      expect(await send(s, { type: 'step', frames: frames(0) })).toMatchObject({ step: 0 });
    }
  });

  it('a failed hello with a fill does not leave it behind for the next hello', async () => {
    const s = open({ engine: serverEngine(new FillModel()), missingViews: 'fill' });
    await refused(send(s, { ...HELLO, views: ['front', 'wrist'], gamma: -1 }), 'SW_ERR_BAD_OPTION');
    expect((await ready(s)).filled_views).toEqual([]);
    await send(s, { type: 'reset' });
    expect(await send(s, { type: 'step', frames: frames(0) })).toMatchObject({ step: 0 });
  });

  it('with missingViews "refuse" (the default) a missing view is refused, even when the card could fill it', async () => {
    const s = open({ engine: serverEngine(new FillModel()), missingViews: 'refuse' });
    await refused(send(s, { ...HELLO, views: ['front', 'wrist'] }), 'SW_ERR_VIEW_MISSING', /side/);
    expect((await ready(s, { views: ['front', 'side', 'wrist'] })).filled_views).toEqual([]);
  });

  it('with missingViews "fill" on a card that declares no fill, a missing view is refused at hello', async () => {
    const s = open({ missingViews: 'fill' });
    await refused(send(s, { ...HELLO, views: ['front'] }), 'SW_ERR_BAD_OPTION', /missing_views/);
  });
});

describe('error frames and disposal', () => {
  it('encodes an error in the request format, with the seq when there is one and a bounded message', () => {
    const s = open();
    const err = new StagewardError('SW_ERR_BAD_VALUE', 'bad reward');
    const bin = s.errorFrame(err, 3, 'binary');
    expect(bin.kind).toBe('binary');
    expect(decodeFrame(bin.data as Buffer, 'binary', LIMITS)).toEqual({
      type: 'error',
      seq: 3,
      code: 'SW_ERR_BAD_VALUE',
      message: 'bad reward',
    });
    const text = s.errorFrame(err, undefined, 'text');
    expect(text.kind).toBe('text');
    expect(typeof text.data).toBe('string');
    expect(JSON.parse(text.data as string)).toEqual({ type: 'error', code: 'SW_ERR_BAD_VALUE', message: 'bad reward' });
    const long = JSON.parse(s.errorFrame(new StagewardError('SW_ERR_PROTOCOL', 'x'.repeat(2000)), 0, 'text').data as string);
    expect(long).toMatchObject({ seq: 0, code: 'SW_ERR_PROTOCOL' });
    expect(long.message).toHaveLength(512);
  });

  it('dispose drops the running episode', async () => {
    const s = open();
    await ready(s);
    await send(s, { type: 'reset' });
    await send(s, { type: 'step', frames: frames(0) });
    s.dispose();
    await refused(send(s, { type: 'step', frames: frames(1) }), 'SW_ERR_NO_EPISODE');
    await refused(send(s, { type: 'end' }), 'SW_ERR_NO_EPISODE');
    expect(s.awaitingHello).toBe(false);
  });
});

describe('a seeded random walk over the message types', () => {
  it('answers every message as a model of the state machine says', async () => {
    const rand = mulberry32(20260516);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const s = open();
    let hello = false;
    let episode: 'none' | 'running' | 'done' = 'none';
    let steps = 0;
    let lastT = -1;
    let started = 0;
    let label: string | number = 0;
    for (let i = 0; i < 150; i++) {
      const kind = pick(['hello', 'hello', 'reset', 'step', 'step', 'step', 'step', 'end', 'badstep'] as const);
      if (kind === 'hello') {
        const p = send(s, HELLO);
        if (hello) await refused(p, 'SW_ERR_PROTOCOL', /already/);
        else expect((await p).type).toBe('ready');
        hello = true;
      } else if (!hello) {
        const m = kind === 'reset' || kind === 'end' ? { type: kind } : { type: 'step', frames: frames(0) };
        await refused(send(s, m), 'SW_ERR_NO_SESSION');
      } else if (kind === 'reset') {
        const l = rand() < 0.5 ? `e${i}` : undefined;
        label = l ?? started;
        started++;
        expect(await send(s, { type: 'reset', ...(l === undefined ? {} : { episode: l }) })).toEqual({ type: 'episode', episode: label });
        episode = 'running';
        steps = 0;
        lastT = -1;
      } else if (kind === 'end') {
        const p = send(s, { type: 'end' });
        if (episode === 'none') await refused(p, 'SW_ERR_NO_EPISODE');
        else expect(await p).toMatchObject({ type: 'summary', episode: label, steps });
        episode = 'none';
      } else {
        const t = rand() < 0.6 ? Math.floor(rand() * 40) : undefined;
        const terminated = rand() < 0.05;
        const bad = kind === 'badstep';
        const p = send(s, {
          type: 'step',
          seq: i,
          frames: frames(i % 5),
          ...(t === undefined ? {} : { t }),
          terminated,
          ...(bad ? { reward: Number.POSITIVE_INFINITY } : {}),
        });
        if (episode === 'none') await refused(p, 'SW_ERR_NO_EPISODE');
        else if (t !== undefined && t <= lastT) await refused(p, 'SW_ERR_PROTOCOL', /`t` must increase/);
        else if (episode === 'done') await refused(p, 'SW_ERR_EPISODE_ENDED');
        else if (bad) await refused(p, 'SW_ERR_BAD_VALUE');
        else {
          expect(await p).toMatchObject({ type: 'reward', seq: i, episode: label, step: steps, done: terminated });
          steps++;
          if (t !== undefined) lastT = t;
          if (terminated) episode = 'done';
        }
      }
    }
  });
});
