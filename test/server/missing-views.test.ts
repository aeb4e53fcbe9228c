// A robot with fewer cameras than the model: refused by default; with missingViews "fill" (and a card
// that declares `missing_views`), the views it lacks are filled with a black frame, in the engine, on
// both endpoints, and `stageward eval --fill-view` measures what that costs.
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxProgressModel } from '../../models/package.ts';
import { RewardEngine } from '../../models/engine.ts';
import type { StagewardServer } from '../../server/server.ts';
import { expectCode, fixtureCopy } from '../helpers.ts';
import { HELLO, jpegFrames, keepOpen, Peer, startTestServer } from './helpers.ts';

const python = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
let tolerant: OnnxProgressModel;
beforeAll(async () => {
  tolerant = await OnnxProgressModel.load(await fixtureCopy((card) => (card.missing_views = { fill: 'black' })));
});
afterAll(() => tolerant.close());

describe('the engine fills a missing view', () => {
  it('as exactly the black frame the card names, and refuses the filled view from the client', async () => {
    const engine = new RewardEngine(tolerant);
    const frames = await jpegFrames();
    const { side: _, ...twoViews } = frames;
    const black = { data: new Uint8Array(64 * 64 * 3), height: 64, width: 64, channels: 3 as const };
    const filled = await engine.start({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs', fill: ['side'], views: ['front', 'wrist'] });
    const explicit = await engine.start({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs' });
    for (let t = 0; t < 3; t++) {
      const a = await filled.step({ frames: twoViews });
      const b = await explicit.step({ frames: { ...twoViews, side: black } });
      expect(a.progress).toBe(b.progress);
      expect(a.stage.probs).toEqual(b.stage.probs);
    }
    await expectCode(filled.step({ frames }), 'SW_ERR_VIEW_UNKNOWN', 'filled');
  });

  it('only when the card declares a fill, and never every view', async () => {
    const strict = await OnnxProgressModel.load(await fixtureCopy());
    try {
      const engine = new RewardEngine(strict);
      await expectCode(
        engine.start({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs', fill: ['side'] }),
        'SW_ERR_BAD_OPTION',
        'missing_views',
      );
    } finally {
      await strict.close();
    }
    const engine = new RewardEngine(tolerant);
    await expectCode(
      engine.start({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs', fill: ['front', 'side', 'wrist'] }),
      'SW_ERR_BAD_OPTION',
      'at least one view',
    );
    await expectCode(engine.start({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs', fill: ['top'] }), 'SW_ERR_BAD_OPTION', 'not one of');
  });
});

describe('missingViews on the server', () => {
  let server: StagewardServer;
  beforeAll(async () => {
    server = await startTestServer(
      { missingViews: 'fill', 'openpi.views': { 'observation/image': 'front', 'observation/wrist_image': 'wrist' } },
      keepOpen(tolerant),
    );
  });
  afterAll(() => server?.shutdown());

  it('native: a hello listing two of three views gets the third filled, and says so', async () => {
    const frames = await jpegFrames();
    const peer = await Peer.open(`${server.url}/v1/stream`);
    expect(await peer.request({ ...HELLO, views: ['front', 'wrist'] })).toMatchObject({ type: 'ready', filled_views: ['side'] });
    await peer.request({ type: 'reset' });
    expect(await peer.request({ type: 'step', seq: 0, frames: { front: frames.front, wrist: frames.wrist } })).toMatchObject({
      type: 'reward',
      step: 0,
    });
    await peer.close();
  });

  it('openpi: a two-camera robot mapped to two views, the third filled', async () => {
    const frames = await jpegFrames();
    const peer = await Peer.open(`${server.url}/openpi`);
    expect((await peer.next()).data).toMatchObject({ filled_views: ['side'] });
    peer.sendRaw(python.pack({ 'observation/image': frames.front, 'observation/wrist_image': frames.wrist, prompt: 'pick_place' }));
    expect((await peer.next()).data).toMatchObject({ step: 0, new_episode: true });
    await peer.close();
  });

  it('refuse (the default) keeps refusing a missing view, and fill needs a card that declares it', async () => {
    const strict = await startTestServer();
    try {
      const peer = await Peer.open(`${strict.url}/v1/stream`);
      expect(await peer.request({ ...HELLO, views: ['front', 'wrist'] })).toMatchObject({ type: 'error', code: 'SW_ERR_VIEW_MISSING' });
      await peer.close();
    } finally {
      await strict.shutdown();
    }
    await expect(startTestServer({ missingViews: 'fill' })).rejects.toMatchObject({
      code: 'SW_ERR_CONFIG',
      message: expect.stringContaining('declares no `missing_views`'),
    });
  });
});
