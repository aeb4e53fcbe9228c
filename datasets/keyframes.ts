// Hand-written keyframe files -> SARM subtask spans per episode, pure (datasets/DATASETS.md,
// "Annotating a dataset by hand"). A person watching an episode's video notes the frame (or second)
// where each stage begins; every stage then runs until the frame before the next one begins, the last
// until the episode's last frame, so the spans cover the episode with inclusive ends (types.ts).
//
//   episode,stage,start           {"episodes": {"0": [{"stage": "reach", "start": 0},
//   0,reach,0                                         {"stage": "grasp", "start": 31}]}}
//   0,grasp,31
//
// `start_s` (seconds) may stand for `start`: frame = round(seconds * fps), the rule annotations.ts
// reads LeRobot's times with. A malformed file is SW_ERR_ANNOTATION_FILE, a keyframe that breaks
// the rules (first start not 0, starts not increasing, a start past the episode, an empty stage name)
// SW_ERR_ANNOTATION_INVALID, an episode the dataset lacks SW_ERR_DATASET_EPISODE, and dataset
// episodes the file leaves out SW_ERR_ANNOTATION_MISSING unless `partial`. Every message names the
// file and its line (CSV) or episode (JSON), and quotes user text cut short (core/errors.ts `echo`).

import { ECHO_MAX_CHARS, echo, StagewardError } from '../core/errors.ts';
import type { SubtaskSpan } from './types.ts';

export type KeyframeFormat = 'csv' | 'json';

/** What the parser checks keyframes against. */
export interface KeyframeInput {
  /** The file as the user named it: every error message starts with it. */
  file: string;
  /** Frames of every episode of the dataset, by episode index. */
  lengths: ReadonlyMap<number, number>;
  fps: number;
  /** Leave the dataset's episodes the file does not mention unannotated (default false: refused). */
  partial?: boolean;
}

export interface Keyframes {
  /** Stage names in order of first appearance: episodes in index order, each one's stages in time order. */
  stages: string[];
  /** Each annotated episode's spans, ascending episode index; they cover the episode, ends inclusive. */
  episodes: Map<number, SubtaskSpan[]>;
}

/** Most missing episode indices a refusal lists. */
export const MISSING_LISTED = 10;

/** One stage boundary as written: where it is in the file, its stage and its start in frames or seconds. */
interface Keyframe {
  episode: number;
  stage: string;
  start: { frame: number } | { seconds: number };
  /** `line 7` (CSV) or `episode 3, keyframe 2` (JSON), for messages. */
  where: string;
}

const INTEGER = /^\d+$/;
const DECIMAL = /^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** The file's format from its extension (.csv or .json, any case); anything else is SW_ERR_ANNOTATION_FILE. */
export function keyframeFormat(file: string): KeyframeFormat {
  const m = /\.(csv|json)$/i.exec(file);
  if (!m) throw new StagewardError('SW_ERR_ANNOTATION_FILE', `${file}: a keyframe file must end in .csv or .json`);
  return m[1]!.toLowerCase() as KeyframeFormat;
}

/** Parse a keyframe file's text and check it against the dataset's episodes. */
export function parseKeyframes(text: string, format: KeyframeFormat, input: KeyframeInput): Keyframes {
  const raw = format === 'csv' ? csvKeyframes(text, input.file) : jsonKeyframes(text, input.file);
  return spansOf(raw, input);
}

// --------------------------------------------------------------------------------------------- CSV

const CSV_COLUMNS = ['episode', 'stage', 'start', 'start_s'] as const;
type CsvColumn = (typeof CSV_COLUMNS)[number];

/** The keyframes of a CSV file: a header naming episode, stage and start and/or start_s, one row per boundary. */
function csvKeyframes(text: string, file: string): Keyframe[] {
  const bad = (where: string, message: string) => new StagewardError('SW_ERR_ANNOTATION_FILE', `${file} ${where}: ${message}`);
  let header: Map<CsvColumn, number> | null = null;
  const out: Keyframe[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((rawLine, i) => {
    const line = rawLine.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const where = `line ${i + 1}`;
    const fields = splitCsvLine(line);
    if (fields === null) throw bad(where, 'a quoted field is not closed');
    if (header === null) {
      header = csvHeader(fields, (m) => bad(where, m));
      return;
    }
    if (fields.length !== header.size) throw bad(where, `has ${fields.length} fields, the header has ${header.size}`);
    const cell = (c: CsvColumn) => (header!.has(c) ? fields[header!.get(c)!]! : '');
    out.push({
      episode: wholeNumber(cell('episode'), 'episode', (m) => bad(where, m)),
      stage: cell('stage'),
      start: csvStart(cell('start'), cell('start_s'), (m) => bad(where, m)),
      where,
    });
  });
  if (header === null) throw new StagewardError('SW_ERR_ANNOTATION_FILE', `${file}: no header line (episode,stage,start)`);
  return out;
}

/** Column positions of a header line (names in any case); it needs episode, stage and start or start_s, and nothing else. */
function csvHeader(fields: string[], bad: (message: string) => StagewardError): Map<CsvColumn, number> {
  const header = new Map<CsvColumn, number>();
  fields.forEach((written, k) => {
    const name = written.toLowerCase();
    if (!(CSV_COLUMNS as readonly string[]).includes(name))
      throw bad(`unknown column ${echo(written)} in the header; the columns are episode, stage, and start or start_s`);
    if (header.has(name as CsvColumn)) throw bad(`the header names ${name} twice`);
    header.set(name as CsvColumn, k);
  });
  if (!header.has('episode') || !header.has('stage') || (!header.has('start') && !header.has('start_s')))
    throw bad('the header must name episode, stage, and start (frames) or start_s (seconds)');
  return header;
}

/** A row's start: exactly one of its `start` (frames) and `start_s` (seconds) cells is filled. */
function csvStart(frames: string, seconds: string, bad: (message: string) => StagewardError): Keyframe['start'] {
  if ((frames === '') === (seconds === '')) throw bad('give the start in exactly one of start (frames) and start_s (seconds)');
  if (frames !== '') return { frame: wholeNumber(frames, 'start', bad) };
  if (!DECIMAL.test(seconds) || !Number.isFinite(Number(seconds))) throw bad(`start_s ${echo(seconds)} is not a number of seconds >= 0`);
  return { seconds: Number(seconds) };
}

/**
 * Fields of one CSV line, or null when a quote is left open: comma-separated, unquoted fields
 * trimmed, a double-quoted field taken as written with "" for a quote (no line breaks inside).
 */
export function splitCsvLine(line: string): string[] | null {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (line[i] === '"') {
      let value = '';
      for (i++; ; i++) {
        if (i >= line.length) return null;
        if (line[i] !== '"') value += line[i];
        else if (line[i + 1] === '"') value += line[++i];
        else break;
      }
      const comma = line.indexOf(',', i);
      fields.push(value + line.slice(i + 1, comma < 0 ? line.length : comma).trim());
      if (comma < 0) return fields;
      i = comma + 1;
    } else {
      const comma = line.indexOf(',', i);
      fields.push(line.slice(i, comma < 0 ? line.length : comma).trim());
      if (comma < 0) return fields;
      i = comma + 1;
    }
  }
}

function wholeNumber(text: string, what: string, bad: (message: string) => StagewardError): number {
  const n = Number(text);
  if (!INTEGER.test(text) || !Number.isSafeInteger(n)) throw bad(`${what} ${echo(text)} is not a whole number >= 0`);
  return n;
}

// -------------------------------------------------------------------------------------------- JSON

const JSON_KEYS = ['stage', 'start', 'start_s'];

/** The keyframes of a JSON file: {"episodes": {"<index>": [{"stage", "start" | "start_s"}, ...]}}. */
function jsonKeyframes(text: string, file: string): Keyframe[] {
  const bad = (message: string) => new StagewardError('SW_ERR_ANNOTATION_FILE', `${file}: ${message}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw bad(`not valid JSON (${(err as Error).message.slice(0, 80)})`);
  }
  if (!isObject(doc) || !isObject(doc.episodes))
    throw bad('must be an object {"episodes": {"<episode index>": [{"stage": ..., "start": ...}, ...]}}');
  const extra = Object.keys(doc).filter((k) => k !== 'episodes');
  if (extra.length > 0) throw bad(`unknown key ${echo(extra[0]!)}; the file holds only "episodes"`);
  const out: Keyframe[] = [];
  for (const [key, list] of Object.entries(doc.episodes)) {
    const episode = wholeNumber(key, 'episode key', bad);
    if (!Array.isArray(list)) throw bad(`episode ${key} must be a list of {"stage", "start"} keyframes`);
    list.forEach((entry: unknown, k) => out.push(jsonKeyframe(entry, episode, `episode ${key}, keyframe ${k + 1}`, bad)));
  }
  return out;
}

function jsonKeyframe(entry: unknown, episode: number, where: string, bad: (message: string) => StagewardError): Keyframe {
  const fail = (message: string) => bad(`${where}: ${message}`);
  if (!isObject(entry)) throw fail('must be an object {"stage": ..., "start": ...}');
  const extra = Object.keys(entry).filter((k) => !JSON_KEYS.includes(k));
  if (extra.length > 0) throw fail(`unknown key ${echo(extra[0]!)}; a keyframe has stage, and start or start_s`);
  if (typeof entry.stage !== 'string') throw fail('"stage" must be a string');
  if ('start' in entry === 'start_s' in entry) throw fail('give exactly one of "start" (frames) and "start_s" (seconds)');
  if ('start' in entry) {
    if (!Number.isSafeInteger(entry.start) || (entry.start as number) < 0)
      throw fail(`"start" ${shown(entry.start)} is not a whole number >= 0`);
    return { episode, stage: entry.stage, start: { frame: entry.start as number }, where };
  }
  if (typeof entry.start_s !== 'number' || !Number.isFinite(entry.start_s) || entry.start_s < 0)
    throw fail(`"start_s" ${shown(entry.start_s)} is not a number of seconds >= 0`);
  return { episode, stage: entry.stage, start: { seconds: entry.start_s }, where };
}

/** A JSON value as written, cut to ECHO_MAX_CHARS like `echo` cuts a string. */
function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length <= ECHO_MAX_CHARS ? text : `${text.slice(0, ECHO_MAX_CHARS)}... (${text.length} characters)`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// ------------------------------------------------------------------------------------------- rules

/** Keyframes -> spans per episode, by the rules in the header; both formats end here. */
function spansOf(keyframes: Keyframe[], input: KeyframeInput): Keyframes {
  const { file } = input;
  if (keyframes.length === 0) throw new StagewardError('SW_ERR_ANNOTATION_MISSING', `${file}: no keyframes`);
  const byEpisode = new Map<number, Keyframe[]>();
  for (const k of keyframes) {
    if (!input.lengths.has(k.episode))
      throw new StagewardError('SW_ERR_DATASET_EPISODE', `${file} ${k.where}: the dataset has no episode ${k.episode}`);
    byEpisode.set(k.episode, [...(byEpisode.get(k.episode) ?? []), k]);
  }
  const episodes = new Map<number, SubtaskSpan[]>();
  for (const index of [...byEpisode.keys()].sort((a, b) => a - b))
    episodes.set(index, episodeSpans(byEpisode.get(index)!, input.lengths.get(index)!, input));
  if (!input.partial) checkAllPresent(byEpisode, input);
  const stages = [...new Set([...episodes.values()].flatMap((spans) => spans.map((s) => s.name)))];
  checkStageOrderKeeps(stages, file);
  return { stages, episodes };
}

/** One episode's keyframes, in file order, as spans: each stage runs to the frame before the next starts. */
function episodeSpans(keyframes: Keyframe[], length: number, input: KeyframeInput): SubtaskSpan[] {
  const starts: number[] = [];
  keyframes.forEach((k, i) => {
    const previous = i === 0 ? undefined : { frame: starts[i - 1]!, where: keyframes[i - 1]!.where };
    starts.push(startFrame(k, length, input, previous));
  });
  return keyframes.map((k, i) => ({
    name: k.stage.trim(),
    start: starts[i]!,
    end: i + 1 < starts.length ? starts[i + 1]! - 1 : length - 1,
  }));
}

/** A keyframe's start frame, checked: a stage name, inside the episode, 0 first, after the previous start. */
function startFrame(k: Keyframe, length: number, input: KeyframeInput, previous?: { frame: number; where: string }): number {
  const invalid = (message: string) =>
    new StagewardError('SW_ERR_ANNOTATION_INVALID', `${input.file} ${k.where}: episode ${k.episode}: ${message}`);
  if (k.stage.trim() === '') throw invalid('the stage name is empty');
  const frame = 'frame' in k.start ? k.start.frame : Math.round(k.start.seconds * input.fps);
  const said = 'frame' in k.start ? `start ${frame}` : `start_s ${k.start.seconds} (frame ${frame} at ${input.fps} fps)`;
  if (frame >= length) throw invalid(`${said} is past the episode's last frame ${length - 1}`);
  if (previous === undefined && frame !== 0)
    throw invalid(`the first keyframe is at ${said}; it must be 0, so the first stage starts with the episode`);
  if (previous !== undefined && frame <= previous.frame)
    throw invalid(`${said} is not after the previous keyframe's frame ${previous.frame} (${previous.where}); starts must increase`);
  return frame;
}

/** Refuse dataset episodes the file does not mention, listing the first MISSING_LISTED. */
function checkAllPresent(byEpisode: ReadonlyMap<number, Keyframe[]>, input: KeyframeInput): void {
  const missing = [...input.lengths.keys()].filter((e) => !byEpisode.has(e)).sort((a, b) => a - b);
  if (missing.length === 0) return;
  const listed = missing.slice(0, MISSING_LISTED).join(', ') + (missing.length > MISSING_LISTED ? `, ... (${missing.length} in all)` : '');
  throw new StagewardError(
    'SW_ERR_ANNOTATION_MISSING',
    `${input.file}: no keyframes for ${missing.length} of the dataset's ${input.lengths.size} episodes: ${listed}; annotate them or pass partial (--partial) to leave them unannotated`,
  );
}

/**
 * Stage names that are whole numbers ("1") come first among a JSON object's keys whatever their
 * order, so the priors file (its keys are the stage order) could not keep this order: refused.
 */
function checkStageOrderKeeps(stages: string[], file: string): void {
  const keys = Object.keys(Object.fromEntries(stages.map((s) => [s, 0])));
  if (keys.every((k, i) => k === stages[i])) return;
  throw new StagewardError(
    'SW_ERR_ANNOTATION_INVALID',
    `${file}: stage names that are whole numbers (${echo(stages.find((s) => INTEGER.test(s)) ?? '')}) sort first among JSON keys, so meta/temporal_proportions_sparse.json could not keep the stage order; rename them (e.g. "stage_1")`,
  );
}
