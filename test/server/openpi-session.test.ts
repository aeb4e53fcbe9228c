// The openpi-compatible protocol (server/openpi-session.ts) driven directly: observation dicts into
// handle(), reward dicts and refusals out, over a real RewardEngine (with the server's batching) and
// the fuzz targets' fast fake model (test/fuzz/fake-model.ts). No sockets, no ONNX. Episode
// boundaries are inferred from the observations (reset, episode id, prompt, terminal flags, a pause),
// so the clock each observation arrives at is set by the test (MessageContext.receivedAt).

import { describe, expect, it } from 'vitest';
import { StagewardError } from '../../core/errors.ts';
import { mulberry32 } from '../../core/random.ts';
import { BatchingProgressModel } from '../../models/batching.ts';
import { RewardEngine, type EpisodeOptions } from '../../models/engine.ts';
import type { ProgressModel } from '../../models/package.ts';
import type { RawImage } from '../../core/image.ts';
import type { FrameSet } from '../../models/preprocess.ts';
import type { MissingViewsPolicy, OpenpiConfig } from '../../server/config.ts';
import type { MessageContext } from '../../server/connection.ts';
import { decodeMsgpack, type Decoded } from '../../server/msgpack.ts';
import { NdArray } from '../../server/ndarray.ts';
import { checkOpenpiConfig, observationValue, OpenpiSession } from '../../server/openpi-session.ts';
import { fixtureCard } from '../fuzz/fake-model.ts';
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
const KEYS: Record<string, string> = { 'observation/image': 'front', 'observation/side_image': 'side', 'observation/wrist_image': 'wrist' };
const REPLY_KEYS = [...STEP_FIELDS, 'task', 'new_episode'];
const PBRS: EpisodeOptions = { task: 'pick_place', gamma: 0.99, shaping: 'pbrs' };

interface Setup {
  openpi?: Partial<OpenpiConfig>;
  engine?: RewardEngine;
  missingViews?: MissingViewsPolicy;
  promptMap?: Record<string, string>;
}
function open(s: Setup = {}): OpenpiSession {
  const engine = s.engine ?? fuzzEngine();
  return new OpenpiSession({
    ...fuzzSession(engine),
    missingViews: s.missingViews ?? 'refuse',
    promptMap: s.promptMap ?? {},
    openpi: { ...CONFIG.openpi, ...s.openpi },
  });
}

const image = (seed: number) => new NdArray('|u1', [64, 64, 3], pixels(seed));
/** The model's views as raw images (view i of seed s is image 3s + i), for an engine called directly. */
function raw(seed: number, views: readonly string[] = VIEWS): FrameSet {
  return Object.fromEntries(
    views.map((v): [string, RawImage] => [v, { data: pixels(seed * 3 + VIEWS.indexOf(v)), height: 64, width: 64, channels: 3 }]),
  );
}
/** An observation with the default keys, images following `seed`, prompt pick_place. */
function obs(seed: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'observation/image': image(seed * 3),
    'observation/side_image': image(seed * 3 + 1),
    'observation/wrist_image': image(seed * 3 + 2),
    'observation/state': new NdArray('<f4', [2], new Uint8Array(8)),
    prompt: 'pick_place',
    ...extra,
  };
}

/** A clock: each observation arrives `dt` ms (default 10) after the previous one. */
function clock(start = 100_000) {
  let now = start;
  return (dt = 10, queueMs = 0): MessageContext => {
    now += dt;
    return { receivedAt: now, startedAt: now + queueMs, kind: 'binary' };
  };
}

/** A session and its clock; `send` delivers one observation `dt` ms after the last. */
function client(s: Setup = {}) {
  const session = open(s);
  const tick = clock();
  const send = async (m: Record<string, unknown>, dt?: number): Promise<Reply> => (await session.handle(m as Decoded, tick(dt))) as Reply;
  return { session, send, tick };
}

const reference = async (options: EpisodeOptions, steps: ReferenceStep[], model?: ProgressModel) =>
  (await referenceRun(options, steps, raw, model)).results;

const boundary = (r: Reply) => ({ episode: r.episode, step: r.step, new_episode: r.new_episode });

describe('the session', () => {
  it('is the openpi endpoint and needs no hello', () => {
    const s = open();
    expect(s.endpoint).toBe('openpi');
    expect(s.awaitingHello).toBe(false);
  });

  it('greets with a binary metadata map: every task and its stages, the keys, the defaults, the boundaries, the limits less maxViews', () => {
    const g = open().greeting();
    expect(g.kind).toBe('binary');
    const meta = decodeMsgpack(g.data, { maxNestingDepth: 16, maxElements: 100_000 }) as Reply;
    expect(meta).toEqual({
      server: 'stageward',
      protocol: 'openpi',
      session: 's1',
      replica: 'fuzz',
      model: {
        name: 'tiny-fixture',
        version: '0.0.1',
        views: ['front', 'side', 'wrist'],
        tasks: ['pick_place', 'stack_three'],
        stages: { pick_place: PICK_STAGES, stack_three: STACK_STAGES },
        image: { height: 64, width: 64 },
        fps: 10,
        grm: true,
      },
      observation_keys: KEYS,
      filled_views: [],
      defaults: { task: null, gamma: 0.99, shaping: 'pbrs', progress: 'sarm' },
      episode_boundaries:
        'first observation; reset=true; a new `episode` id; a new `prompt`; after terminated or truncated; a pause of 5000 ms or more',
      instructions: CARD.instructions,
      limits: {
        maxPayloadBytes: LIMITS.maxPayloadBytes,
        maxImagePixels: LIMITS.maxImagePixels,
        maxInFlightSteps: LIMITS.maxInFlightSteps,
        idleTimeoutMs: LIMITS.idleTimeoutMs,
      },
    });
    expect(Object.keys(meta.model)).toEqual(['name', 'version', 'views', 'tasks', 'stages', 'image', 'fps', 'grm']);
  });

  it('says in the greeting what the configuration changes: defaults, no idle gap, filled views', () => {
    const s = open({
      engine: new RewardEngine(new FillModel()),
      missingViews: 'fill',
      openpi: { views: { cam: 'wrist' }, task: 'stack_three', gamma: 0.5, shaping: 'delta', progress: 'both', episodeGapMs: 0 },
    });
    const meta = decodeMsgpack(s.greeting().data, { maxNestingDepth: 16, maxElements: 100_000 }) as Reply;
    expect(meta).toMatchObject({
      observation_keys: { cam: 'wrist' },
      filled_views: ['front', 'side'],
      defaults: { task: 'stack_three', gamma: 0.5, shaping: 'delta', progress: 'both' },
      episode_boundaries: 'first observation; reset=true; a new `episode` id; a new `prompt`; after terminated or truncated; no idle gap',
    });
    const gap1 = decodeMsgpack(open({ openpi: { episodeGapMs: 1 } }).greeting().data, {
      maxNestingDepth: 16,
      maxElements: 100_000,
    }) as Reply;
    expect(gap1.episode_boundaries).toMatch(/; a pause of 1 ms or more$/);
  });

  it('sends errors as JSON text frames with no seq, the message bounded', () => {
    const s = open();
    const f = s.errorFrame(new StagewardError('SW_ERR_VIEW_MISSING', 'no camera'), 7, 'binary');
    expect(f.kind).toBe('text');
    expect(typeof f.data).toBe('string');
    expect(JSON.parse(f.data)).toEqual({ type: 'error', code: 'SW_ERR_VIEW_MISSING', message: 'no camera' });
    const long = JSON.parse(s.errorFrame(new StagewardError('SW_ERR_PROTOCOL', 'y'.repeat(1000)), undefined, 'text').data);
    expect(long.message).toHaveLength(512);
  });
});

describe('observations -> reward dicts', () => {
  it('scores each observation as the engine does, with the task and new_episode added', async () => {
    const { send } = client();
    const r0 = await send(obs(0));
    expect(Object.keys(r0)).toEqual(REPLY_KEYS);
    expect(r0).toMatchObject({ episode: 0, step: 0, task: 'pick_place', new_episode: true, reward: 0, shaped: 0, uncertainty: null });
    const r1 = await send(obs(1, { reward: 0.25, terminated: false, truncated: false }));
    const r2 = await send(obs(2, { reward: -0.5 }));
    expect(r1).toMatchObject({ episode: 0, step: 1, new_episode: false, reward: 0.25 });
    const ref = await reference(PBRS, [{ seed: 0 }, { seed: 1, reward: 0.25 }, { seed: 2, reward: -0.5 }]);
    [r0, r1, r2].forEach((r, i) => expectSameStep(r, ref[i]!));
    expect(r1.shaped).toBeCloseTo(0.25 + 0.99 * r1.progress - r0.progress, 12);
    expect(r2.shaped).toBeCloseTo(-0.5 + 0.99 * r2.progress - r1.progress, 12);
    expect(new Set([r0.progress, r1.progress, r2.progress]).size).toBe(3);
  });

  it('reports the queueing time of the observation', async () => {
    const s = open();
    const r = (await s.handle(obs(0) as Decoded, { receivedAt: 1000, startedAt: 1006, kind: 'binary' })) as Reply;
    expect(r.timing.queue_ms).toBe(6);
  });

  it('reads the episode options of the observation that starts an episode, else the configured ones', async () => {
    const cases: [Setup, Record<string, unknown>, EpisodeOptions][] = [
      [{}, { gamma: 0.5 }, { ...PBRS, gamma: 0.5 }],
      [{}, { shaping: 'delta' }, { ...PBRS, shaping: 'delta' }],
      [{}, { progress: 'grm' }, { ...PBRS, progress: 'grm' }],
      [{}, { progress: 'both', gamma: 0, shaping: 'progress' }, { ...PBRS, progress: 'both', gamma: 0, shaping: 'progress' }],
      [{ openpi: { gamma: 0.8, shaping: 'delta', progress: 'grm' } }, {}, { ...PBRS, gamma: 0.8, shaping: 'delta', progress: 'grm' }],
      [
        { openpi: { gamma: 0.8, shaping: 'delta' } },
        { gamma: 0.3, shaping: 'pbrs', progress: 'both' },
        { ...PBRS, gamma: 0.3, progress: 'both' },
      ],
      [{ openpi: { gamma: 0.8 } }, { gamma: null }, { ...PBRS, gamma: 0.8 }],
    ];
    for (const [setup, options, expected] of cases) {
      const { send } = client(setup);
      const ref = await reference(expected, [{ seed: 3 }, { seed: 4, reward: 1 }, { seed: 5, reward: 0.5 }]);
      expectSameStep(await send(obs(3, options)), ref[0]!);
      // options on later observations of the episode are not read
      expectSameStep(await send(obs(4, { reward: 1, gamma: 0.1, shaping: 'sparse', progress: 'sarm' })), ref[1]!);
      expectSameStep(await send(obs(5, { reward: 0.5 })), ref[2]!);
    }
  });

  it('refuses bad episode options at the start, and the next observation starts the episode again', async () => {
    const { send } = client();
    await refused(send(obs(0, { gamma: 2 })), 'SW_ERR_BAD_OPTION', /gamma/);
    await refused(send(obs(0, { shaping: 'magic' })), 'SW_ERR_BAD_OPTION', /shaping/);
    expect(boundary(await send(obs(0)))).toEqual({ episode: 0, step: 0, new_episode: true });
  });

  it('maps the configured keys to views, through nested maps, ignoring every other key', async () => {
    const { send } = client({ openpi: { views: { 'images/cam_high': 'front', 'images/cam_low': 'side', wrist: 'wrist' } } });
    const r = await send({
      images: { cam_high: image(0), cam_low: image(1), extra: 'ignored' },
      wrist: image(2),
      'observation/image': 'not read',
      actions: [1, 2, 3],
      prompt: 'pick_place',
    });
    expectSameStep(r, (await reference(PBRS, [{ seed: 0 }]))[0]!);
    await refused(
      send({ images: { cam_high: image(0) }, wrist: image(2), prompt: 'pick_place' }),
      'SW_ERR_VIEW_MISSING',
      `the observation lacks "images/cam_low" (the model's view "side")`,
    );
  });

  it('refuses an observation lacking a mapped key, or with it null, naming the key and its view', async () => {
    const { send } = client();
    const { 'observation/side_image': _, ...partial } = obs(0);
    const msg = `the observation lacks "observation/side_image" (the model's view "side")`;
    await refused(send(partial), 'SW_ERR_VIEW_MISSING', msg);
    await refused(send(obs(0, { 'observation/side_image': null })), 'SW_ERR_VIEW_MISSING', msg);
    await refused(send(obs(0, { 'observation/wrist_image': 5 })), 'SW_ERR_IMAGE_DECODE', /^observation\["wrist"\] must be JPEG\/PNG bytes/);
    await refused(send(obs(0, { 'observation/image': new NdArray('|u1', [64, 64, 3], new Uint8Array(5)) })), 'SW_ERR_IMAGE_SIZE', /front/);
    await refused(send(obs(0, { 'observation/image': new NdArray('<U3', [2], new Uint8Array(24)) })), 'SW_ERR_NDARRAY', /front/);
  });

  it('passes reward and flags on to the engine, which checks them', async () => {
    const { send } = client();
    await send(obs(0));
    await refused(send(obs(1, { reward: 'lots' })), 'SW_ERR_BAD_VALUE', /reward/);
    await refused(send(obs(1, { terminated: 'yes' })), 'SW_ERR_BAD_VALUE', /terminated/);
    await refused(send(obs(1, { truncated: 1 })), 'SW_ERR_BAD_VALUE', /truncated/);
    expect(boundary(await send(obs(1, { reward: 2 })))).toEqual({ episode: 0, step: 1, new_episode: false });
  });

  it('fills the views no key maps to with missingViews "fill"', async () => {
    const { session, send } = client({
      engine: new RewardEngine(new BatchingProgressModel(new FillModel(), { ...CONFIG.batching })),
      missingViews: 'fill',
      openpi: { views: { 'observation/image': 'front', 'observation/wrist_image': 'wrist' } },
    });
    const meta = decodeMsgpack(session.greeting().data, { maxNestingDepth: 16, maxElements: 100_000 }) as Reply;
    expect(meta.filled_views).toEqual(['side']);
    // the side image is there but not mapped: ignored, the black fill is scored
    const replies = [await send(obs(0)), await send(obs(1, { reward: 1 }))];
    const ref = await reference({ ...PBRS, fill: ['side'] }, [{ seed: 0 }, { seed: 1, reward: 1 }], new FillModel());
    replies.forEach((r, i) => expectSameStep(r, ref[i]!));
    // a new episode fills it too
    expectSameStep(await send(obs(0, { reset: true })), ref[0]!);
  });
});

describe('prompts', () => {
  it('scores the task the prompt names and says so in every reply', async () => {
    const { send } = client({ promptMap: { 'tidy up': 'stack_three' } });
    const r = await send(obs(0, { prompt: 'Stack the red cube on the green cube, then the yellow cube on the red cube.' }));
    expect(r).toMatchObject({ task: 'stack_three', new_episode: true });
    expect(STACK_STAGES).toContain(r.stage.name);
    expectSameStep(r, (await reference({ ...PBRS, task: 'stack_three' }, [{ seed: 0 }]))[0]!);
    expect(await send(obs(1, { prompt: 'TIDY up!' }))).toMatchObject({ task: 'stack_three', new_episode: true, step: 0 });
    expect(await send(obs(2, { prompt: 'pick_place' }))).toMatchObject({ task: 'pick_place', new_episode: true, step: 0 });
  });

  it('refuses a prompt that is not a string, and one that matches nothing with no default, keeping the episode', async () => {
    const { send } = client();
    await send(obs(0));
    await refused(send(obs(1, { prompt: 5 })), 'SW_ERR_TASK_UNKNOWN', '`prompt` must be a string: a task id or one of its instructions');
    await refused(send(obs(1, { prompt: ['pick_place'] })), 'SW_ERR_TASK_UNKNOWN', /^`prompt` must be a string/);
    await refused(send(obs(1, { prompt: 'juggle' })), 'SW_ERR_TASK_UNKNOWN', /^prompt "juggle" matches none of the model's tasks/);
    await refused(send(obs(1, { prompt: undefined })), 'SW_ERR_TASK_UNKNOWN', /^no prompt given and no default task/);
    await refused(send(obs(1, { prompt: null })), 'SW_ERR_TASK_UNKNOWN', /^no prompt given/);
    expect(boundary(await send(obs(1)))).toEqual({ episode: 0, step: 1, new_episode: false });
  });

  it('falls back to openpi.task for an absent, null, empty or unmatched prompt', async () => {
    const { send } = client({ openpi: { task: 'stack_three' } });
    const r0 = await send(obs(0, { prompt: undefined }));
    expect(r0).toMatchObject({ task: 'stack_three', episode: 0, step: 0, new_episode: true });
    expectSameStep(r0, (await reference({ ...PBRS, task: 'stack_three' }, [{ seed: 0 }]))[0]!);
    expect(await send(obs(1, { prompt: null }))).toMatchObject({ task: 'stack_three', step: 1, new_episode: false });
    // a prompt text, even one naming the same task, or an empty one, is another prompt: a new episode
    expect(await send(obs(2, { prompt: 'stack_three' }))).toMatchObject({ task: 'stack_three', step: 0, new_episode: true });
    expect(await send(obs(3, { prompt: undefined }))).toMatchObject({ step: 0, new_episode: true });
    expect(await send(obs(4, { prompt: '' }))).toMatchObject({ task: 'stack_three', step: 0, new_episode: true });
    expect(await send(obs(5, { prompt: 'juggle' }))).toMatchObject({ task: 'stack_three', step: 0, new_episode: true });
    expect(await send(obs(6, { prompt: 'juggle' }))).toMatchObject({ task: 'stack_three', step: 1, new_episode: false });
  });

  it('compares prompts as instructions: case, spacing and a final full stop do not start an episode', async () => {
    const { send } = client();
    expect(await send(obs(0, { prompt: 'put the red cube in the blue bowl' }))).toMatchObject({ step: 0, task: 'pick_place' });
    expect(await send(obs(1, { prompt: '  Put the red  cube in the blue bowl. ' }))).toMatchObject({ step: 1, new_episode: false });
    // the task id is another text for the same task: a new prompt
    expect(await send(obs(2, { prompt: 'pick_place' }))).toMatchObject({ step: 0, new_episode: true, task: 'pick_place' });
  });
});

describe('episode boundaries', () => {
  it('reset: true starts an episode; reset: false or null does not; anything else is refused', async () => {
    const { send } = client();
    expect(boundary(await send(obs(0)))).toEqual({ episode: 0, step: 0, new_episode: true });
    expect(boundary(await send(obs(1, { reset: false })))).toEqual({ episode: 0, step: 1, new_episode: false });
    // null counts as absent, as it does for prompt, episode and the episode options
    expect(boundary(await send(obs(1, { reset: null })))).toEqual({ episode: 0, step: 2, new_episode: false });
    const r = await send(obs(2, { reset: true }));
    expect(boundary(r)).toEqual({ episode: 1, step: 0, new_episode: true });
    expectSameStep(r, (await reference(PBRS, [{ seed: 2 }]))[0]!);
    await refused(send(obs(3, { reset: 1 })), 'SW_ERR_PROTOCOL', '`reset` must be true or false');
    await refused(send(obs(3, { reset: 'true' })), 'SW_ERR_PROTOCOL', '`reset` must be true or false');
    expect(boundary(await send(obs(3)))).toEqual({ episode: 1, step: 1, new_episode: false });
    expect(boundary(await send(obs(4, { reset: true })))).toEqual({ episode: 2, step: 0, new_episode: true });
  });

  it('a new episode id starts an episode labelled with it; the same id continues it', async () => {
    const { send } = client();
    expect(boundary(await send(obs(0)))).toEqual({ episode: 0, step: 0, new_episode: true });
    // the id of the running episode (its automatic label) continues it
    expect(boundary(await send(obs(1, { episode: 0 })))).toEqual({ episode: 0, step: 1, new_episode: false });
    expect(boundary(await send(obs(2, { episode: 'ep-x' })))).toEqual({ episode: 'ep-x', step: 0, new_episode: true });
    expect(boundary(await send(obs(3, { episode: 'ep-x' })))).toEqual({ episode: 'ep-x', step: 1, new_episode: false });
    expect(boundary(await send(obs(4)))).toEqual({ episode: 'ep-x', step: 2, new_episode: false });
    expect(boundary(await send(obs(5, { episode: 7 })))).toEqual({ episode: 7, step: 0, new_episode: true });
    expect(boundary(await send(obs(6, { episode: '7' })))).toEqual({ episode: '7', step: 0, new_episode: true });
    expect(boundary(await send(obs(7, { reset: true })))).toEqual({ episode: 4, step: 0, new_episode: true });
    await refused(send(obs(8, { episode: -1 })), 'SW_ERR_PROTOCOL', /`episode` must be/);
    await refused(send(obs(8, { episode: 'x'.repeat(300) })), 'SW_ERR_PROTOCOL', /at most 256 characters/);
  });

  it('after a terminated or truncated observation, the next one starts an episode', async () => {
    for (const flag of ['terminated', 'truncated']) {
      const { send } = client();
      await send(obs(0));
      const last = await send(obs(1, { [flag]: true, reward: 1 }));
      expect(last).toMatchObject({ step: 1, done: true, new_episode: false });
      expectSameStep(last, (await reference(PBRS, [{ seed: 0 }, { seed: 1, [flag]: true, reward: 1 }]))[1]!);
      expect(boundary(await send(obs(2)))).toEqual({ episode: 1, step: 0, new_episode: true });
      expect(boundary(await send(obs(3)))).toEqual({ episode: 1, step: 1, new_episode: false });
    }
  });

  it('a pause of episodeGapMs or more starts an episode; a shorter one does not', async () => {
    const { send } = client({ openpi: { episodeGapMs: 5000 } });
    expect(boundary(await send(obs(0), 0))).toEqual({ episode: 0, step: 0, new_episode: true });
    expect(boundary(await send(obs(1), 4999))).toEqual({ episode: 0, step: 1, new_episode: false });
    expect(boundary(await send(obs(2), 4999.9))).toEqual({ episode: 0, step: 2, new_episode: false });
    expect(boundary(await send(obs(3), 5000))).toEqual({ episode: 1, step: 0, new_episode: true });
    expect(boundary(await send(obs(4), 1))).toEqual({ episode: 1, step: 1, new_episode: false });
    expect(boundary(await send(obs(5), 60_000))).toEqual({ episode: 2, step: 0, new_episode: true });
  });

  it('the pause is measured from the previous observation, even one that was refused, whatever for', async () => {
    const { send } = client({ openpi: { episodeGapMs: 1000 } });
    await send(obs(0));
    await refused(send(obs(1, { 'observation/image': null }), 600), 'SW_ERR_VIEW_MISSING');
    expect(boundary(await send(obs(1), 600))).toEqual({ episode: 0, step: 1, new_episode: false });
    await refused(send(obs(2, { prompt: 5 }), 600), 'SW_ERR_TASK_UNKNOWN');
    await refused(send(obs(2, { reset: 'yes' }), 600), 'SW_ERR_PROTOCOL');
    expect(boundary(await send(obs(2), 600))).toEqual({ episode: 0, step: 2, new_episode: false });
  });

  it('with episodeGapMs 0 no pause starts an episode', async () => {
    const { send } = client({ openpi: { episodeGapMs: 0 } });
    await send(obs(0));
    expect(boundary(await send(obs(1), 3_600_000))).toEqual({ episode: 0, step: 1, new_episode: false });
    expect(boundary(await send(obs(2), 0))).toEqual({ episode: 0, step: 2, new_episode: false });
  });

  it('an observation that would start an episode and fails leaves none running: the next one starts it', async () => {
    const { send } = client();
    await send(obs(0));
    await send(obs(1));
    // a reset whose images are refused
    await refused(send(obs(2, { reset: true, 'observation/wrist_image': undefined })), 'SW_ERR_VIEW_MISSING');
    const r = await send(obs(3));
    expect(boundary(r)).toEqual({ episode: 1, step: 0, new_episode: true });
    expectSameStep(r, (await reference(PBRS, [{ seed: 3 }]))[0]!);
    // a first observation whose step the engine refuses (the episode had started)
    const other = client();
    await refused(other.send(obs(0, { reward: Number.NaN })), 'SW_ERR_BAD_VALUE');
    expect(boundary(await other.send(obs(1)))).toEqual({ episode: 1, step: 0, new_episode: true });
    expect(boundary(await other.send(obs(2)))).toEqual({ episode: 1, step: 1, new_episode: false });
  });

  it('an observation inside an episode that fails changes nothing: the next one continues it', async () => {
    const { send } = client();
    await send(obs(0));
    await refused(send(obs(1, { 'observation/image': undefined })), 'SW_ERR_VIEW_MISSING');
    await refused(send(obs(1, { reward: Number.POSITIVE_INFINITY })), 'SW_ERR_BAD_VALUE');
    const r = await send(obs(1, { reward: 1 }));
    expect(boundary(r)).toEqual({ episode: 0, step: 1, new_episode: false });
    expectSameStep(r, (await reference(PBRS, [{ seed: 0 }, { seed: 1, reward: 1 }]))[1]!);
  });

  it('dispose drops the running episode', async () => {
    const { session, send } = client();
    await send(obs(0));
    await send(obs(1));
    session.dispose();
    expect(boundary(await send(obs(2)))).toEqual({ episode: 1, step: 0, new_episode: true });
  });

  it('a seeded random stream of observations has its boundaries where the rules say', async () => {
    const rand = mulberry32(7_2026);
    const { send } = client({ openpi: { episodeGapMs: 2000, task: 'pick_place' } });
    const prompts = [undefined, 'pick_place', 'put the red cube in the blue bowl', 'stack_three'];
    let running = false;
    let ended = false;
    let prompt: string | undefined | null = null; // null: none yet
    let label: string | number = 0;
    let started = 0;
    let step = 0;
    for (let i = 0; i < 120; i++) {
      const dt = rand() < 0.1 ? 2000 + Math.floor(rand() * 100) : Math.floor(rand() * 1999);
      const p: string | undefined = rand() < 0.85 && prompt !== null ? prompt : prompts[Math.floor(rand() * prompts.length)];
      const reset = rand() < 0.08;
      const id = rand() < 0.1 ? pick(rand, ['a', 'b', 0, 1]) : undefined;
      const terminated = rand() < 0.05;
      const fail = rand() < 0.07;
      const extra: Record<string, unknown> = { prompt: p, terminated };
      if (reset) extra.reset = true;
      if (id !== undefined) extra.episode = id;
      if (fail) extra['observation/side_image'] = null;
      const fresh = !running || reset || (id !== undefined && id !== label) || p !== prompt || ended || (i > 0 && dt >= 2000);
      const reply = send(obs(i % 6, extra), dt);
      if (fresh) running = false;
      if (fail) {
        await refused(reply, 'SW_ERR_VIEW_MISSING');
        continue;
      }
      if (fresh) {
        label = id ?? started;
        started++;
        step = 0;
        prompt = p;
        running = true;
      }
      const r = await reply;
      expect(boundary(r), `observation ${i}`).toEqual({ episode: label, step, new_episode: fresh });
      expect(r.task).toBe(p === 'stack_three' ? 'stack_three' : 'pick_place');
      step++;
      ended = terminated;
    }
  });
});

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}

describe('observationValue', () => {
  it('reads the key itself first, else a path through nested maps', () => {
    expect(observationValue({ 'images/cam': 1, images: { cam: 2 } }, 'images/cam')).toBe(1);
    expect(observationValue({ images: { cam: 2 } }, 'images/cam')).toBe(2);
    expect(observationValue({ a: { b: { c: 3 } } }, 'a/b/c')).toBe(3);
    expect(observationValue({ a: { b: { c: 3 } } }, 'a/b')).toEqual({ c: 3 });
    expect(observationValue({ cam: null }, 'cam')).toBeNull();
    expect(observationValue({}, 'cam')).toBeUndefined();
    expect(observationValue({ images: { cam: 2 } }, 'images/other')).toBeUndefined();
    expect(observationValue({ images: { cam: 2 } }, 'images/cam/x')).toBeUndefined();
  });

  it('does not walk into lists, byte strings, arrays, strings, null or inherited keys', () => {
    const nd = new NdArray('|u1', [2, 2], new Uint8Array(4));
    expect(observationValue({ images: [5, 6] }, 'images/0')).toBeUndefined();
    expect(observationValue({ images: new Uint8Array([5, 6]) }, 'images/0')).toBeUndefined();
    expect(observationValue({ images: nd }, 'images/data')).toBeUndefined();
    expect(observationValue({ images: nd }, 'images/shape')).toBeUndefined();
    expect(observationValue({ images: 'abc' }, 'images/0')).toBeUndefined();
    expect(observationValue({ images: 'abc' }, 'images/length')).toBeUndefined();
    expect(observationValue({ images: 7 }, 'images/x')).toBeUndefined();
    expect(observationValue({ images: null }, 'images/x')).toBeUndefined();
    expect(observationValue({ images: {} }, 'images/constructor')).toBeUndefined();
    expect(observationValue({ images: {} }, 'images/toString')).toBeUndefined();
    expect(observationValue({}, 'constructor')).toBeUndefined();
    expect(observationValue({}, 'toString/name')).toBeUndefined();
  });
});

describe('checkOpenpiConfig', () => {
  const views = ['front', 'side', 'wrist'];
  const tasks = ['pick_place', 'stack_three'];
  const base: OpenpiConfig = { ...CONFIG.openpi };
  const check =
    (o: Partial<OpenpiConfig>, hasGrm = true, missing?: MissingViewsPolicy) =>
    () =>
      checkOpenpiConfig({ ...base, ...o }, views, tasks, hasGrm, missing);
  const fails = (f: () => void, message: string) => {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StagewardError);
    expect((err as StagewardError).code).toBe('SW_ERR_CONFIG');
    expect((err as StagewardError).message).toBe(message);
  };

  it('accepts the default settings and ones that cover the model', () => {
    expect(check({})()).toBeUndefined();
    expect(check({ task: 'stack_three', progress: 'grm' })()).toBeUndefined();
    expect(check({ progress: 'both' })()).toBeUndefined();
    expect(check({ progress: 'sarm' }, false)()).toBeUndefined();
    expect(check({ views: { a: 'front', 'b/c': 'side', d: 'wrist', e: 'wrist' } })()).toBeUndefined();
  });

  it('refuses a key mapped to a view the model lacks', () => {
    fails(
      check({ views: { ...KEYS, top: 'top' } }),
      '`openpi.views` maps a key to "top", which is not one of the model\'s views (front, side, wrist)',
    );
    fails(
      check({ views: { top: 'top' } }, true, 'fill'),
      '`openpi.views` maps a key to "top", which is not one of the model\'s views (front, side, wrist)',
    );
  });

  it('refuses a model view no key maps to, unless missingViews is "fill" (which needs one mapped view)', () => {
    const { 'observation/side_image': _, ...partial } = KEYS;
    const msg = '`openpi.views` maps no observation key to the model\'s view "side" (with missingViews "fill" it would be filled)';
    fails(check({ views: partial }), msg);
    fails(check({ views: partial }, true, 'refuse'), msg);
    expect(check({ views: partial }, true, 'fill')()).toBeUndefined();
    expect(check({ views: { x: 'wrist' } }, true, 'fill')()).toBeUndefined();
    fails(check({ views: {} }, true, 'fill'), "`openpi.views` maps no observation key to any of the model's views");
    fails(
      check({ views: {} }),
      '`openpi.views` maps no observation key to the model\'s view "front" (with missingViews "fill" it would be filled)',
    );
  });

  it('refuses a default task the model lacks', () => {
    fails(check({ task: 'juggle' }), '`openpi.task` is "juggle", not one of the model\'s tasks (pick_place, stack_three)');
  });

  it('refuses progress grm or both without a GRM head', () => {
    fails(check({ progress: 'grm' }, false), '`openpi.progress` is "grm", and the model has no GRM head');
    fails(check({ progress: 'both' }, false), '`openpi.progress` is "both", and the model has no GRM head');
  });
});
