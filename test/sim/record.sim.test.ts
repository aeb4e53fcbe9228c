// End to end: the expert recorded with the renderer into a LeRobot v3.0 dataset, read back.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RawImage } from '../../core/image.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import { LeRobotDatasetWriter } from '../../datasets/writer.ts';
import { SimEnv } from '../../sim/env.ts';
import { recordEpisode, spansFromStages } from '../../sim/record.ts';
import { createRenderer } from '../../sim/render/index.ts';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function meanAbsDiff(a: RawImage, b: RawImage): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += Math.abs(a.data[i]! - b.data[i]!);
  return s / a.data.length;
}

describe('recording demonstrations', () => {
  it('turns a per-frame stage sequence into subtask spans, regressions included', () => {
    expect(spansFromStages([0, 0, 1, 1, 2, 1, 2, 2], ['a', 'b', 'c'])).toEqual([
      { name: 'a', start: 0, end: 1 },
      { name: 'b', start: 2, end: 3 },
      { name: 'c', start: 4, end: 4 },
      { name: 'b', start: 5, end: 5 },
      { name: 'c', start: 6, end: 7 },
    ]);
  });

  for (const task of ['pick_place', 'stack_three'] as const) {
    it(`${task}: an expert episode has every stage in order, and each view's frames change between stages and differ between views`, async () => {
      const env = await SimEnv.create({ task, image: { width: 48, height: 48 }, renderer: createRenderer() });
      const ep = recordEpisode(env, 11, 'expert', 20);
      env.close();
      expect(ep.success).toBe(true);
      expect(ep.subtasks.map((s) => s.name)).toEqual(env.task.stageNames);
      const mid = (k: number) => Math.floor((ep.subtasks[k]!.start + ep.subtasks[k]!.end) / 2);
      for (const view of ['front', 'side', 'wrist']) {
        const frames = ep.frames[view]!;
        expect(frames).toHaveLength(ep.state.length);
        expect(meanAbsDiff(frames[mid(0)]!, frames[mid(ep.subtasks.length - 1)]!)).toBeGreaterThan(1);
      }
      expect(meanAbsDiff(ep.frames.front![0]!, ep.frames.side![0]!)).toBeGreaterThan(4);
      expect(meanAbsDiff(ep.frames.front![0]!, ep.frames.wrist![0]!)).toBeGreaterThan(4);
    });
  }

  it('same seed and same actions give identical frames', async () => {
    const env = await SimEnv.create({ task: 'pick_place', image: { width: 32, height: 32 }, renderer: createRenderer() });
    const a = recordEpisode(env, 5, 'mixed', 20);
    const b = recordEpisode(env, 5, 'mixed', 20);
    env.close();
    expect(b.state.length).toBe(a.state.length);
    for (const v of ['front', 'side', 'wrist']) {
      a.frames[v]!.forEach((f, t) => expect(Buffer.compare(f.data, b.frames[v]![t]!.data)).toBe(0));
    }
  });

  it('writes a dataset the reader opens, with the annotations and frames it was given', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stageward-record-'));
    dirs.push(dir);
    const env = await SimEnv.create({ task: 'pick_place', image: { width: 64, height: 64 }, renderer: createRenderer() });
    const writer = await LeRobotDatasetWriter.create(join(dir, 'ds'), env.datasetSpec());
    const eps = [recordEpisode(env, 1, 'expert', 20), recordEpisode(env, 2, 'mixed', 20)];
    for (const ep of eps) await writer.addEpisode(ep);
    await writer.finish();
    env.close();
    const ds = await LeRobotDataset.open(join(dir, 'ds'));
    expect(ds.episodes).toHaveLength(2);
    expect(ds.stageNames).toEqual(['reach', 'grasp', 'lift', 'carry', 'place']);
    for (let i = 0; i < 2; i++) {
      expect(ds.episodes[i]!.length).toBe(eps[i]!.state.length);
      expect(ds.episodes[i]!.subtasks).toEqual(eps[i]!.subtasks);
      let t = 0;
      for await (const frame of ds.frames(i, 'front')) {
        expect(meanAbsDiff(frame, eps[i]!.frames.front![t]!)).toBeLessThan(6);
        t++;
      }
      expect(t).toBe(eps[i]!.state.length);
    }
  });
});
