// Feature statistics with LeRobot's quantiles (q01, q10, q50, q90, q99): one episode's by the histogram
// rule (the expected values of the first two cases are what LeRobot's own get_feature_stats returns
// for the same rows), the frames LeRobot samples for image statistics, the aggregation across
// episodes, and meta/stats.json of a written dataset.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../core/random.ts';
import {
  aggregateStats,
  downsampleFactor,
  ImageEpisodeStats,
  sampleIndices,
  vectorStats,
  type FeatureStats,
} from '../../datasets/stats.ts';
import { actionOf, FEATURES, LENGTHS, mean, pixel, QUANTILES, referenceQuantiles, S, stateOf, std, writeDataset } from './stats-fixture.ts';

const ORDER = ['min', 'max', 'mean', 'std', 'count', 'q01', 'q10', 'q50', 'q90', 'q99'];
const QKEYS = Object.keys(QUANTILES) as (keyof typeof QUANTILES)[];

describe('one episode', () => {
  it("0..99 in an int64 column: LeRobot's values, keys in LeRobot's order", () => {
    const s = vectorStats(
      Array.from({ length: 100 }, (_, i) => [i]),
      1,
      'float64',
    );
    expect(Object.keys(s)).toEqual(ORDER);
    expect(s).toEqual({
      min: [0],
      max: [99],
      mean: [49.5],
      std: [28.86607004772212],
      count: [100],
      q01: [-1e-10],
      q10: [9.0089999999182],
      q50: [49.004999999999],
      q90: [89.0010000000798],
      q99: [98.010000000098],
    });
  });

  it('a float32 column bins in float32, as numpy does', () => {
    const s = vectorStats(
      Array.from({ length: 10 }, (_, t) => [Math.fround(0.25 * t)]),
      1,
      'float32',
    );
    expect([s.q01, s.q10, s.q50, s.q90, s.q99]).toEqual([
      [-1.000000013351432e-10],
      [-1.000000013351432e-10],
      [1.000349998474121],
      [2.0002498626708984],
      [2.2499549865722654],
    ]);
  });

  it('is per dimension and follows the histogram rule on random rows', () => {
    const rnd = new SeededRandom(7);
    const rows = Array.from({ length: 57 }, () => [Math.fround(rnd.normal(3)), Math.fround(rnd.range(-1, 1)), rnd.int(0, 4)]);
    const s = vectorStats(rows, 3, 'float32');
    for (let d = 0; d < 3; d++) {
      const col = rows.map((r) => r[d]!);
      const ref = referenceQuantiles(col, 'float32');
      for (const k of QKEYS) expect((s[k] as number[])[d]).toBe(ref[k]);
      expect((s.min as number[])[d]).toBe(Math.min(...col));
      expect((s.max as number[])[d]).toBe(Math.max(...col));
      expect((s.mean as number[])[d]).toBeCloseTo(mean(col), 12);
      expect((s.std as number[])[d]).toBeCloseTo(std(col), 12);
    }
    expect(s.count).toEqual([57]);
  });

  it('with one row every quantile is the mean, std 0', () => {
    expect(vectorStats([[1.5, -2]], 2, 'float32')).toEqual({
      min: [1.5, -2],
      max: [1.5, -2],
      mean: [1.5, -2],
      std: [0, 0],
      count: [1],
      q01: [1.5, -2],
      q10: [1.5, -2],
      q50: [1.5, -2],
      q90: [1.5, -2],
      q99: [1.5, -2],
    });
  });

  it('images: per channel over every pixel added, on [0, 1] as [3, 1, 1], count = frames', () => {
    const img = new ImageEpisodeStats(S, S);
    const frames = 5;
    const channel = (c: number) => {
      const v: number[] = [];
      for (let t = 0; t < frames; t++) for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) v.push(pixel(3, t, x, y, c));
      return v;
    };
    for (let t = 0; t < frames; t++) {
      const data = new Uint8Array(S * S * 3);
      for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) data[(y * S + x) * 3 + c] = pixel(3, t, x, y, c);
      img.addFrame(data);
    }
    const s = img.toJSON();
    expect(Object.keys(s)).toEqual(ORDER);
    expect(s.count).toEqual([frames]);
    for (const k of QKEYS) expect(s[k]).toEqual([0, 1, 2].map((c) => [[referenceQuantiles(channel(c), 'float32')[k] / 255]]));
    expect(s.min).toEqual([0, 1, 2].map((c) => [[Math.min(...channel(c)) / 255]]));
  });

  it('samples image frames as LeRobot does: all below 100, then about T^0.75 evenly spaced', () => {
    expect(sampleIndices(50)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const s150 = sampleIndices(150);
    expect([s150.length, s150[0], s150[1], s150[2], s150[99]]).toEqual([100, 0, 2, 3, 149]);
    expect(sampleIndices(1000)).toHaveLength(177);
    expect(sampleIndices(20000)).toHaveLength(1681);
    expect(sampleIndices(1)).toEqual([0]);
    expect([downsampleFactor(96, 96), downsampleFactor(480, 640), downsampleFactor(300, 200)]).toEqual([1, 4, 2]);
  });
});

describe('across episodes (LeRobot aggregate_stats)', () => {
  const ep = (v: number[], q: number[]): FeatureStats => ({
    min: [Math.min(...v)],
    max: [Math.max(...v)],
    mean: [mean(v)],
    std: [std(v)],
    count: [v.length],
    q01: [q[0]!],
    q10: [q[1]!],
    q50: [q[2]!],
    q90: [q[3]!],
    q99: [q[4]!],
  });

  it('pools mean and variance, sums counts, and keeps the envelope of the quantiles', () => {
    const a = aggregateStats([ep([0, 1, 2, 3], [0.1, 0.5, 1.5, 2.5, 2.9]), ep([10, 20], [10, 11, 15, 19, 19.9])]);
    expect(a).toEqual({
      min: [0],
      max: [20],
      mean: [6],
      std: [Math.sqrt(298 / 6)],
      count: [6],
      q01: [0.1],
      q10: [0.5],
      q50: [1.5],
      q90: [19],
      q99: [19.9],
    });
  });

  it("keeps a camera's [3, 1, 1] shape", () => {
    const cam = (x: number): FeatureStats =>
      Object.fromEntries(
        ['min', 'max', 'mean', 'std', 'count', ...QKEYS].map((k) => [k, k === 'count' ? [2] : [[[x]], [[x + 0.1]], [[x + 0.2]]]]),
      ) as FeatureStats;
    const a = aggregateStats([cam(0.2), cam(0.4)]);
    expect(a.q01).toEqual([[[0.2]], [[0.30000000000000004]], [[0.4]]]);
    expect(a.q99).toEqual([[[0.4]], [[0.5]], [[0.6000000000000001]]]);
    expect(a.count).toEqual([4]);
  });
});

describe('meta/stats.json of a written dataset', () => {
  let work: string;
  let stats: Record<string, FeatureStats>;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'stageward-stats-'));
    await writeDataset(join(work, 'ds'));
    stats = JSON.parse(await readFile(join(work, 'ds', 'meta/stats.json'), 'utf8'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  /** Per episode, the values of dimension d of a feature. */
  const perEpisode = (f: (e: number, t: number) => number) => LENGTHS.map((T, e) => Array.from({ length: T }, (_, t) => f(e, t)));
  /** The envelope LeRobot keeps: min over the episodes for q01..q50, max for q90, q99. */
  const envelope = (episodes: number[][], precision: 'float32' | 'float64') => {
    const refs = episodes.map((v) => referenceQuantiles(v, precision));
    return Object.fromEntries(QKEYS.map((k) => [k, (QUANTILES[k] <= 0.5 ? Math.min : Math.max)(...refs.map((r) => r[k]))]));
  };

  it('has every statistic with the quantiles for every feature, in order', () => {
    expect(Object.keys(stats)).toEqual(FEATURES);
    for (const s of Object.values(stats)) {
      expect(Object.keys(s)).toEqual(ORDER);
      expect(s.count).toEqual([24]);
    }
  });

  it("vectors: per dimension, the quantiles the envelope of the episodes' histogram quantiles", () => {
    const dims = [
      ['action', (e: number, t: number) => actionOf(e, t)[0]!, (e: number, t: number) => actionOf(e, t)[1]!],
      ['observation.state', (e: number, t: number) => Math.fround(stateOf(e, t)[0]!), (e: number, t: number) => stateOf(e, t)[1]!],
    ] as const;
    for (const [key, ...fs] of dims) {
      const s = stats[key]!;
      for (const k of QKEYS) expect(s[k]).toEqual(fs.map((f) => envelope(perEpisode(f), 'float32')[k]));
      expect(s.min).toEqual(fs.map((f) => Math.min(...perEpisode(f).flat())));
      (s.mean as number[]).forEach((m, d) => expect(m).toBeCloseTo(mean(perEpisode(fs[d]!).flat()), 10));
      (s.std as number[]).forEach((m, d) => expect(m).toBeCloseTo(std(perEpisode(fs[d]!).flat()), 10));
    }
    // An int64 column bins in float64.
    const index = envelope(
      perEpisode((e, t) => (e === 0 ? 0 : LENGTHS[0]!) + t),
      'float64',
    );
    for (const k of QKEYS) expect(stats.index![k]).toEqual([index[k]]);
  });

  it('images: per channel on [0, 1] as [3, 1, 1]', () => {
    const s = stats['observation.images.front']!;
    for (const k of ORDER.filter((k) => k !== 'count'))
      expect((s[k as keyof FeatureStats] as number[][][]).map((c) => [c.length, c[0]!.length])).toEqual([
        [1, 1],
        [1, 1],
        [1, 1],
      ]);
    // Per episode, every pixel of channel c of every frame (episodes under 100 frames: all are sampled).
    const channel = (c: number) =>
      LENGTHS.map((T, e) => {
        const v: number[] = [];
        for (let t = 0; t < T; t++) for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) v.push(pixel(e, t, x, y, c));
        return v;
      });
    const byChannel = [0, 1, 2].map((c) => envelope(channel(c), 'float32'));
    for (const k of QKEYS) expect(s[k]).toEqual(byChannel.map((q) => [[q[k]! / 255]]));
  });
});
