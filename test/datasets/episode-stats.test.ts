// The per-episode statistics columns of meta/episodes (`stats/<feature>/<stat>`), as LeRobot v3.0
// writes them: every feature, every statistic including the quantiles, list<double> per dimension,
// list<list<list<double>>> for a camera's [3, 1, 1], count list<int64>, after the video columns; and
// meta/stats.json is their aggregate, so LeRobot's episode tools recompute the same file from them.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readParquetRows, type ParquetTable } from '../../datasets/parquet-file.ts';
import { aggregateFeatures, type FeatureStats } from '../../datasets/stats.ts';
import { actionOf, FEATURES, LENGTHS, mean, pixel, QUANTILES, referenceQuantiles, S, writeDataset } from './stats-fixture.ts';

const ORDER = ['min', 'max', 'mean', 'std', 'count', 'q01', 'q10', 'q50', 'q90', 'q99'] as const;

let work: string;
let root: string;
let table: ParquetTable;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-episode-stats-'));
  root = join(work, 'ds');
  await writeDataset(root);
  table = await readParquetRows(join(root, 'meta/episodes/chunk-000/file-000.parquet'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

describe('meta/episodes stats/<feature>/<stat> columns', () => {
  it('has one column per feature and statistic, between the video columns and meta/episodes/*', () => {
    const stats = table.columns.filter((c) => c.startsWith('stats/'));
    expect(stats).toEqual(FEATURES.flatMap((f) => ORDER.map((s) => `stats/${f}/${s}`)));
    const first = table.columns.indexOf(stats[0]!);
    expect(table.columns[first - 1]).toBe('videos/observation.images.front/to_timestamp');
    expect(table.columns[first + stats.length]).toBe('meta/episodes/chunk_index');
  });

  it('types the columns as pyarrow does: list<double>, list<int64> for count, three levels for a camera', () => {
    const schema = table.metadata.schema;
    const leafOf = (column: string) => {
      const i = schema.findIndex((s) => s.name === column);
      let j = i;
      let lists = 0;
      while (schema[j]!.num_children) {
        if (schema[j]!.converted_type === 'LIST') lists++;
        j++;
      }
      return [lists, schema[j]!.type];
    };
    expect(leafOf('stats/action/q01')).toEqual([1, 'DOUBLE']);
    expect(leafOf('stats/action/count')).toEqual([1, 'INT64']);
    expect(leafOf('stats/observation.images.front/q99')).toEqual([3, 'DOUBLE']);
    expect(leafOf('stats/observation.images.front/count')).toEqual([1, 'INT64']);
  });

  it("holds each episode's own statistics", () => {
    LENGTHS.forEach((T, e) => {
      const row = table.rows[e]!;
      const a0 = Array.from({ length: T }, (_, t) => actionOf(e, t)[0]!);
      const a1 = Array.from({ length: T }, (_, t) => actionOf(e, t)[1]!);
      const [r0, r1] = [referenceQuantiles(a0, 'float32'), referenceQuantiles(a1, 'float32')];
      for (const k of Object.keys(QUANTILES) as (keyof typeof QUANTILES)[]) expect(row[`stats/action/${k}`]).toEqual([r0[k], r1[k]]);
      expect(row['stats/action/min']).toEqual([0, e + 0.5]);
      expect(row['stats/action/max']).toEqual([T - 1, e + 0.5]);
      expect(row['stats/action/mean']).toEqual([mean(a0), e + 0.5]);
      expect(row['stats/action/count']).toEqual([BigInt(T)]);
      expect(row['stats/frame_index/max']).toEqual([T - 1]);
      expect(row['stats/episode_index/mean']).toEqual([e]);
      const red = Array.from({ length: T }, (_, t) =>
        Array.from({ length: S * S }, (_, p) => pixel(e, t, p % S, Math.floor(p / S), 0)),
      ).flat();
      const img = row['stats/observation.images.front/q50'] as number[][][];
      expect(img).toHaveLength(3);
      expect(img[0]).toEqual([[referenceQuantiles(red, 'float32').q50 / 255]]);
      expect(row['stats/observation.images.front/count']).toEqual([BigInt(T)]);
    });
  });

  it('meta/stats.json is the aggregate of the episode columns, as LeRobot recomputes it', async () => {
    const perEpisode = table.rows.map(
      (row) =>
        Object.fromEntries(
          FEATURES.map((f) => [
            f,
            Object.fromEntries(
              ORDER.map((s) => [s, s === 'count' ? (row[`stats/${f}/${s}`] as bigint[]).map(Number) : row[`stats/${f}/${s}`]]),
            ),
          ]),
        ) as Record<string, FeatureStats>,
    );
    const stats = JSON.parse(await readFile(join(root, 'meta/stats.json'), 'utf8'));
    expect(stats).toEqual(aggregateFeatures(perEpisode));
  });
});
