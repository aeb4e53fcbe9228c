// sarm_progress.parquet's key-value metadata, as LeRobot's SARM scorer (compute_rabc_weights) writes
// it: `reward_model_path`, the model that produced the values; kept from the previous file when a run
// names none; nothing that changes between runs, so the same values give the same bytes.

import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readParquetRows } from '../../../datasets/parquet-file.ts';
import type { LeRobotDataset } from '../../../datasets/reader.ts';
import { writeProgressParquet, type ScoredEpisodeProgress } from '../../../offline/score/progress-parquet.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stageward-progress-meta-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

/** The part of a dataset writeProgressParquet reads: its root and its episodes' spans. */
async function dataset(name: string): Promise<LeRobotDataset> {
  const root = join(work, name);
  await mkdir(root, { recursive: true });
  return {
    root,
    episodes: [
      { index: 0, length: 3, datasetFrom: 0 },
      { index: 1, length: 2, datasetFrom: 3 },
    ],
  } as unknown as LeRobotDataset;
}

const EP0: ScoredEpisodeProgress = { episode: 0, index: [0, 1, 2], sparse: [0.1, 0.2, 0.3], dense: null };
const EP1: ScoredEpisodeProgress = { episode: 1, index: [3, 4], sparse: [0.5, 0.6], dense: null };
const kv = async (ds: LeRobotDataset) =>
  (await readParquetRows(join(ds.root, 'sarm_progress.parquet'))).metadata.key_value_metadata?.map((e) => [e.key, e.value]) ?? [];

describe('sarm_progress.parquet metadata', () => {
  it('records the reward model path under reward_model_path, and nothing else', async () => {
    const ds = await dataset('one');
    await writeProgressParquet(ds, [EP0, EP1], false, { rewardModelPath: 'models/zoo/pick_place' });
    expect(await kv(ds)).toEqual([['reward_model_path', 'models/zoo/pick_place']]);
  });

  it("keeps the previous file's path when a run names none, and takes a new one when given", async () => {
    const ds = await dataset('parts');
    await writeProgressParquet(ds, [EP0], false, { rewardModelPath: 'models/zoo/pick_place' });
    await writeProgressParquet(ds, [EP1], false);
    expect(await kv(ds)).toEqual([['reward_model_path', 'models/zoo/pick_place']]);
    await writeProgressParquet(ds, [EP1], false, { rewardModelPath: 'other/model' });
    expect(await kv(ds)).toEqual([['reward_model_path', 'other/model']]);
  });

  it('is deterministic: the same values and path give the same bytes, in one go or in parts', async () => {
    const a = await dataset('a');
    const b = await dataset('b');
    await writeProgressParquet(a, [EP0, EP1], false, { rewardModelPath: 'm' });
    await writeProgressParquet(b, [EP1], false, { rewardModelPath: 'm' });
    await writeProgressParquet(b, [EP0], false, { rewardModelPath: 'm' });
    const bytes = (ds: LeRobotDataset) => readFile(join(ds.root, 'sarm_progress.parquet'));
    expect(Buffer.compare(await bytes(a), await bytes(b))).toBe(0);
  });

  it('has no metadata when no path is known', async () => {
    const ds = await dataset('none');
    await writeProgressParquet(ds, [EP0, EP1], false);
    expect(await kv(ds)).toEqual([]);
  });
});
