// What the dataset reader knows about one episode, whichever LeRobot layout it came from (v3.0's
// episodes table, v2.1's episodes.jsonl): its frames, tasks, where its rows and videos are, and its
// SARM annotations. reader.ts re-exports these types and builds them for v3.0; layout-v21.ts for v2.1.

import type { StagewardError } from '../core/errors.ts';
import { subtasksFromRow } from './annotations.ts';
import { META_COLUMN, SUCCESS_COLUMN } from './format.ts';
import type { SubtaskSpan } from './types.ts';

export interface VideoSlice {
  /** Absolute path of the mp4 (v3.0: concatenated episodes; v2.1: this episode alone). */
  path: string;
  chunkIndex: number;
  /** v3.0: the file index; v2.1: the episode index (one file per episode). */
  fileIndex: number;
  fromSeconds: number;
  toSeconds: number;
}

export interface EpisodeInfo {
  index: number;
  length: number;
  tasks: string[];
  /** Global frame indices [datasetFrom, datasetTo). */
  datasetFrom: number;
  datasetTo: number;
  dataPath: string;
  /** Per video view (the name after `observation.images.`); image views are read from the data rows. */
  videos: Record<string, VideoSlice>;
  /**
   * Sparse SARM annotations in frames (inclusive), or null when the dataset has none for it. Reading
   * it throws SW_ERR_ANNOTATION_INVALID when the episode's annotation columns contradict each other
   * or the episode (the rest of the episode stays usable: scoring needs no annotations).
   */
  subtasks: SubtaskSpan[] | null;
  success: boolean | null;
  /** stageward's RecordedEpisode.meta, or null. */
  meta: Record<string, unknown> | null;
}

/** An episode's fields, with its annotations as parsed: spans, or the error reading them raises. */
export type EpisodeFields = Omit<EpisodeInfo, 'subtasks'> & { subtasks: SubtaskSpan[] | null | StagewardError };

/** The EpisodeInfo of `fields`: a `subtasks` that failed to parse throws its error when read. */
export function episodeInfo(fields: EpisodeFields): EpisodeInfo {
  const { subtasks, ...rest } = fields;
  if (subtasks === null || Array.isArray(subtasks)) return { ...rest, subtasks };
  const ep = { ...rest } as EpisodeInfo;
  Object.defineProperty(ep, 'subtasks', {
    enumerable: true,
    get: () => {
      throw subtasks;
    },
  });
  return ep;
}

/** The episode's spans, or null when it has none or they cannot be read (for stage names, never throws). */
export function subtasksOrNull(ep: EpisodeInfo): SubtaskSpan[] | null {
  try {
    return ep.subtasks;
  } catch {
    return null;
  }
}

/** The optional per-episode columns every layout shares: annotations, stageward's success and meta. */
export function episodeExtras(
  row: Record<string, unknown>,
  episode: { index: number; length: number; fps: number },
): Pick<EpisodeFields, 'subtasks' | 'success' | 'meta'> {
  const metaText = row[META_COLUMN];
  return {
    subtasks: subtasksFromRow(row, episode),
    success: typeof row[SUCCESS_COLUMN] === 'boolean' ? (row[SUCCESS_COLUMN] as boolean) : null,
    meta: typeof metaText === 'string' ? parseMeta(metaText) : null,
  };
}

function parseMeta(text: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
