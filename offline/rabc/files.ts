// RA-BC file I/O: read a progress parquet (`sarm_progress.parquet`: index, episode_index,
// frame_index, progress_sparse, optional progress_dense) and align it with a dataset's episodes,
// then write the results atomically: `rabc_weights.parquet` and `rabc_filtered.json` beside the
// dataset, `rabc_stats.json` and `rabc_weights_hist.png` in an output folder. `readRabcWeights`
// loads the weights back for a training script.
//
//   const aligned = await readProgress(join(ds.root, PROGRESS_FILE), spansOf(ds), 'progress_sparse');
//   const result = rabcWeights(aligned.progress, { chunk: 10 });
//   await writeRabcWeights(join(ds.root, WEIGHTS_FILE), aligned.episodes, result);

import { stat } from 'node:fs/promises';
import { StagewardError } from '../../core/errors.ts';
import { scalarColumn, schemaOf } from '../../datasets/format.ts';
import { readParquetRows, writeParquetTable } from '../../datasets/parquet-file.ts';
import { writeFileAtomic } from '../../core/files.ts';
import { histogramPng, type EpisodeSpan, type FilteredList, type HistogramPlot } from './report.ts';
import type { RabcResult } from './weights.ts';

export const PROGRESS_FILE = 'sarm_progress.parquet';
export const WEIGHTS_FILE = 'rabc_weights.parquet';
export const FILTERED_FILE = 'rabc_filtered.json';
export const STATS_FILE = 'rabc_stats.json';
export const HISTOGRAM_FILE = 'rabc_weights_hist.png';

export const PROGRESS_COLUMNS = ['progress_sparse', 'progress_dense'] as const;
export type ProgressColumn = (typeof PROGRESS_COLUMNS)[number];

/** A dataset episode as the alignment needs it. */
export interface EpisodeExtent extends EpisodeSpan {
  length: number;
}

export interface AlignedProgress {
  /** The dataset's episodes, in order; `progress[i]` belongs to `episodes[i]`. */
  episodes: EpisodeExtent[];
  /** Per episode, per frame; NaN where the file has no row or a NaN/null value. */
  progress: Float64Array[];
  /** Rows read from the file. */
  rows: number;
  /** Dataset episodes the file has no row for (all their frames are missing). */
  unscoredEpisodes: number[];
}

const listSome = (xs: readonly number[], n = 10) =>
  xs.length > n ? `${xs.slice(0, n).join(', ')}, ... (${xs.length} in all)` : xs.join(', ');

/** Read `path` and place each row's progress at (episode_index, frame_index) of the dataset's episodes. */
export async function readProgress(path: string, episodes: readonly EpisodeExtent[], column: ProgressColumn): Promise<AlignedProgress> {
  try {
    await stat(path);
  } catch {
    throw new StagewardError(
      'SW_ERR_DATASET_NOT_FOUND',
      `progress file ${path} is missing; score the dataset first (stageward score writes ${PROGRESS_FILE} in its root) or pass --progress FILE`,
    );
  }
  const table = await readParquetRows(path, { columns: ['index', 'episode_index', 'frame_index', column] });
  const required = ['episode_index', 'frame_index', column];
  const absent = required.filter((c) => !table.columns.includes(c));
  if (absent.length > 0) {
    throw new StagewardError(
      'SW_ERR_DATASET_FORMAT',
      `${path} lacks the column(s) ${absent.join(', ')} (it has ${table.columns.join(', ') || 'none'}); a progress file needs index, episode_index, frame_index and ${PROGRESS_COLUMNS.join(' or ')}`,
    );
  }
  return alignProgress(table.rows, episodes, column, path);
}

/** The alignment of `readProgress`, on rows already read (int64 values may be bigint). */
export function alignProgress(
  rows: readonly Record<string, unknown>[],
  episodes: readonly EpisodeExtent[],
  column: string,
  path: string,
): AlignedProgress {
  const bad = (msg: string) => new StagewardError('SW_ERR_DATASET_FORMAT', `${path}: ${msg}`);
  const slot = new Map<number, number>(episodes.map((e, i) => [e.index, i]));
  const progress = episodes.map((e) => new Float64Array(e.length).fill(NaN));
  const seen = episodes.map((e) => new Uint8Array(e.length));
  const unknown = new Set<number>();
  const hasIndex = rows.length > 0 && rows[0]!.index !== undefined;
  rows.forEach((r, row) => {
    const ep = Number(r.episode_index);
    const t = Number(r.frame_index);
    if (!Number.isInteger(ep) || !Number.isInteger(t))
      throw bad(`row ${row} has episode_index ${String(r.episode_index)} and frame_index ${String(r.frame_index)}, not integers`);
    const i = slot.get(ep);
    if (i === undefined) {
      unknown.add(ep);
      return;
    }
    const e = episodes[i]!;
    if (t < 0 || t >= e.length) throw bad(`row ${row}: frame_index ${t} is outside episode ${ep}, which has ${e.length} frames`);
    if (seen[i]![t]) throw bad(`episode ${ep} frame ${t} appears twice`);
    seen[i]![t] = 1;
    if (hasIndex && r.index !== null && r.index !== undefined && Number(r.index) !== e.datasetFrom + t) {
      throw bad(
        `row ${row}: index ${String(r.index)} for episode ${ep} frame ${t}, but the dataset has that frame at index ${e.datasetFrom + t} (a progress file of another dataset?)`,
      );
    }
    const raw = r[column];
    const v = raw === null || raw === undefined ? NaN : Number(raw);
    if (v === Infinity || v === -Infinity) throw bad(`episode ${ep} frame ${t}: ${column} is ${v}; use NaN or null for a missing score`);
    progress[i]![t] = v;
  });
  if (unknown.size > 0) {
    const known = episodes.map((e) => e.index);
    throw new StagewardError(
      'SW_ERR_DATASET_EPISODE',
      `${path} scores episode(s) ${listSome([...unknown].sort((a, b) => a - b))} that the dataset does not have (it has ${known.length} episodes, indices ${known[0] ?? '-'}..${known.at(-1) ?? '-'}); is it the progress file of another dataset?`,
    );
  }
  const unscoredEpisodes = episodes.filter((_, i) => !seen[i]!.some((s) => s === 1)).map((e) => e.index);
  return { episodes: [...episodes], progress, rows: rows.length, unscoredEpisodes };
}

/** `rabc_weights.parquet`: index, episode_index, frame_index (int64), delta (double, NaN = no progress), weight (double). */
export async function writeRabcWeights(path: string, episodes: readonly EpisodeExtent[], result: RabcResult): Promise<void> {
  const n = result.weights.reduce((a, w) => a + w.length, 0);
  const index = new BigInt64Array(n);
  const episode = new BigInt64Array(n);
  const frame = new BigInt64Array(n);
  const delta = new Float64Array(n);
  const weight = new Float64Array(n);
  let k = 0;
  episodes.forEach((e, i) => {
    const w = result.weights[i]!;
    const d = result.deltas[i]!;
    for (let t = 0; t < w.length; t++, k++) {
      index[k] = BigInt(e.datasetFrom + t);
      episode[k] = BigInt(e.index);
      frame[k] = BigInt(t);
      delta[k] = d[t]!;
      weight[k] = w[t]!;
    }
  });
  const schema = schemaOf([
    scalarColumn('index', 'INT64'),
    scalarColumn('episode_index', 'INT64'),
    scalarColumn('frame_index', 'INT64'),
    scalarColumn('delta', 'DOUBLE'),
    scalarColumn('weight', 'DOUBLE'),
  ]);
  const meta = {
    chunk: result.stats.chunk,
    kappa: result.stats.kappa,
    eps: result.stats.eps,
    mu: result.stats.mu,
    sigma: result.stats.sigma,
  };
  await writeParquetTable(
    path,
    schema,
    [
      { name: 'index', data: index },
      { name: 'episode_index', data: episode },
      { name: 'frame_index', data: frame },
      { name: 'delta', data: delta },
      { name: 'weight', data: weight },
    ],
    [{ key: 'stageward/rabc', value: JSON.stringify(meta) }],
  );
}

export interface EpisodeWeights {
  /** Global frame index per frame. */
  index: Float64Array;
  delta: Float64Array;
  weight: Float64Array;
}

/** Read `rabc_weights.parquet` back: per episode_index, arrays in frame order (frames the file lacks get weight 1, delta NaN). */
export async function readRabcWeights(path: string): Promise<Map<number, EpisodeWeights>> {
  const { rows, columns } = await readParquetRows(path);
  for (const c of ['index', 'episode_index', 'frame_index', 'delta', 'weight']) {
    if (!columns.includes(c)) throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} lacks the column "${c}" of an RA-BC weights file`);
  }
  const lengths = new Map<number, number>();
  for (const r of rows)
    lengths.set(Number(r.episode_index), Math.max(lengths.get(Number(r.episode_index)) ?? 0, Number(r.frame_index) + 1));
  const out = new Map<number, EpisodeWeights>();
  for (const [ep, T] of lengths)
    out.set(ep, { index: new Float64Array(T).fill(NaN), delta: new Float64Array(T).fill(NaN), weight: new Float64Array(T).fill(1) });
  for (const r of rows) {
    const e = out.get(Number(r.episode_index))!;
    const t = Number(r.frame_index);
    e.index[t] = Number(r.index);
    e.delta[t] = r.delta === null ? NaN : Number(r.delta);
    e.weight[t] = Number(r.weight);
  }
  return out;
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Pretty-printed, one line per episode (ranges stay readable for long datasets). */
export async function writeFilteredList(path: string, list: FilteredList): Promise<void> {
  const { episodes, ...head } = list;
  const top = JSON.stringify(head, null, 2).replace(/\n}$/, '');
  const rows = episodes.map((e) => `    ${JSON.stringify(e)}`).join(',\n');
  await writeFileAtomic(path, `${top},\n  "episodes": [\n${rows}${rows ? '\n' : ''}  ]\n}\n`);
}

export async function writeHistogram(path: string, plot: HistogramPlot): Promise<void> {
  await writeFileAtomic(path, await histogramPng(plot));
}
