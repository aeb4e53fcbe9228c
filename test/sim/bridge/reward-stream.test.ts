// The reward-stream contract (sim/bridge/reward-stream.ts), one suite for both implementations: the
// engine in process and a reward server over WebSocket. Pipelined calls are answered in call order,
// s_0 carries no shaping, PBRS follows its formula at a terminal step, streams of different
// environments do not mix, and a task the model does not know is refused when the service opens.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawImage } from '../../../core/image.ts';
import { ZOO_DIR } from '../../../core/paths.ts';
import { EngineRewardService } from '../../../sim/bridge/engine-rewards.ts';
import type { ModelReward, RewardService, StreamSettings } from '../../../sim/bridge/reward-stream.ts';
import { WsRewardService } from '../../../sim/bridge/ws-rewards.ts';
import { SeededRandom } from '../../../core/random.ts';
import { expectCode } from '../../helpers.ts';

const MODEL = join(ZOO_DIR, 'pick_place');
const SETTINGS: StreamSettings = { task: 'pick_place', gamma: 0.9, shaping: 'pbrs', scale: 1 };

const IMPLEMENTATIONS: [string, (s: StreamSettings) => Promise<RewardService>][] = [
  ['engine in process', (s) => EngineRewardService.load({ ...s, model: MODEL, providers: ['cpu'], envs: 2 })],
  ['server over WebSocket', (s) => WsRewardService.connect({ ...s, model: MODEL, providers: ['cpu'], envs: 2 })],
];

/** Seeded noise frames of the model's views. */
function frameSets(n: number, seed: number, views: readonly string[], size: { height: number; width: number }): Record<string, RawImage>[] {
  const rng = new SeededRandom(seed);
  return Array.from({ length: n }, () =>
    Object.fromEntries(
      views.map((v) => {
        const data = new Uint8Array(size.height * size.width * 3);
        for (let i = 0; i < data.length; i++) data[i] = rng.int(0, 255);
        return [v, { data, height: size.height, width: size.width, channels: 3 as const }];
      }),
    ),
  );
}

describe.each(IMPLEMENTATIONS)('reward stream contract: %s', (_name, open) => {
  let service: RewardService;
  beforeAll(async () => {
    service = await open(SETTINGS);
  });
  afterAll(async () => {
    await service?.close();
  });

  it("names the model's views and resolution", () => {
    expect(service.views).toEqual(['front', 'side', 'wrist']);
    expect(service.image).toEqual({ height: 96, width: 96 });
  });

  it('answers pipelined calls in order; s_0 has no shaping; a terminal step drops the next potential', async () => {
    const stream = await service.open();
    const frames = frameSets(4, 1, service.views, service.image);
    await stream.begin();
    const replies: Promise<ModelReward>[] = [stream.step(frames[0]!)];
    replies.push(stream.step(frames[1]!, { reward: 0, terminated: false, truncated: false }));
    replies.push(stream.step(frames[2]!, { reward: 0, terminated: false, truncated: false }));
    replies.push(stream.step(frames[3]!, { reward: 1, terminated: true, truncated: false }));
    const ended = stream.end({ terminated: true, truncated: false, success: true });
    const r = await Promise.all(replies);
    await ended;
    expect(r[0]!.shaped).toBe(0);
    for (const x of r) expect(x.progress).toBeGreaterThanOrEqual(0);
    expect(r[1]!.shaped).toBeCloseTo(0.9 * r[1]!.progress - r[0]!.progress, 12);
    expect(r[3]!.shaped).toBeCloseTo(1 - r[2]!.progress, 12);
    // A second, pipelined episode on the same stream starts afresh: the same frames, the same rewards.
    const again = stream.reset();
    const first = stream.step(frames[0]!);
    const second = stream.step(frames[1]!, { reward: 0, terminated: false, truncated: false });
    await again;
    expect(await first).toEqual(r[0]);
    expect(await second).toEqual(r[1]);
    await stream.end({ terminated: false, truncated: true, success: false });
  });

  it('keeps the episodes of two streams apart when their steps interleave', async () => {
    const [a, b] = [await service.open(), await service.open()];
    const fa = frameSets(3, 2, service.views, service.image);
    const fb = frameSets(3, 3, service.views, service.image);
    const t = { reward: 0, terminated: false, truncated: false };
    const alone = async (s: typeof a, f: typeof fa) => {
      await s.begin();
      const out = [await s.step(f[0]!), await s.step(f[1]!, t), await s.step(f[2]!, t)];
      await s.end({ terminated: false, truncated: true, success: false });
      return out;
    };
    const ra = await alone(a, fa);
    const rb = await alone(b, fb);
    await Promise.all([a.begin(), b.begin()]);
    const mixed = [a.step(fa[0]!), b.step(fb[0]!), b.step(fb[1]!, t), a.step(fa[1]!, t), a.step(fa[2]!, t), b.step(fb[2]!, t)];
    const m = await Promise.all(mixed);
    expect([m[0], m[3], m[4]]).toEqual(ra);
    expect([m[1], m[2], m[5]]).toEqual(rb);
  });

  it('refuses a task the model does not know when it opens', async () => {
    await expectCode(open({ ...SETTINGS, task: 'stack_three' }), 'SW_ERR_TASK_UNKNOWN');
  });
});
