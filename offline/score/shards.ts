// Sharded offline scoring, for cluster schedulers (a Kubernetes Indexed Job, a Slurm array; see
// SHARDING.md): N independent `stageward score --shard I/N` runs each score a share of a dataset's
// episodes and write a part; `stageward score merge` turns the N parts into the dataset's
// sarm_progress.parquet and OUT/summary.json, byte-identical to what one run over all of them writes.
//
//   stageward score --model M --dataset D --shard 0/4     (on four machines, I = 0..3)
//   stageward score merge --dataset D                     (once all four are done)
//
// The share: the run's episodes (all of the dataset's, or those of --episodes that it has), sorted by
// index; the one at position p belongs to shard p mod N. Round-robin rather than contiguous blocks
// because recorded datasets drift in episode length along the index (operators get faster, tasks get
// harder), and interleaving spreads that drift over all shards. The share depends on the selection
// and N only, never on the machine, its clock or the order files are listed in.
//
// A part is two files in <dataset>/sarm_progress.parts/:
//
//   part-I-of-N.parquet  the scored episodes' values as float64, exactly what the single run hands
//                        writeProgressParquet (episode_index, frame_index, index, progress_sparse,
//                        progress_dense, progress_uncertainty); absent when the part scored nothing
//   part-I-of-N.json     the manifest: what made the part (`run`: the dataset's identity, the model
//                        and the sha256 of its files, the options that change values, the selection,
//                        N and the share rule), I, the episodes it covers, the parquet's sha256, the
//                        per-episode reports and the summary fields of the run
//
// Both are written atomically, the manifest last, so a part exists once its manifest does; a manifest
// whose parquet no longer hashes to the recorded value (a rerun that died between the two writes) is
// refused. Merge refuses parts made from something else (SW_ERR_SHARD_FOREIGN), two parts for one I
// or overlapping episodes (SW_ERR_SHARD_DUPLICATE), and an incomplete set (SW_ERR_SHARD_MISSING).

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { ColumnSource } from 'hyparquet-writer';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { StagewardError, type ErrorCode } from '../../core/errors.ts';
import { writeFileAtomic } from '../../core/files.ts';
import { INFO_PATH, scalarColumn, schemaOf } from '../../datasets/format.ts';
import { readParquetRows } from '../../datasets/parquet-file.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import type { ModelCard } from '../../models/card.ts';
import { writeProgressParquet, type ProgressFileResult, type ScoredEpisodeProgress } from './progress-parquet.ts';
import { totalsOf, type EpisodeReport, type RunTotals } from './report.ts';

/** Where the parts live, in the dataset root beside sarm_progress.parquet. */
export const SHARD_PARTS_DIR = 'sarm_progress.parts';
export const SHARD_RULE = 'round-robin';
const PART_FORMAT = 'stageward.score-part/1';

export interface ShardSpec {
  /** I, in 0..count-1. */
  index: number;
  /** N >= 1. */
  count: number;
}

export function checkShard(s: ShardSpec): void {
  if (!Number.isInteger(s.count) || s.count < 1 || !Number.isInteger(s.index) || s.index < 0 || s.index >= s.count)
    throw new StagewardError('SW_ERR_BAD_OPTION', `shard ${s.index}/${s.count}: I/N needs integers with N >= 1 and 0 <= I < N`);
}

/** Shard I of N's episodes: every N-th of the sorted selection, starting at position I. */
export function shardShare(selection: readonly number[], s: ShardSpec): number[] {
  return [...selection].sort((a, b) => a - b).filter((_, p) => p % s.count === s.index);
}

export const partStem = (s: ShardSpec) => `part-${s.index}-of-${s.count}`;

/** Sorted indices as `0-9,12`. */
export function formatRanges(sorted: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(j === i ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

function parseRanges(text: string): number[] | null {
  if (text === '') return [];
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return null;
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * What a dataset is, wherever it is mounted: info.json's bytes and the episode table's structure
 * (indices, lengths, global ranges, tasks, video slices). Copies hash the same; an added episode,
 * a re-encoded video table or an edited info.json do not.
 */
export async function datasetIdentity(ds: LeRobotDataset): Promise<string> {
  const episodes = ds.episodes.map((e) => [
    e.index,
    e.length,
    e.datasetFrom,
    e.datasetTo,
    e.tasks,
    Object.entries(e.videos).map(([v, s]) => [v, s.chunkIndex, s.fileIndex, s.fromSeconds, s.toSeconds]),
  ]);
  return `sha256:${sha256(`${sha256(await readFile(join(ds.root, INFO_PATH)))}\n${JSON.stringify(episodes)}`)}`;
}

/** The sha256 of a package's card and the graphs it names: two copies of one model agree, a retrained one does not. */
export async function modelDigest(dir: string, card: ModelCard): Promise<string> {
  const files = ['model.json', card.graphs.encoder, card.graphs.sarm, ...(card.graphs.grm === undefined ? [] : [card.graphs.grm])];
  const lines: string[] = [];
  for (const f of files) lines.push(`${f} ${await fileSha256(join(dir, f))}`);
  return `sha256:${sha256(lines.join('\n'))}`;
}

/** What made a part; every part of one sharded run has the same. */
export interface PartRun {
  dataset: string;
  model: { name: string; version: string; sha256: string | null };
  /** The scoring options that change values (not batch sizes, threads or providers). */
  options: Record<string, unknown>;
  /** The run's episodes (before sharding), as `0-9,12`. */
  selection: string;
  shards: number;
  rule: string;
}

export interface PartEpisodeData {
  episode: number;
  frames: number;
  dense: boolean;
  uncertainty: boolean;
}

export interface PartManifest {
  format: typeof PART_FORMAT;
  shard: ShardSpec;
  run: PartRun;
  /** Every episode of the share, scored or failed. */
  episodes: number[];
  data: { file: string; sha256: string; rows: number; episodes: PartEpisodeData[] } | null;
  reports: EpisodeReport[];
  /** summary.json's fields other than totals, episodes and parquet. */
  summary: Record<string, unknown>;
  wall_s: number;
  /** The model path the run was given, for sarm_progress.parquet's `reward_model_path` (not part of the run's identity). */
  reward_model_path?: string | null;
  host: string;
  written_at: string;
}

export interface ScorePartResult {
  shard: ShardSpec;
  /** The manifest's path, and the values' (null when the part scored nothing). */
  manifest: string;
  data: string | null;
  episodes: number;
  rows: number;
}

/** Write one part (values, then manifest) into <dataset>/sarm_progress.parts/. */
export async function writeScorePart(
  ds: LeRobotDataset,
  part: Omit<PartManifest, 'format' | 'data' | 'host' | 'written_at'>,
  scored: readonly ScoredEpisodeProgress[],
): Promise<ScorePartResult> {
  const dir = join(ds.root, SHARD_PARTS_DIR);
  const stem = partStem(part.shard);
  let data: PartManifest['data'] = null;
  if (scored.length > 0) {
    const episode: bigint[] = [];
    const frame: bigint[] = [];
    const index: bigint[] = [];
    const sparse: number[] = [];
    const dense: (number | null)[] = [];
    const uncertainty: (number | null)[] = [];
    for (const s of scored) {
      for (let t = 0; t < s.index.length; t++) {
        episode.push(BigInt(s.episode));
        frame.push(BigInt(t));
        index.push(BigInt(s.index[t]!));
        sparse.push(s.sparse[t]!);
        dense.push(s.dense ? s.dense[t]! : null);
        uncertainty.push(s.uncertainty ? s.uncertainty[t]! : null);
      }
    }
    const columns: [ReturnType<typeof scalarColumn>, ColumnSource][] = [
      [scalarColumn('episode_index', 'INT64'), { name: 'episode_index', data: BigInt64Array.from(episode) }],
      [scalarColumn('frame_index', 'INT64'), { name: 'frame_index', data: BigInt64Array.from(frame) }],
      [scalarColumn('index', 'INT64'), { name: 'index', data: BigInt64Array.from(index) }],
      [scalarColumn('progress_sparse', 'DOUBLE'), { name: 'progress_sparse', data: sparse }],
      [scalarColumn('progress_dense', 'DOUBLE'), { name: 'progress_dense', data: dense }],
      [scalarColumn('progress_uncertainty', 'DOUBLE'), { name: 'progress_uncertainty', data: uncertainty }],
    ];
    const bytes = new Uint8Array(
      parquetWriteBuffer({
        schema: schemaOf(columns.map((c) => c[0])),
        columnData: columns.map((c) => c[1]),
        createdBy: 'stageward',
        rowGroupSize: Math.max(1, index.length),
      }),
    );
    // The hash is of the bytes written, so a later rename of another run's file over this one shows.
    await writeFileAtomic(join(dir, `${stem}.parquet`), bytes);
    data = {
      file: `${stem}.parquet`,
      sha256: `sha256:${sha256(bytes)}`,
      rows: index.length,
      episodes: scored.map((s) => ({ episode: s.episode, frames: s.index.length, dense: s.dense !== null, uncertainty: !!s.uncertainty })),
    };
  }
  const manifest: PartManifest = { format: PART_FORMAT, ...part, data, host: hostname(), written_at: new Date().toISOString() };
  const manifestPath = join(dir, `${stem}.json`);
  await writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return {
    shard: part.shard,
    manifest: manifestPath,
    data: data ? join(dir, data.file) : null,
    episodes: part.episodes.length,
    rows: data?.rows ?? 0,
  };
}

interface LoadedPart {
  file: string;
  path: string;
  m: PartManifest;
}

const isInt = (v: unknown): v is number => Number.isInteger(v);

async function readManifest(path: string): Promise<PartManifest> {
  const bad = (why: string): never => {
    throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} is not a score part manifest: ${why}; rerun its shard`);
  };
  let m: Partial<PartManifest>;
  try {
    m = JSON.parse(await readFile(path, 'utf8')) as Partial<PartManifest>;
  } catch (err) {
    return bad((err as Error).message);
  }
  if (m === null || typeof m !== 'object') return bad('not a JSON object');
  if (m.format !== PART_FORMAT) return bad(`format is ${JSON.stringify(m.format)}, not ${PART_FORMAT}`);
  if (!m.shard || !isInt(m.shard.index) || !isInt(m.shard.count)) return bad('no shard {index, count}');
  if (!m.run || typeof m.run !== 'object' || !isInt(m.run.shards) || typeof m.run.selection !== 'string') return bad('no run');
  if (!Array.isArray(m.episodes) || !m.episodes.every(isInt)) return bad('no episode list');
  if (!Array.isArray(m.reports)) return bad('no reports');
  if (m.summary === null || typeof m.summary !== 'object') return bad('no summary');
  if (typeof m.wall_s !== 'number' || typeof m.written_at !== 'string') return bad('no wall_s or written_at');
  if (m.reward_model_path !== undefined && m.reward_model_path !== null && typeof m.reward_model_path !== 'string')
    return bad('reward_model_path is neither a string nor null');
  if (m.data !== null && (typeof m.data !== 'object' || typeof m.data?.file !== 'string' || !Array.isArray(m.data.episodes)))
    return bad('data is neither null nor {file, sha256, rows, episodes}');
  if (m.shard.count !== m.run.shards || m.shard.index < 0 || m.shard.index >= m.shard.count)
    return bad(`shard ${m.shard.index}/${m.shard.count} is not one of the run's ${m.run.shards}`);
  return m as PartManifest;
}

/** `a.b.c` -> JSON of the leaf, for comparing runs field by field. */
function flatten(v: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, JSON.stringify(v ?? null));
  return out;
}

const runKey = (r: PartRun) =>
  JSON.stringify([...flatten(r).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).filter(([k]) => k !== 'dataset'));

function differences(a: PartRun, ref: PartRun): string {
  const [fa, fr] = [flatten(a), flatten(ref)];
  const keys = [...new Set([...fa.keys(), ...fr.keys()])].filter((k) => k !== 'dataset' && fa.get(k) !== fr.get(k));
  const name = (k: string) => (k === 'shards' ? 'N' : k);
  return keys.map((k) => `${name(k)} ${fa.get(k) ?? 'absent'} instead of ${fr.get(k) ?? 'absent'}`).join(', ');
}

const fail = (code: ErrorCode, message: string): never => {
  throw new StagewardError(code, message);
};

/**
 * The parts of one run, checked: made from this dataset and from one run (the largest group of
 * agreeing parts, the newest on a tie, is the run; the rest are foreign), one per I, disjoint, each
 * holding its share, and all N there.
 */
async function checkedParts(ds: LeRobotDataset, dir: string, hooks: MergeHooks): Promise<LoadedPart[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /^part-.*\.json$/.test(n)).sort();
  } catch {
    names = [];
  }
  if (names.length === 0)
    fail('SW_ERR_SHARD_MISSING', `no parts in ${dir}: run \`stageward score --dataset ${ds.root} --shard I/N\` for every I first`);
  hooks.onPlanned?.(names.length);
  const parts: LoadedPart[] = [];
  for (const file of names) {
    const path = join(dir, file);
    parts.push({ file, path, m: await readManifest(path) });
    hooks.onPart?.(file);
  }

  const identity = await datasetIdentity(ds);
  const others = parts.filter((p) => p.m.run.dataset !== identity);
  if (others.length > 0)
    fail(
      'SW_ERR_SHARD_FOREIGN',
      `${others.map((p) => p.file).join(', ')} ${others.length === 1 ? 'was' : 'were'} made from another dataset, or from this one before it changed (its identity is ${identity}); remove ${others.length === 1 ? 'it' : 'them'} or rerun ${others.length === 1 ? 'its shard' : 'their shards'}`,
    );
  const groups = new Map<string, LoadedPart[]>();
  for (const p of parts) groups.set(runKey(p.m.run), [...(groups.get(runKey(p.m.run)) ?? []), p]);
  const newest = (g: LoadedPart[]) => g.reduce((a, p) => (p.m.written_at > a ? p.m.written_at : a), '');
  const run = [...groups.values()].sort((a, b) => b.length - a.length || newest(b).localeCompare(newest(a)))[0]!;
  const ref = run[0]!.m.run;
  const foreign = parts.filter((p) => !run.includes(p));
  if (foreign.length > 0)
    fail(
      'SW_ERR_SHARD_FOREIGN',
      `parts of another run in ${dir}: ${foreign.map((p) => `${p.file} (${differences(p.m.run, ref)})`).join('; ')}, against ${run.map((p) => p.file).join(', ')}; remove the stale parts or rerun their shards with the same model and options`,
    );

  const byIndex = new Map<number, LoadedPart[]>();
  for (const p of run) byIndex.set(p.m.shard.index, [...(byIndex.get(p.m.shard.index) ?? []), p]);
  const twice = [...byIndex.entries()].filter(([, ps]) => ps.length > 1);
  if (twice.length > 0)
    fail(
      'SW_ERR_SHARD_DUPLICATE',
      twice.map(([i, ps]) => `${ps.map((p) => p.file).join(' and ')} both claim shard ${i}/${ref.shards}`).join('; ') + '; keep one',
    );
  const owner = new Map<number, string>();
  for (const p of run) {
    for (const e of p.m.episodes) {
      const other = owner.get(e);
      if (other !== undefined) fail('SW_ERR_SHARD_DUPLICATE', `episode ${e} is in both ${other} and ${p.file}`);
      owner.set(e, p.file);
    }
  }
  const selection = parseRanges(ref.selection) ?? fail('SW_ERR_DATASET_FORMAT', `${run[0]!.path}: run.selection is not N or N-M,...`);
  for (const p of run) {
    const share = shardShare(selection, p.m.shard);
    if (share.join(',') !== [...p.m.episodes].sort((a, b) => a - b).join(','))
      fail(
        'SW_ERR_SHARD_FOREIGN',
        `${p.file} covers episodes ${formatRanges([...p.m.episodes].sort((a, b) => a - b)) || '(none)'}, not shard ${p.m.shard.index}/${ref.shards}'s ${ref.rule} share ${formatRanges(share) || '(none)'} of ${ref.selection}`,
      );
  }
  const missing = Array.from({ length: ref.shards }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length > 0)
    fail(
      'SW_ERR_SHARD_MISSING',
      `shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${ref.shards} ${missing.length > 1 ? 'have' : 'has'} no part in ${dir} (found ${run.map((p) => p.file).join(', ')}); run \`stageward score --shard I/${ref.shards}\` for ${missing.length > 1 ? 'them' : 'it'} with the same model and options`,
    );
  return run.sort((a, b) => a.m.shard.index - b.m.shard.index);
}

/** A part's values as the single run held them. */
async function partValues(p: LoadedPart, dir: string): Promise<ScoredEpisodeProgress[]> {
  const data = p.m.data;
  if (data === null) return [];
  const path = join(dir, basename(data.file));
  let digest: string;
  try {
    digest = `sha256:${await fileSha256(path)}`;
  } catch {
    return fail(
      'SW_ERR_SHARD_MISSING',
      `${p.file} names ${data.file}, which is not in ${dir}; rerun shard ${p.m.shard.index}/${p.m.shard.count}`,
    );
  }
  if (digest !== data.sha256)
    fail(
      'SW_ERR_DATASET_FORMAT',
      `${data.file} is not the file ${p.file} was written with (sha256 differs: a rerun stopped between its two writes?); rerun shard ${p.m.shard.index}/${p.m.shard.count}`,
    );
  const { rows } = await readParquetRows(path);
  if (rows.length !== data.rows) fail('SW_ERR_DATASET_FORMAT', `${data.file} has ${rows.length} rows, its manifest says ${data.rows}`);
  const out: ScoredEpisodeProgress[] = [];
  let r = 0;
  for (const e of data.episodes) {
    const slice = rows.slice(r, r + e.frames);
    r += e.frames;
    if (slice.length !== e.frames || slice.some((row, t) => Number(row.episode_index) !== e.episode || Number(row.frame_index) !== t))
      fail('SW_ERR_DATASET_FORMAT', `${data.file}: the rows of episode ${e.episode} disagree with ${p.file}`);
    out.push({
      episode: e.episode,
      index: slice.map((row) => Number(row.index)),
      sparse: slice.map((row) => row.progress_sparse as number),
      dense: e.dense ? slice.map((row) => row.progress_dense as number) : null,
      uncertainty: e.uncertainty ? slice.map((row) => row.progress_uncertainty as number) : null,
    });
  }
  return out;
}

export interface MergeOptions {
  dataset: string;
  /** Folder for summary.json; default score-<dataset name>, as the scoring runs. */
  out?: string;
  /** Remove the merged parts (and the parts folder, once empty) after writing. */
  clean?: boolean;
}

export interface MergeHooks {
  onWarning?: (message: string) => void;
  /** Manifests found. */
  onPlanned?: (parts: number) => void;
  /** After each manifest is read. */
  onPart?: (file: string) => void;
}

/** What a single run returns (run.ts's RunResult, which imports this module), plus the parts merged. */
export interface MergeResult {
  out: string;
  reports: EpisodeReport[];
  totals: RunTotals;
  parquet: ProgressFileResult | null;
  summary: Record<string, unknown>;
  shards: number;
  /** The manifests merged. */
  parts: string[];
}

/** `stageward score merge`: the parts of a sharded run -> sarm_progress.parquet and OUT/summary.json. */
export async function mergeScoreParts(o: MergeOptions, hooks: MergeHooks = {}): Promise<MergeResult> {
  const ds = await LeRobotDataset.open(o.dataset);
  const dir = join(ds.root, SHARD_PARTS_DIR);
  const parts = await checkedParts(ds, dir, hooks);
  const ref = parts[0]!.m;
  const providers = new Set(
    parts.map((p) => JSON.stringify((p.m.summary.model as { providers?: unknown } | undefined)?.providers ?? null)),
  );
  if (providers.size > 1)
    hooks.onWarning?.(
      `the parts ran on different execution providers (${parts.map((p) => `${p.m.shard.index}: ${JSON.stringify((p.m.summary.model as { providers?: unknown }).providers)}`).join('; ')}); their values may differ in the last bits from one run's`,
    );
  const scored: ScoredEpisodeProgress[] = [];
  for (const p of parts) scored.push(...(await partValues(p, dir)));
  const reports = parts.flatMap((p) => p.m.reports).sort((a, b) => a.episode - b.episode);
  const dense = ref.run.options.dense === true;
  const modelPath = parts.map((p) => p.m.reward_model_path).find((v): v is string => typeof v === 'string');
  const parquet =
    scored.length > 0 ? await writeProgressParquet(ds, scored, dense, modelPath === undefined ? {} : { rewardModelPath: modelPath }) : null;
  // The parts may have run one after another or side by side; the sum is the scoring time spent, so
  // fps_scored stays a per-run rate, comparable with a single run's.
  const wallS = parts.reduce((a, p) => a + p.m.wall_s, 0);
  const totals = totalsOf(reports, wallS);
  const out = resolve(o.out ?? `score-${basename(ds.root)}`);
  const summary = {
    ...ref.summary,
    source: { ...(ref.summary.source as Record<string, unknown>), root: ds.root },
    shards: {
      count: ref.run.shards,
      rule: ref.run.rule,
      selection: ref.run.selection,
      parts: parts.map((p) => ({
        shard: p.m.shard.index,
        episodes: formatRanges([...p.m.episodes].sort((a, b) => a - b)),
        wall_s: p.m.wall_s,
        host: p.m.host,
        written_at: p.m.written_at,
        providers: (p.m.summary.model as { providers?: unknown } | undefined)?.providers ?? null,
      })),
    },
  };
  const doc = { ...summary, totals, episodes: reports, ...(parquet ? { parquet } : {}) };
  await writeFileAtomic(join(out, 'summary.json'), `${JSON.stringify(doc, null, 2)}\n`);
  if (o.clean) {
    for (const p of parts) {
      await rm(p.path, { force: true });
      if (p.m.data) await rm(join(dir, basename(p.m.data.file)), { force: true });
    }
    await rmdir(dir).catch(() => {}); // other files left there are not ours to remove
  }
  return { out, reports, totals, parquet, summary: doc, shards: ref.run.shards, parts: parts.map((p) => p.path) };
}
