// Hand-made SARM annotations into an existing LeRobot dataset (what `stageward annotate` runs): the
// keyframe file (keyframes.ts) becomes each episode's spans, written as LeRobot's annotation tool
// writes them on the episode rows, `sparse_subtask_{names,start_frames,end_frames,start_times,
// end_times}` with the writer's code (writer.ts `subtaskColumns`, inclusive end frames, times =
// frame / fps), and meta/temporal_proportions_sparse.json from the spans (labels.ts
// `temporalProportions`). The rules are in datasets/DATASETS.md, "Annotating a dataset by hand".
//
// v3.0: every meta/episodes/chunk-*/file-*.parquet is rewritten with the five columns added (or
// replaced where they were), every other column, its schema and every row kept; episodes the file
// leaves out get null cells. v2.1: meta/episodes.jsonl gets the five keys on each annotated line,
// every other key kept as written. The older unprefixed `subtask_*` columns, where a dataset has
// them, are replaced by the same values (the reader falls back on them); SARM's dense annotations
// (`dense_subtask_*`, temporal_proportions_dense.json) are a separate set and stay as they were.
//
// Atomic: the new files are written beside the old ones, then renamed over them one by one, each old
// file kept as a hard link until all are in place; a failure before the end puts every old file back.
//
//   const summary = await annotateDataset('data/pick', 'pick-keyframes.csv', { partial: true });

import { randomBytes } from 'node:crypto';
import { copyFile, link, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { ColumnSource, SchemaElement } from 'hyparquet-writer';
import { StagewardError } from '../core/errors.ts';
import { pathExists, writeFileAtomic } from '../core/files.ts';
import { DENSE_PRIORS_PATH, DENSE_SUBTASK_COLUMNS, LEGACY_SUBTASK_COLUMNS, PRIORS_PATH, schemaOf, SUBTASK_COLUMNS } from './format.ts';
import { keyframeFormat, parseKeyframes, type Keyframes } from './keyframes.ts';
import { DEFAULT_PRIOR_FLOOR, temporalProportions } from './labels.ts';
import { V21_CODEBASE_VERSION, V21_EPISODES_PATH } from './layout-v21.ts';
import { readParquetRows, writeParquetTable } from './parquet-file.ts';
import { LeRobotDataset } from './reader.ts';
import type { SubtaskSpan } from './types.ts';
import { priorsDocument, subtaskCells, subtaskColumns, type SubtaskColumnNames } from './writer.ts';

export interface AnnotateOptions {
  /** Leave the dataset's episodes the file does not mention unannotated (default false: refused). */
  partial?: boolean;
  /** Replace the dataset's sparse annotations and stage priors (default false: SW_ERR_ANNOTATION_EXISTS). */
  overwrite?: boolean;
  /** The task's stages in order (default: the file's, in order of first appearance); the file may name no others. */
  stages?: string[];
}

export interface AnnotateSummary {
  root: string;
  codebaseVersion: string;
  /** Episodes in the dataset. */
  episodes: number;
  /** Indices of the episodes annotated, ascending. */
  annotated: number[];
  /** Stages in order with their priors, as written to meta/temporal_proportions_sparse.json. */
  stages: { name: string; prior: number }[];
  /** The files replaced or added, relative to the root. */
  files: string[];
  /** Whether the dataset has dense annotations (dense_subtask_*, temporal_proportions_dense.json), left as they were. */
  denseKept: boolean;
}

/** The ten sparse annotation names: LeRobot's `sparse_subtask_*` and the older `subtask_*` the reader falls back on. */
const SPARSE_SETS: readonly SubtaskColumnNames[] = [SUBTASK_COLUMNS, LEGACY_SUBTASK_COLUMNS];
const SPARSE_NAMES: readonly string[] = SPARSE_SETS.flatMap((set) => Object.values(set));
const DENSE_NAMES: readonly string[] = Object.values(DENSE_SUBTASK_COLUMNS);

/** Key-value metadata that describes a parquet file's columns (pyarrow's schema, Hugging Face's features): stale once they change. */
const COLUMN_DESCRIPTIONS = ['ARROW:schema', 'huggingface'];

/** Annotate the dataset at `datasetDir` from the keyframe file `keyframesFile` (.csv or .json). */
export async function annotateDataset(datasetDir: string, keyframesFile: string, options: AnnotateOptions = {}): Promise<AnnotateSummary> {
  const format = keyframeFormat(keyframesFile);
  let text: string;
  try {
    text = await readFile(keyframesFile, 'utf8');
  } catch (err) {
    throw new StagewardError('SW_ERR_ANNOTATION_FILE', `cannot read ${keyframesFile}: ${(err as Error).message}`, { cause: err });
  }
  const ds = await LeRobotDataset.open(datasetDir);
  const lengths = new Map(ds.episodes.map((e) => [e.index, e.length]));
  const keyframes = parseKeyframes(text, format, { file: keyframesFile, lengths, fps: ds.fps, partial: options.partial });
  return writeAnnotations(ds, options.stages ? inStageOrder(keyframes, options.stages, keyframesFile) : keyframes, options);
}

/** `keyframes` with the stage order given; refuses an order that repeats a name or lacks one the file uses. */
function inStageOrder(keyframes: Keyframes, stages: string[], file: string): Keyframes {
  if (stages.length === 0 || stages.some((s) => s === '') || new Set(stages).size !== stages.length)
    throw new StagewardError('SW_ERR_ANNOTATION_INVALID', 'the stage order must name each stage once, none empty');
  const unknown = keyframes.stages.filter((s) => !stages.includes(s));
  if (unknown.length > 0)
    throw new StagewardError(
      'SW_ERR_ANNOTATION_INVALID',
      `${file} names stage(s) ${unknown
        .slice(0, 5)
        .map((s) => JSON.stringify(s.slice(0, 40)))
        .join(', ')} that the stage order (${stages.length} stages) lacks`,
    );
  return { ...keyframes, stages: [...stages] };
}

/** One file to replace: its path and how to write its new contents to a given path. */
interface Replacement {
  path: string;
  write: (to: string) => Promise<void>;
}

/** What rewriting a layout's episode files found and will write. */
interface EpisodeFilesPlan {
  replacements: Replacement[];
  /** Episode rows that already carry sparse annotations. */
  annotatedBefore: number;
  /** Whether some row carries dense annotations. */
  dense: boolean;
}

/** Write `keyframes`' spans and priors into the dataset `ds` was opened from. */
export async function writeAnnotations(
  ds: LeRobotDataset,
  keyframes: Keyframes,
  options: Pick<AnnotateOptions, 'overwrite'> = {},
): Promise<AnnotateSummary> {
  const annotated = [...keyframes.episodes.keys()].sort((a, b) => a - b);
  const episodes = annotated.map((index) => ({
    spans: keyframes.episodes.get(index)!,
    length: ds.episode(index).length,
    label: `episode ${index}`,
  }));
  const priors = temporalProportions(episodes, keyframes.stages, DEFAULT_PRIOR_FLOOR);
  const v21 = ds.info.codebase_version === V21_CODEBASE_VERSION;
  const plan = v21 ? await planEpisodesJsonl(ds.root, keyframes, ds.fps) : await planEpisodesParquet(ds.root, keyframes, ds.fps);
  const priorsPath = join(ds.root, PRIORS_PATH);
  const hadPriors = await pathExists(priorsPath);
  if (!options.overwrite && (plan.annotatedBefore > 0 || hadPriors)) {
    const what = [
      plan.annotatedBefore > 0
        ? `sparse subtask annotations on ${plan.annotatedBefore} episode${plan.annotatedBefore === 1 ? '' : 's'}`
        : '',
      hadPriors ? PRIORS_PATH : '',
    ]
      .filter(Boolean)
      .join(' and ');
    throw new StagewardError('SW_ERR_ANNOTATION_EXISTS', `${ds.root} already has ${what}; pass overwrite (--overwrite) to replace them`);
  }
  const { text } = priorsDocument(keyframes.stages, priors);
  const replacements = [...plan.replacements, { path: priorsPath, write: (to: string) => writeFileAtomic(to, text) }];
  await replaceFiles(replacements);
  return {
    root: ds.root,
    codebaseVersion: ds.info.codebase_version,
    episodes: ds.episodes.length,
    annotated,
    stages: keyframes.stages.map((name, k) => ({ name, prior: priors[k]! })),
    files: replacements.map((r) => relative(ds.root, r.path)),
    denseKept: plan.dense || (await pathExists(join(ds.root, DENSE_PRIORS_PATH))),
  };
}

// -------------------------------------------------------------------------------- v3.0: parquet

/** Every meta/episodes/chunk-*\/file-*.parquet, in the reader's order. */
async function episodeParquetFiles(root: string): Promise<string[]> {
  const base = join(root, 'meta', 'episodes');
  const files: string[] = [];
  for (const chunk of (await readdir(base)).filter((d) => /^chunk-\d+$/.test(d)).sort())
    for (const f of (await readdir(join(base, chunk))).filter((n) => /^file-\d+\.parquet$/.test(n)).sort())
      files.push(join(base, chunk, f));
  return files;
}

async function planEpisodesParquet(root: string, keyframes: Keyframes, fps: number): Promise<EpisodeFilesPlan> {
  const plan: EpisodeFilesPlan = { replacements: [], annotatedBefore: 0, dense: false };
  for (const path of await episodeParquetFiles(root)) {
    const { metadata, rows } = await readParquetRows(path);
    plan.annotatedBefore += rows.filter((r) => SPARSE_NAMES.some((c) => r[c] != null)).length;
    plan.dense ||= rows.some((r) => DENSE_NAMES.some((c) => r[c] != null));
    const table = annotatedTable(metadata.schema as SchemaElement[], rows, keyframes, fps);
    const kv = metadata.key_value_metadata?.filter((e) => !(table.changed && COLUMN_DESCRIPTIONS.includes(e.key)));
    plan.replacements.push({
      path,
      write: (to) =>
        writeParquetTable(
          to,
          schemaOf(table.columns.map((c) => c[0])),
          table.columns.map((c) => c[1]),
          kv?.map((e) => ({ key: e.key, value: e.value ?? '' })),
        ),
    });
  }
  return plan;
}

/**
 * An episodes table with the sparse annotation columns of `keyframes` (null cells for rows it does
 * not annotate): each of them replaces its old column in place or comes after the others; the
 * older `subtask_*` columns, where present, get the same values; every other column is kept as read.
 */
function annotatedTable(
  schema: SchemaElement[],
  rows: Record<string, unknown>[],
  keyframes: Keyframes,
  fps: number,
): { columns: [SchemaElement[], ColumnSource][]; changed: boolean } {
  const spans = rows.map((r) => keyframes.episodes.get(Number(r.episode_index)) ?? null);
  const old = columnSchemas(schema);
  const sets = SPARSE_SETS.filter((names) => names === SUBTASK_COLUMNS || Object.values(names).some((c) => old.has(c)));
  const fresh = new Map(sets.flatMap((names) => subtaskColumns(names, spans, fps)).map((c) => [c[1].name, c] as const));
  const columns: [SchemaElement[], ColumnSource][] = [...old].map(
    ([name, elements]) => fresh.get(name) ?? [elements, { name, data: rows.map((r) => r[name] ?? null) }],
  );
  for (const [name, column] of fresh) if (!old.has(name)) columns.push(column);
  const changed = !isDeepStrictEqual(columns.flatMap((c) => c[0]).map(comparable), schema.slice(1).map(comparable));
  return { columns, changed };
}

/** A schema element's defined fields, for comparing a written schema with one read. */
function comparable(e: SchemaElement): Record<string, unknown> {
  return Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined));
}

/** Each top-level column's schema elements (the column and its children), by name, in file order. */
export function columnSchemas(schema: SchemaElement[]): Map<string, SchemaElement[]> {
  const out = new Map<string, SchemaElement[]>();
  const end = (i: number): number => {
    let j = i + 1;
    for (let c = 0; c < (schema[i]!.num_children ?? 0); c++) j = end(j);
    return j;
  };
  for (let i = 1; i < schema.length;) {
    const j = end(i);
    out.set(schema[i]!.name, schema.slice(i, j));
    i = j;
  }
  return out;
}

// ------------------------------------------------------------------------------- v2.1: JSON lines

async function planEpisodesJsonl(root: string, keyframes: Keyframes, fps: number): Promise<EpisodeFilesPlan> {
  const path = join(root, V21_EPISODES_PATH);
  const plan: EpisodeFilesPlan = { replacements: [], annotatedBefore: 0, dense: false };
  const lines = (await readFile(path, 'utf8')).split('\n').map((line, i) => {
    if (line.trim() === '') return line;
    const row = JSON.parse(line) as Record<string, unknown>; // the reader has parsed it already
    if (SPARSE_NAMES.some((k) => row[k] != null)) plan.annotatedBefore++;
    plan.dense ||= DENSE_NAMES.some((k) => row[k] != null);
    return annotatedLine(line, row, keyframes.episodes.get(row.episode_index as number) ?? null, fps, `${path} line ${i + 1}`);
  });
  plan.replacements.push({ path, write: (to) => writeFileAtomic(to, lines.join('\n')) });
  return plan;
}

/**
 * One episodes.jsonl line with `spans` as the five sparse keys (each old one replaced in place, the
 * others appended; the older `subtask_*` keys, where present, get the same values), or, for an
 * episode not annotated, without any sparse key. Everything else on the line, spacing included, is
 * kept as written; a line with nothing to change is returned as it was.
 */
function annotatedLine(
  line: string,
  row: Record<string, unknown>,
  spans: readonly SubtaskSpan[] | null,
  fps: number,
  where: string,
): string {
  const { open, close, members } = objectMembers(line);
  if (spans === null && !members.some((m) => SPARSE_NAMES.includes(m.key))) return line;
  const first = members[0];
  const colon = first ? line.slice(stringEnd(line, first.start) + 1, first.valueStart) : ': ';
  const comma = members.length > 1 ? line.slice(first!.end, members[1]!.start) : ', ';
  const values = sparseValues(row, spans, fps, colon.includes(' ') ? ', ' : ',');
  const kept = members.filter((m) => !SPARSE_NAMES.includes(m.key) || values.has(m.key));
  const parts = kept.map((m, j) => {
    const i = members.indexOf(m);
    const gap =
      j === 0 ? line.slice(open + 1, first!.start) : kept[j - 1] === members[i - 1] ? line.slice(members[i - 1]!.end, m.start) : comma;
    return gap + (values.has(m.key) ? line.slice(m.start, m.valueStart) + values.get(m.key)! : line.slice(m.start, m.end));
  });
  for (const [key, value] of values)
    if (!kept.some((m) => m.key === key)) parts.push(`${parts.length > 0 ? comma : ''}${JSON.stringify(key)}${colon}${value}`);
  const trailing = members.length > 0 ? line.slice(members.at(-1)!.end, close) : line.slice(open + 1, close);
  const next = line.slice(0, open + 1) + parts.join('') + trailing + line.slice(close);
  const expected = {
    ...Object.fromEntries(Object.entries(row).filter(([k]) => !SPARSE_NAMES.includes(k))),
    ...Object.fromEntries([...values].map(([k, v]) => [k, JSON.parse(v) as unknown])),
  };
  if (!isDeepStrictEqual(JSON.parse(next), expected))
    throw new StagewardError('SW_ERR_DATASET_FORMAT', `${where}: cannot rewrite this line without changing its other keys`);
  return next;
}

/** The sparse keys an episode's row gets -> their JSON text: the five `sparse_subtask_*`, and the `subtask_*` ones where the row has any. */
function sparseValues(
  row: Record<string, unknown>,
  spans: readonly SubtaskSpan[] | null,
  fps: number,
  itemSeparator: string,
): Map<string, string> {
  const values = new Map<string, string>();
  if (spans === null) return values;
  const cells = subtaskCells(spans, fps);
  for (const names of SPARSE_SETS) {
    if (names !== SUBTASK_COLUMNS && !Object.values(names).some((k) => k in row)) continue;
    for (const [field, key] of Object.entries(names) as [keyof SubtaskColumnNames, string][])
      values.set(key, pythonJson(cells[field], field.endsWith('Times'), itemSeparator));
  }
  return values;
}

/** A list as Python's json.dumps writes it: a float list writes whole numbers as 3.0. */
function pythonJson(values: readonly (string | number)[], floats: boolean, separator: string): string {
  const item = (v: string | number) => (typeof v === 'number' && floats && Number.isInteger(v) ? v.toFixed(1) : JSON.stringify(v));
  return `[${values.map(item).join(separator)}]`;
}

/** One member of a JSON object as written: its key, and where it starts, where its value starts and where it ends on the line. */
interface Member {
  key: string;
  start: number;
  valueStart: number;
  end: number;
}

/** The braces of the JSON object on `line` and its top-level members, by position. */
function objectMembers(line: string): { open: number; close: number; members: Member[] } {
  const open = line.indexOf('{');
  const close = line.lastIndexOf('}');
  const members: Member[] = [];
  let depth = 0;
  let from = open + 1;
  let valueStart = from;
  const push = (to: number) => {
    const raw = line.slice(from, to);
    if (raw.trim() === '') return;
    const start = from + raw.length - raw.trimStart().length;
    const end = to - (raw.length - raw.trimEnd().length);
    members.push({ key: JSON.parse(line.slice(start, stringEnd(line, start) + 1)) as string, start, valueStart, end });
  };
  for (let i = open + 1; i < close; i++) {
    const c = line[i];
    if (c === '"') i = stringEnd(line, i);
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
    else if (c === ':' && depth === 0) {
      valueStart = i + 1;
      while (line[valueStart] === ' ' || line[valueStart] === '\t') valueStart++;
    } else if (c === ',' && depth === 0) {
      push(i);
      from = i + 1;
    }
  }
  push(close);
  return { open, close, members };
}

/** Index of the quote that closes the JSON string opening at `text[start]`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return text.length;
}

// ------------------------------------------------------------------------------------------ files

/**
 * Replace the files as one: every new file is written beside its target first, then each is renamed
 * over it, the old one kept as a hard link (or copy) until all are in place. Any failure renames
 * every old file back and removes what was added; the dataset is left as it was.
 */
async function replaceFiles(files: Replacement[]): Promise<void> {
  const tag = randomBytes(4).toString('hex');
  const staged = files.map((f) => ({ ...f, temp: `${f.path}.annotate-${tag}`, backup: `${f.path}.annotate-old-${tag}` }));
  const done: { path: string; backup: string | null }[] = [];
  const kept: string[] = [];
  try {
    for (const f of staged) await f.write(f.temp);
    for (const f of staged) {
      const backup = await keepOld(f.path, f.backup);
      done.push({ path: f.path, backup });
      await rename(f.temp, f.path);
    }
  } catch (err) {
    for (const d of done.reverse()) {
      try {
        if (d.backup === null) await rm(d.path, { force: true });
        else await rename(d.backup, d.path);
      } catch {
        kept.push(d.backup!);
      }
    }
    if (kept.length > 0)
      throw new StagewardError(
        'SW_ERR_DATASET_FORMAT',
        `writing the annotations failed and ${kept.length} old files could not be put back; they are kept as ${kept.join(', ')}`,
        { cause: err },
      );
    throw err;
  } finally {
    await Promise.all(staged.flatMap((f) => [rm(f.temp, { force: true }), kept.includes(f.backup) ? null : rm(f.backup, { force: true })]));
  }
}

/** Keep the file at `path` as `backup` (a hard link, else a copy); null when there is no file. */
async function keepOld(path: string, backup: string): Promise<string | null> {
  if (!(await pathExists(path))) return null;
  try {
    await link(path, backup);
  } catch {
    await copyFile(path, backup);
  }
  return backup;
}
