// What pi0 / pi0.5 clients send: natural-language prompts, no reset message between episodes. The
// prompt names a task by the card's instructions, then the prompt map, then `openpi.task`, then the
// model's only task; each reply says which task it was scored as; a new prompt or a pause of
// `openpi.episodeGapMs` starts a new episode. The native hello follows the same rule.
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StagewardServer } from '../../server/server.ts';
import { FakeProgressModel, HELLO, Peer, startTestServer } from './helpers.ts';

const python = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const b = (s: string) => Buffer.from(s);
const image = (seed: number) =>
  new Map<Buffer, unknown>([
    [b('__ndarray__'), true],
    [b('data'), new Uint8Array(32 * 32 * 3).map((_, i) => (i * 7 + seed) % 256)],
    [b('dtype'), '|u1'],
    [b('shape'), [32, 32, 3]],
  ]);
const obs = (extra: Record<string, unknown> = {}, seed = 0) => ({
  'observation/image': image(seed),
  'observation/side_image': image(seed + 1),
  'observation/wrist_image': image(seed + 2),
  ...extra,
});
const PICK = 'put the red cube in the blue bowl';
const STACK = 'stack the red cube on the green cube, then the yellow cube on the red cube';

let server: StagewardServer;
beforeAll(async () => {
  server = await startTestServer({ promptMap: { 'build a tower': 'stack_three' }, 'openpi.episodeGapMs': 400 }, new FakeProgressModel());
});
afterAll(() => server.shutdown());

async function openpi(s: StagewardServer = server): Promise<{ peer: Peer; send: (o: object) => Promise<Record<string, any>> }> {
  const peer = await Peer.open(`${s.url}/openpi`);
  const meta = (await peer.next()).data as Record<string, any>;
  expect(meta.instructions).toEqual({ pick_place: [PICK], stack_three: [STACK] });
  return {
    peer,
    send: async (o) => {
      peer.sendRaw(python.pack(o));
      return (await peer.next()).data as Record<string, any>;
    },
  };
}

describe('openpi prompts', () => {
  it('scores a natural-language prompt as the task whose instruction it is, and says so in every reply', async () => {
    const { peer, send } = await openpi();
    expect(await send(obs({ prompt: 'Put the red cube in the blue bowl.' }))).toMatchObject({
      task: 'pick_place',
      step: 0,
      new_episode: true,
    });
    expect(await send(obs({ prompt: 'put the red cube in the blue bowl.' }, 3))).toMatchObject({
      task: 'pick_place',
      step: 1,
      new_episode: false,
    });
    // A new prompt is a new episode, here of the other task; so is a prompt the map names.
    expect(await send(obs({ prompt: STACK }))).toMatchObject({ task: 'stack_three', step: 0, new_episode: true });
    expect(await send(obs({ prompt: 'Build a tower' }))).toMatchObject({ task: 'stack_three', step: 0, new_episode: true });
    await peer.close();
  });

  it('refuses a prompt that matches nothing when no default is set, listing the instructions, and keeps the connection', async () => {
    const { peer, send } = await openpi();
    const err = await send(obs({ prompt: 'fold the towel' }));
    expect(err).toMatchObject({ type: 'error', code: 'SW_ERR_TASK_UNKNOWN' });
    expect(err.message).toContain(`"${PICK}"`);
    expect(err.message).toContain('"fold the towel"');
    expect(await send(obs({ prompt: PICK }))).toMatchObject({ task: 'pick_place', new_episode: true });
    await peer.close();
  });

  it('uses openpi.task for unmatched or missing prompts when it is set', async () => {
    const s = await startTestServer({ 'openpi.task': 'stack_three' }, new FakeProgressModel());
    try {
      const { peer, send } = await openpi(s);
      expect(await send(obs({ prompt: 'fold the towel' }))).toMatchObject({ task: 'stack_three', step: 0 });
      expect(await send(obs({}, 1))).toMatchObject({ task: 'stack_three', step: 0, new_episode: true }); // no prompt: another text
      expect(await send(obs({ prompt: PICK }))).toMatchObject({ task: 'pick_place' });
      await peer.close();
    } finally {
      await s.shutdown();
    }
  });
});

describe('openpi episode boundaries without a reset message', () => {
  it('a pause of episodeGapMs or more starts a new episode; shorter pauses do not', async () => {
    const { peer, send } = await openpi();
    const first = await send(obs({ prompt: PICK }));
    expect(first).toMatchObject({ step: 0, new_episode: true });
    await new Promise((r) => setTimeout(r, 100));
    expect(await send(obs({ prompt: PICK }, 1))).toMatchObject({ episode: first.episode, step: 1, new_episode: false });
    await new Promise((r) => setTimeout(r, 450));
    const next = await send(obs({ prompt: PICK }, 2));
    expect(next).toMatchObject({ step: 0, new_episode: true });
    expect(next.episode).not.toEqual(first.episode);
    await peer.close();
  });

  it('with episodeGapMs 0 a pause never ends an episode', async () => {
    const s = await startTestServer({ 'openpi.episodeGapMs': 0 }, new FakeProgressModel());
    try {
      const { peer, send } = await openpi(s);
      await send(obs({ prompt: PICK }));
      await new Promise((r) => setTimeout(r, 300));
      expect(await send(obs({ prompt: PICK }, 1))).toMatchObject({ step: 1, new_episode: false });
      await peer.close();
    } finally {
      await s.shutdown();
    }
  });
});

describe('native hello', () => {
  it('takes an instruction or a prompt-map key as its task, and ready says which task and how it matched', async () => {
    const peer = await Peer.open(`${server.url}/v1/stream`);
    const ready = await peer.request({ ...HELLO, task: 'Stack the red cube on the green cube, then the yellow cube on the red cube' });
    expect(ready).toMatchObject({ type: 'ready', task: 'stack_three', task_match: 'instruction' });
    expect(ready.model.stages).toHaveLength(7); // stack_three's stages
    await peer.close();
    const mapped = await Peer.open(`${server.url}/v1/stream`);
    expect(await mapped.request({ ...HELLO, task: 'build a tower' })).toMatchObject({ task: 'stack_three', task_match: 'prompt_map' });
    await mapped.close();
    const unknown = await Peer.open(`${server.url}/v1/stream`);
    expect(await unknown.request({ ...HELLO, task: 'fold the towel' })).toMatchObject({ type: 'error', code: 'SW_ERR_TASK_UNKNOWN' });
    await unknown.close();
  });

  it('a prompt map naming a task the model lacks stops start-up', async () => {
    await expect(startTestServer({ promptMap: { 'build a tower': 'stack_nine' } }, new FakeProgressModel())).rejects.toMatchObject({
      code: 'SW_ERR_CONFIG',
      message: expect.stringContaining('`promptMap` maps "build a tower" to "stack_nine"'),
    });
  });
});
