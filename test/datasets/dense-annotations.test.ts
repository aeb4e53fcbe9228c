// SARM's dense annotations, which its `dense_only` and `dual` annotation modes need: every dataset the
// writer produces has the episode columns dense_subtask_names / _start_frames / _end_frames /
// _start_times / _end_times and meta/temporal_proportions_dense.json. The simulator's annotators know
// only stages, so the dense spans and priors are the sparse ones.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readParquetRows } from '../../datasets/parquet-file.ts';
import { SPEC, writeDataset } from './stats-fixture.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-dense-'));
  await writeDataset(join(work, 'computed'));
  await writeDataset(join(work, 'given'), { priors: [0.25, 0.75] });
});
afterAll(() => rm(work, { recursive: true, force: true }));

const json = async (path: string) => JSON.parse(await readFile(path, 'utf8'));

describe('dense SARM annotations', () => {
  it('writes the dense span columns with the sparse spans: inclusive frames, seconds', async () => {
    const { rows, columns } = await readParquetRows(join(work, 'computed', 'meta/episodes/chunk-000/file-000.parquet'));
    const dense = columns.filter((c) => c.startsWith('dense_'));
    expect(dense).toEqual([
      'dense_subtask_names',
      'dense_subtask_start_frames',
      'dense_subtask_end_frames',
      'dense_subtask_start_times',
      'dense_subtask_end_times',
    ]);
    expect(rows.map((r) => r.dense_subtask_names)).toEqual([
      ['reach', 'grasp'],
      ['reach', 'grasp'],
    ]);
    expect(rows.map((r) => r.dense_subtask_start_frames)).toEqual([
      [0n, 5n],
      [1n, 9n],
    ]);
    expect(rows.map((r) => r.dense_subtask_end_frames)).toEqual([
      [4n, 9n],
      [6n, 12n],
    ]);
    expect(rows.map((r) => r.dense_subtask_start_times)).toEqual([
      [0, 0.5],
      [0.1, 0.9],
    ]);
    expect(rows.map((r) => r.dense_subtask_end_times)).toEqual([
      [0.4, 0.9],
      [0.6, 1.2],
    ]);
    for (const r of rows)
      for (const part of ['names', 'start_frames', 'end_frames', 'start_times', 'end_times'])
        expect(r[`dense_subtask_${part}`]).toEqual(r[`sparse_subtask_${part}`]);
  });

  it('writes meta/temporal_proportions_dense.json with the sparse priors, computed or given', async () => {
    for (const name of ['computed', 'given']) {
      const sparse = await json(join(work, name, 'meta/temporal_proportions_sparse.json'));
      const dense = await json(join(work, name, 'meta/temporal_proportions_dense.json'));
      expect(Object.keys(dense)).toEqual(SPEC.stageNames);
      expect(dense).toEqual(sparse);
    }
    expect(await json(join(work, 'given', 'meta/temporal_proportions_dense.json'))).toEqual({ reach: 0.25, grasp: 0.75 });
  });
});
