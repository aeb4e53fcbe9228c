import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxProgressModel } from '../../models/package.ts';
import { StagewardClient } from '../../server/client.ts';
import type { StagewardServer } from '../../server/server.ts';
import { ensemblePackage } from '../ensemble-package.ts';
import { expectCode } from '../helpers.ts';
import { HELLO, jpeg, jpegFrames, Peer, startTestServer, VIEWS } from './helpers.ts';
import { STEP_FIELDS } from './session-fixtures.ts';

let server: StagewardServer;
let frames: Record<string, Buffer>;
beforeAll(async () => {
  server = await startTestServer();
  frames = await jpegFrames();
});
afterAll(() => server.shutdown());

/** Python's msgpack: bytes keys as bin, plain types only. */
const python = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const b = (s: string) => Buffer.from(s);
function npImage(h: number, w: number, seed: number): Map<Buffer, unknown> {
  const data = new Uint8Array(h * w * 3).map((_, i) => (i * 7 + seed) % 256);
  return new Map<Buffer, unknown>([
    [b('__ndarray__'), true],
    [b('data'), data],
    [b('dtype'), '|u1'],
    [b('shape'), [h, w, 3]],
  ]);
}
const npBool = (v: boolean) =>
  new Map<Buffer, unknown>([
    [b('__npgeneric__'), true],
    [b('data'), v],
    [b('dtype'), '|b1'],
  ]);
const npFloat = (v: number) =>
  new Map<Buffer, unknown>([
    [b('__npgeneric__'), true],
    [b('data'), v],
    [b('dtype'), '<f8'],
  ]);

describe('native protocol (/v1/stream), MessagePack', () => {
  it('hello -> ready, reset -> episode, step -> reward, end -> summary, then a second episode', async () => {
    const peer = await Peer.open(`${server.url}/v1/stream`);
    const ready = await peer.request(HELLO);
    expect(ready).toMatchObject({
      type: 'ready',
      protocol: 1,
      model: {
        name: 'tiny-fixture',
        views: [...VIEWS],
        stages: ['reach', 'grasp', 'lift', 'carry', 'place'],
        image: { height: 64, width: 64 },
      },
    });
    expect(ready.limits).toMatchObject({ maxPayloadBytes: 16 * 1024 * 1024, maxInFlightSteps: 8 });
    expect(await peer.request({ type: 'reset' })).toEqual({ type: 'episode', episode: 0 });
    const r0 = await peer.request({ type: 'step', seq: 0, t: 0, frames });
    expect(r0).toMatchObject({ type: 'reward', seq: 0, episode: 0, step: 0, reward: 0, shaped: 0, done: false });
    expect(r0.progress).toBeGreaterThanOrEqual(0);
    expect(r0.progress).toBeLessThanOrEqual(1);
    expect(r0.stage.probs).toHaveLength(5);
    expect(Object.keys(r0.timing)).toEqual(['queue_ms', 'infer_ms', 'total_ms']);
    // every field of the reply, in order; `uncertainty` is there (nil) for a package without an ensemble
    expect(Object.keys(r0)).toEqual(['type', 'seq', ...STEP_FIELDS]);
    expect(r0.uncertainty).toBeNull();
    // Raw uint8 HWC arrays in openpi's numpy encoding, built as Python's msgpack writes them.
    peer.sendRaw(
      python.pack({
        type: 'step',
        seq: 1,
        t: 1,
        frames: { front: npImage(48, 80, 1), side: npImage(48, 80, 2), wrist: npImage(64, 64, 3) },
        reward: 0.5,
        state: new Map<Buffer, unknown>([
          [b('__ndarray__'), true],
          [b('data'), new Uint8Array(8)],
          [b('dtype'), '<f4'],
          [b('shape'), [2]],
        ]),
      }),
    );
    const r1 = await peer.reply();
    expect(r1).toMatchObject({ type: 'reward', seq: 1, step: 1, reward: 0.5 });
    expect(r1.shaped).toBeCloseTo(0.5 + 0.99 * r1.progress - r0.progress, 6);
    const summary = await peer.request({ type: 'end', success: false });
    expect(summary).toMatchObject({
      type: 'summary',
      episode: 0,
      steps: 2,
      env_return: 0.5,
      terminated: false,
      truncated: false,
      success: false,
    });
    expect(summary.final_progress).toBe(r1.progress);
    expect(await peer.request({ type: 'reset', episode: 'run-7/ep-2' })).toEqual({ type: 'episode', episode: 'run-7/ep-2' });
    expect(await peer.request({ type: 'step', seq: 2, frames })).toMatchObject({ episode: 'run-7/ep-2', step: 0 });
    const last = await peer.request({ type: 'step', seq: 3, frames, terminated: true });
    expect(last).toMatchObject({ step: 1, done: true });
    expect(await peer.request({ type: 'step', seq: 4, frames })).toMatchObject({ type: 'error', seq: 4, code: 'SW_ERR_EPISODE_ENDED' });
    expect(await peer.request({ type: 'end' })).toMatchObject({ type: 'summary', steps: 2, terminated: true });
    expect(await peer.request({ type: 'end' })).toMatchObject({ type: 'error', code: 'SW_ERR_NO_EPISODE' });
    await peer.close();
  });

  it('answers each message exactly once and in order when steps are pipelined, errors included', async () => {
    const peer = await Peer.open(`${server.url}/v1/stream`);
    await peer.request(HELLO);
    await peer.request({ type: 'reset' });
    const n = 24;
    for (let seq = 0; seq < n; seq++) {
      if (seq === 7)
        peer.send({ type: 'step', seq, frames: { front: frames.front } }); // missing views
      else if (seq === 13)
        peer.sendRaw(Buffer.from([0x92, 0x01])); // truncated MessagePack
      else peer.send({ type: 'step', seq, frames });
    }
    const replies = [];
    for (let i = 0; i < n; i++) replies.push(await peer.reply());
    expect(replies.map((r) => (r.type === 'reward' ? r.seq : r.code))).toEqual(
      [...Array(n).keys()].map((s) => (s === 7 ? 'SW_ERR_VIEW_MISSING' : s === 13 ? 'SW_ERR_PROTOCOL' : s)),
    );
    expect(replies[7]!.seq).toBe(7);
    const steps = replies.filter((r) => r.type === 'reward').map((r) => r.step);
    expect(steps).toEqual([...Array(n - 2).keys()]); // failed steps change nothing
    await expect(peer.next(100)).rejects.toThrow('no message');
    await peer.close();
  });

  it('checks messages field by field and keeps the session open after a non-fatal error', async () => {
    const peer = await Peer.open(`${server.url}/v1/stream`);
    expect(await peer.request({ type: 'step', seq: 0, frames })).toMatchObject({ type: 'error', seq: 0, code: 'SW_ERR_NO_SESSION' });
    expect(await peer.request({ ...HELLO, protocol: 2 })).toMatchObject({ code: 'SW_ERR_PROTOCOL' });
    expect(await peer.request({ ...HELLO, gamma: 2 })).toMatchObject({ code: 'SW_ERR_BAD_OPTION' });
    expect(await peer.request({ ...HELLO, task: 'fold_shirt' })).toMatchObject({ code: 'SW_ERR_TASK_UNKNOWN' });
    expect(await peer.request({ ...HELLO, views: ['front', 'side', 'top'] })).toMatchObject({ code: 'SW_ERR_VIEW_UNKNOWN' });
    expect(await peer.request({ ...HELLO, shapping: 'pbrs' })).toMatchObject({
      code: 'SW_ERR_PROTOCOL',
      message: expect.stringContaining('shapping'),
    });
    expect(await peer.request({ ...HELLO, model: 'other-model' })).toMatchObject({ code: 'SW_ERR_MODEL_UNAVAILABLE' });
    expect(await peer.request({ ...HELLO, model: 'tiny-fixture@0.0.1', progress: 'both' })).toMatchObject({ type: 'ready' });
    expect(await peer.request(HELLO)).toMatchObject({ code: 'SW_ERR_PROTOCOL', message: expect.stringContaining('already') });
    expect(await peer.request({ type: 'step', seq: 1, frames })).toMatchObject({ code: 'SW_ERR_NO_EPISODE' });
    expect(await peer.request({ type: 'reset', goal: { front: frames.front } })).toMatchObject({ code: 'SW_ERR_VIEW_MISSING' });
    expect(await peer.request({ type: 'reset', goal: frames })).toEqual({ type: 'episode', episode: 0 });
    const r = await peer.request({ type: 'step', seq: 2, frames });
    expect(r).toMatchObject({ type: 'reward', step: 0 });
    expect(r.hop).toBeTypeOf('number');
    expect(r.heads.grm).toBeTypeOf('number');
    expect(await peer.request({ type: 'step', seq: 3, frames, reward: 'a lot' })).toMatchObject({ seq: 3, code: 'SW_ERR_BAD_VALUE' });
    expect(await peer.request({ type: 'step', seq: 4, frames, terminated: 1 })).toMatchObject({ seq: 4, code: 'SW_ERR_BAD_VALUE' });
    expect(await peer.request({ type: 'step', seq: 5, frames: { ...frames, top: frames.front } })).toMatchObject({
      code: 'SW_ERR_VIEW_UNKNOWN',
    });
    expect(await peer.request({ type: 'step', seq: 6, frames: { ...frames, front: Buffer.from('not an image') } })).toMatchObject({
      code: 'SW_ERR_IMAGE_DECODE',
    });
    expect(await peer.request({ type: 'dance' })).toMatchObject({ code: 'SW_ERR_PROTOCOL' });
    expect(await peer.request({ type: 'step', seq: 7, frames })).toMatchObject({ type: 'reward', seq: 7, step: 1 });
    await peer.close();
  });
});

describe('native protocol, JSON text frames', () => {
  it('accepts base64 JPEG images and answers in JSON text', async () => {
    const peer = await Peer.open(`${server.url}/v1/stream`);
    const send = async (msg: unknown) => {
      peer.sendRaw(JSON.stringify(msg));
      const r = await peer.next();
      expect(r.binary).toBe(false);
      return r.data as Record<string, any>;
    };
    expect(await send(HELLO)).toMatchObject({ type: 'ready' });
    await send({ type: 'reset' });
    const b64 = Object.fromEntries(Object.entries(frames).map(([v, img]) => [v, img.toString('base64')]));
    expect(await send({ type: 'step', seq: 0, frames: b64 })).toMatchObject({ type: 'reward', seq: 0, step: 0 });
    const raw = { __ndarray__: true, data: Buffer.alloc(8 * 8 * 3, 90).toString('base64'), dtype: '|u1', shape: [8, 8, 3] };
    expect(await send({ type: 'step', seq: 1, frames: { ...b64, side: raw } })).toMatchObject({ type: 'reward', step: 1 });
    expect(await send({ type: 'step', seq: 2, frames: { ...b64, side: '***' } })).toMatchObject({
      type: 'error',
      seq: 2,
      code: 'SW_ERR_PROTOCOL',
    });
    peer.sendRaw('{"type": "step", ');
    expect((await peer.next()).data).toMatchObject({ type: 'error', code: 'SW_ERR_PROTOCOL' });
    await peer.close();
  });
});

describe('TypeScript client', () => {
  it('pipelines steps and matches replies by seq, with JPEG bytes and raw images', async () => {
    const client = await StagewardClient.connect(server.url);
    const ready = await client.hello({ task: 'stack_three', gamma: 0.95, views: [...VIEWS] });
    expect(ready.model.stages).toHaveLength(7);
    await client.reset(undefined, { episode: 5 });
    const raw = { data: new Uint8Array(32 * 40 * 3).fill(77), height: 32, width: 40, channels: 3 as const };
    const replies = await Promise.all(
      [...Array(10).keys()].map((t) =>
        client.step(t % 2 ? frames : { ...frames, wrist: raw }, { reward: t === 9 ? 1 : 0, terminated: t === 9 }),
      ),
    );
    expect(replies.map((r) => [r.seq, r.step, r.episode])).toEqual([...Array(10).keys()].map((t) => [t, t, 5]));
    expect(replies[9]!.done).toBe(true);
    await expectCode(client.step(frames), 'SW_ERR_EPISODE_ENDED');
    const s = await client.end({ success: true });
    expect(s).toMatchObject({ steps: 10, env_return: 1, terminated: true, success: true });
    await client.close();
  });

  it('speaks JSON text too', async () => {
    const client = await StagewardClient.connect(`${server.url}/v1/stream`, { format: 'json' });
    await client.hello({ task: 'pick_place', gamma: 0.99, shaping: 'delta' });
    await client.reset();
    const r = await client.step(frames);
    expect(r).toMatchObject({ type: 'reward', step: 0 });
    await expectCode(client.step({ front: frames.front! }), 'SW_ERR_VIEW_MISSING');
    await client.close();
  });
});

describe('openpi-compatible endpoint (/openpi and /)', () => {
  const obs = (extra: Record<string, unknown> = {}, seed = 0) => ({
    'observation/image': npImage(224, 224, seed),
    'observation/side_image': npImage(96, 96, seed + 1),
    'observation/wrist_image': npImage(224, 224, seed + 2),
    'observation/state': new Map<Buffer, unknown>([
      [b('__ndarray__'), true],
      [b('data'), new Uint8Array(32)],
      [b('dtype'), '<f8'],
      [b('shape'), [4]],
    ]),
    prompt: 'pick_place',
    ...extra,
  });

  it('sends a metadata map first, then answers observation dicts with reward dicts', async () => {
    for (const path of ['/openpi', '/']) {
      const peer = await Peer.open(`${server.url}${path}`);
      const meta = await peer.next();
      expect(meta.binary).toBe(true);
      expect(meta.data).toMatchObject({
        server: 'stageward',
        protocol: 'openpi',
        model: { name: 'tiny-fixture', tasks: ['pick_place', 'stack_three'] },
        observation_keys: { 'observation/image': 'front' },
      });
      peer.sendRaw(python.pack(obs()));
      const r0 = (await peer.next()).data as Record<string, any>;
      expect(r0).toMatchObject({ episode: 0, step: 0, new_episode: true, done: false, reward: 0 });
      expect(r0.stage.name).toBeTypeOf('string');
      expect(r0).toHaveProperty('uncertainty', null);
      peer.sendRaw(python.pack(obs({ reward: npFloat(0.25), terminated: npBool(false) }, 5)));
      expect((await peer.next()).data).toMatchObject({ episode: 0, step: 1, new_episode: false, reward: 0.25 });
      peer.sendRaw(python.pack(obs({ terminated: npBool(true) }, 9)));
      expect((await peer.next()).data).toMatchObject({ step: 2, done: true });
      // After a terminal observation the next one starts a new episode (vector-env auto-reset).
      peer.sendRaw(python.pack(obs({}, 11)));
      expect((await peer.next()).data).toMatchObject({ episode: 1, step: 0, new_episode: true });
      peer.sendRaw(python.pack(obs({ reset: true })));
      expect((await peer.next()).data).toMatchObject({ episode: 2, step: 0, new_episode: true });
      peer.sendRaw(python.pack(obs({ episode: 'ep-x' })));
      expect((await peer.next()).data).toMatchObject({ episode: 'ep-x', step: 0, new_episode: true });
      peer.sendRaw(python.pack(obs({ episode: 'ep-x' })));
      expect((await peer.next()).data).toMatchObject({ episode: 'ep-x', step: 1, new_episode: false });
      peer.sendRaw(python.pack(obs({ episode: 'ep-x', prompt: 'stack_three' })));
      expect((await peer.next()).data).toMatchObject({ step: 0, new_episode: true });
      await peer.close();
    }
  });

  it('sends errors as text frames (openpi-client raises on them) and keeps the connection open', async () => {
    const peer = await Peer.open(`${server.url}/openpi`);
    await peer.next();
    const { 'observation/side_image': _, ...partial } = obs();
    peer.sendRaw(python.pack(partial));
    const err = await peer.next();
    expect(err.binary).toBe(false);
    expect(err.data).toMatchObject({
      type: 'error',
      code: 'SW_ERR_VIEW_MISSING',
      message: expect.stringContaining('observation/side_image'),
    });
    peer.sendRaw(python.pack(obs({ prompt: 'juggle' })));
    expect((await peer.next()).data).toMatchObject({ code: 'SW_ERR_TASK_UNKNOWN' });
    peer.sendRaw(
      python.pack({
        ...obs(),
        'observation/image': new Map<Buffer, unknown>([
          [b('__ndarray__'), true],
          [b('data'), new Uint8Array(10)],
          [b('dtype'), '|u1'],
          [b('shape'), [224, 224, 3]],
        ]),
      }),
    );
    expect((await peer.next()).data).toMatchObject({ code: 'SW_ERR_NDARRAY' });
    peer.sendRaw(
      JSON.stringify({
        prompt: 'pick_place',
        'observation/image': (await jpeg()).toString('base64'),
        'observation/side_image': (await jpeg()).toString('base64'),
        'observation/wrist_image': (await jpeg()).toString('base64'),
      }),
    );
    const ok = await peer.next();
    expect(ok.binary).toBe(false);
    expect(ok.data).toMatchObject({ step: 0, new_episode: true });
    await peer.close();
  });
});

describe('an ensemble package: `uncertainty` in every reply', () => {
  let dir: string;
  let model: OnnxProgressModel;
  let ensembleServer: StagewardServer;
  beforeAll(async () => {
    dir = await ensemblePackage();
    model = await OnnxProgressModel.load(dir, { log: () => {} });
    ensembleServer = await startTestServer({}, model);
  });
  afterAll(async () => {
    await ensembleServer.shutdown();
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

  it('native (MessagePack and JSON) and openpi replies carry the SARM head uncertainty of the step', async () => {
    const peer = await Peer.open(`${ensembleServer.url}/v1/stream`);
    await peer.request(HELLO);
    await peer.request({ type: 'reset' });
    const r0 = await peer.request({ type: 'step', seq: 0, frames });
    // the test package's uncertainty is tau * tau in float32
    expect(r0.uncertainty).toBe(Math.fround(r0.tau * r0.tau));
    peer.sendRaw(
      JSON.stringify({
        type: 'step',
        seq: 1,
        frames: Object.fromEntries(Object.entries(frames).map(([v, f]) => [v, f.toString('base64')])),
      }),
    );
    const r1 = await peer.reply();
    expect(r1.uncertainty).toBe(Math.fround(r1.tau * r1.tau));
    await peer.close();

    const openpi = await Peer.open(`${ensembleServer.url}/openpi`);
    await openpi.next();
    openpi.sendRaw(
      python.pack({
        'observation/image': frames.front,
        'observation/side_image': frames.side,
        'observation/wrist_image': frames.wrist,
        prompt: 'pick_place',
      }),
    );
    const o0 = (await openpi.next()).data as Record<string, any>;
    expect(o0.uncertainty).toBeGreaterThanOrEqual(0);
    expect(o0.uncertainty).toBe(r0.uncertainty); // the same frames at step 0 of an episode
    await openpi.close();
  });
});

describe('HTTP routes', () => {
  it('GET /healthz, /metrics (Prometheus text), /v1/models; 404 and 405 otherwise', async () => {
    const http = server.url.replace('ws', 'http');
    const health = await fetch(`${http}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', model: 'tiny-fixture' });
    const models = await (await fetch(`${http}/v1/models`)).json();
    expect(models.models[0]).toMatchObject({ name: 'tiny-fixture', views: [...VIEWS], heads: { sarm: true, grm: true } });
    expect(models.models[0].tasks[0].stages[0]).toEqual({ name: 'reach', prior: 0.2 });
    const metrics = await fetch(`${http}/metrics`);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    const text = await metrics.text();
    for (const series of [
      'stageward_steps_total',
      'stageward_errors_total{code="SW_ERR_VIEW_MISSING"}',
      'stageward_sessions{endpoint="native"}',
      'stageward_step_seconds_bucket{le="0.01"}',
      'stageward_batch_rows_bucket{graph="encoder",le="4"}',
      'stageward_batch_queue_depth{graph="sarm"} 0',
      'stageward_in_flight_messages',
      'stageward_model_info{name="tiny-fixture",version="0.0.1"} 1',
    ]) {
      expect(text).toContain(series);
    }
    expect(Number(/^stageward_steps_total (\d+)$/m.exec(text)![1])).toBeGreaterThan(10);
    expect((await fetch(`${http}/nope`)).status).toBe(404);
    expect((await fetch(`${http}/healthz`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${http}/`)).status).toBe(200);
  });
});
