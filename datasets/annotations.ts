// SARM subtask annotations as LeRobot's annotation tool stores them on an episode row (v3.0's
// episodes parquet, v2.1's episodes.jsonl) -> stageward's spans in inclusive frames (types.ts).
// Pure; the rules are in datasets/DATASETS.md, "Reading LeRobot datasets".
//
// LeRobot's tool (subtask_annotation.py) writes `sparse_subtask_{names,start_times,end_times,
// start_frames,end_frames}`, the sparse ones also under the older unprefixed `subtask_*` names; its
// times are whole seconds (MM:SS from a VLM) and its frames are int(seconds * fps), so the last
// subtask of a whole-second episode ends at frame == length: one past the last frame, an exclusive
// end. stageward's spans end on their last frame (the writer stores them so), so an end equal to the
// episode length becomes length - 1. Everything else is taken as written: inner boundaries shared by
// two subtasks (end of one = start of the next) are what labels.ts allows as touching spans.

import { StagewardError } from '../core/errors.ts';
import { DENSE_SUBTASK_COLUMNS, LEGACY_SUBTASK_COLUMNS, SUBTASK_COLUMNS } from './format.ts';
import type { SubtaskSpan } from './types.ts';

export type SubtaskColumns = typeof SUBTASK_COLUMNS | typeof LEGACY_SUBTASK_COLUMNS | typeof DENSE_SUBTASK_COLUMNS;

/**
 * Column sets in the order they are tried: `sparse_subtask_*`, then the older `subtask_*`, then
 * `dense_subtask_*` (a dataset LeRobot's tool annotated in its `dense_only` mode has no sparse ones;
 * its dense subtasks are then the stages).
 */
export const ANNOTATION_COLUMN_SETS: readonly SubtaskColumns[] = [SUBTASK_COLUMNS, LEGACY_SUBTASK_COLUMNS, DENSE_SUBTASK_COLUMNS];

/**
 * The episode row's spans in inclusive frames, null when the row has no annotation names, or a
 * StagewardError (SW_ERR_ANNOTATION_INVALID, naming the episode and column) when they cannot be
 * spans of this episode. Frames win over times when both are there; times become frames as
 * round(seconds * fps). An end of exactly `length` is an exclusive end: it becomes length - 1.
 */
export function subtasksFromRow(
  row: Record<string, unknown>,
  episode: { index: number; length: number; fps: number },
): SubtaskSpan[] | null | StagewardError {
  const cols = ANNOTATION_COLUMN_SETS.find((c) => isList(row[c.names]));
  if (cols === undefined) return null;
  const label = `episode ${episode.index}`;
  const fail = (message: string) => new StagewardError('SW_ERR_ANNOTATION_INVALID', `${label}: ${message}`);
  const names = row[cols.names] as unknown[];
  const pick = (framesCol: string, timesCol: string): { column: string; values: unknown[]; times: boolean } | null => {
    if (isList(row[framesCol])) return { column: framesCol, values: row[framesCol] as unknown[], times: false };
    if (isList(row[timesCol])) return { column: timesCol, values: row[timesCol] as unknown[], times: true };
    return null;
  };
  const starts = pick(cols.startFrames, cols.startTimes);
  const ends = pick(cols.endFrames, cols.endTimes);
  if (starts === null || ends === null)
    return fail(`${cols.names} has ${names.length} names but no ${starts === null ? cols.startFrames : cols.endFrames} (or times)`);
  for (const side of [starts, ends]) {
    if (side.values.length !== names.length)
      return fail(`${cols.names} has ${names.length} names but ${side.column} has ${side.values.length} values`);
  }
  const spans: SubtaskSpan[] = [];
  for (let i = 0; i < names.length; i++) {
    if (typeof names[i] !== 'string' || names[i] === '')
      return fail(`${cols.names}[${i}] is not a stage name: ${JSON.stringify(names[i])}`);
    const start = frameOf(starts, i, episode.fps);
    const end = frameOf(ends, i, episode.fps);
    if (typeof start === 'string') return fail(start);
    if (typeof end === 'string') return fail(end);
    const T = episode.length;
    if (start < 0 || start >= T)
      return fail(`${starts.column}[${i}] is ${describe(starts, i, start)}, outside the episode's frames [0, ${T - 1}]`);
    if (end > T)
      return fail(
        `${ends.column}[${i}] is ${describe(ends, i, end)}, past the end of the episode's ${T} frames (${T} itself would be its exclusive end)`,
      );
    const last = end === T ? T - 1 : end;
    if (start > last)
      return fail(`${starts.column}[${i}] / ${ends.column}[${i}]: subtask "${names[i]}" starts at ${start}, after it ends (${last})`);
    spans.push({ name: names[i] as string, start, end: last });
  }
  return spans;
}

function isList(v: unknown): v is unknown[] {
  return Array.isArray(v);
}

/** Value i of a start/end list as a frame, or a message saying why it is none. */
function frameOf(side: { column: string; values: unknown[]; times: boolean }, i: number, fps: number): number | string {
  const raw = side.values[i];
  const v = typeof raw === 'bigint' ? Number(raw) : raw;
  if (typeof v !== 'number' || !Number.isFinite(v)) return `${side.column}[${i}] is not a number: ${String(raw)}`;
  if (side.times) return Math.round(v * fps);
  if (!Number.isInteger(v)) return `${side.column}[${i}] is ${v}, not a whole frame`;
  return v;
}

function describe(side: { column: string; values: unknown[]; times: boolean }, i: number, frame: number): string {
  return side.times ? `${String(side.values[i])} s (frame ${frame})` : String(frame);
}
