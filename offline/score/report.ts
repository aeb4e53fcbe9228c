// What offline scoring writes per episode and per run: a per-frame CSV and JSON, a PNG plot, and the
// run summary (JSON and a printed table). The per-frame rows are a pure function of the scores; the
// files are written atomically. Numbers are written in JavaScript's shortest round-trip form, so a
// reader gets back the exact doubles the engine produced.
//
// Per-frame columns: frame_index, time_s, stage (index into the task's stages), stage_name, tau,
// progress (Phi from the chosen source), progress_sparse (SARM), progress_dense (GRM fused, when GRM
// ran), uncertainty (the SARM head's std of progress, empty when the model has no ensemble), env_reward
// (the transition into this frame), reward (shaped), scored (1 where the SARM head ran; 0 on
// interpolated frames of a strided run), true_progress (the dataset's annotation, if any).

import { join } from 'node:path';
import { writeEpisodePlot } from '../eval/episode-plot.ts';
import { writeFileAtomic } from '../../core/files.ts';
import type { EpisodeScore, ScoreTiming } from './batch-scorer.ts';
import { fixed } from '../../core/format.ts';

export interface FrameRow {
  frame_index: number;
  time_s: number;
  stage: number;
  stage_name: string;
  tau: number;
  progress: number;
  progress_sparse: number;
  progress_dense?: number;
  /** null (an empty CSV cell, JSON null) when the model reports no uncertainty. */
  uncertainty: number | null;
  env_reward: number;
  reward: number;
  scored: 0 | 1;
  true_progress?: number;
}

/** Per-frame rows of one episode. Pure. */
export function frameRows(s: EpisodeScore, time: (t: number) => number, trueProgress: ArrayLike<number> | null): FrameRow[] {
  const rows: FrameRow[] = [];
  for (let t = 0; t < s.frames; t++) {
    const row: FrameRow = {
      frame_index: t,
      time_s: time(t),
      stage: s.stage[t]!,
      stage_name: s.stageNames[s.stage[t]!]!,
      tau: s.tau[t]!,
      progress: s.progress[t]!,
      progress_sparse: s.sparse[t]!,
      ...(s.dense ? { progress_dense: s.dense[t]! } : {}),
      uncertainty: s.uncertainty ? s.uncertainty[t]! : null,
      env_reward: s.envReward[t]!,
      reward: s.reward[t]!,
      scored: s.scored[t] ? 1 : 0,
    };
    if (trueProgress && t < trueProgress.length) row.true_progress = trueProgress[t]!;
    rows.push(row);
  }
  return rows;
}

const csvCell = (v: unknown) => {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** CSV text of rows (header from the first row's keys). Pure. */
export function toCsv(rows: readonly FrameRow[]): string {
  if (rows.length === 0) return '';
  const keys = Object.keys(rows[0]!) as (keyof FrameRow)[];
  return `${keys.join(',')}\n${rows.map((r) => keys.map((k) => csvCell(r[k] ?? '')).join(',')).join('\n')}\n`;
}

/** One episode's summary line. */
export interface EpisodeReport {
  episode: number;
  label: string;
  status: 'scored' | 'failed';
  task: string | null;
  frames: number;
  scored_frames: number;
  final_progress: number | null;
  mean_progress: number | null;
  max_progress: number | null;
  final_progress_dense: number | null;
  /** The dataset's recorded outcome, null when unknown. */
  success: boolean | null;
  wall_s: number;
  /** For a failed episode: the error code and message. */
  code?: string;
  message?: string;
  files?: { csv: string; json: string; plot?: string };
  timing?: ScoreTiming;
}

const mean = (xs: readonly number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

export function scoredReport(
  base: { episode: number; label: string; success: boolean | null; wall_s: number },
  s: EpisodeScore,
): EpisodeReport {
  return {
    ...base,
    status: 'scored',
    task: s.task,
    frames: s.frames,
    scored_frames: s.scored.filter(Boolean).length,
    final_progress: s.progress.at(-1) ?? null,
    mean_progress: mean(s.progress),
    max_progress: s.progress.length ? Math.max(...s.progress) : null,
    final_progress_dense: s.dense?.at(-1) ?? null,
    timing: s.timing,
  };
}

export function failedReport(
  base: { episode: number; label: string; success: boolean | null; wall_s: number; task: string | null },
  err: unknown,
): EpisodeReport {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'SW_ERR_INTERNAL';
  return {
    ...base,
    status: 'failed',
    frames: 0,
    scored_frames: 0,
    final_progress: null,
    mean_progress: null,
    max_progress: null,
    final_progress_dense: null,
    code,
    message: err instanceof Error ? err.message : String(err),
  };
}

export const episodeStem = (episode: number) => `episode-${String(episode).padStart(4, '0')}`;

/** Write OUT/episodes/<stem>.csv and .json and (unless plot is false) OUT/plots/<stem>.png; returns the relative paths. */
export async function writeEpisodeFiles(
  out: string,
  s: EpisodeScore,
  o: {
    episode: number;
    label: string;
    modelName: string;
    time: (t: number) => number;
    truth: { progress: ArrayLike<number> | null; stage: ArrayLike<number> | null };
    plot: boolean;
    header: Record<string, unknown>;
  },
): Promise<{ csv: string; json: string; plot?: string }> {
  const stem = episodeStem(o.episode);
  const rows = frameRows(s, o.time, o.truth.progress);
  const files: { csv: string; json: string; plot?: string } = {
    csv: join('episodes', `${stem}.csv`),
    json: join('episodes', `${stem}.json`),
  };
  await writeFileAtomic(join(out, files.csv), toCsv(rows));
  await writeFileAtomic(
    join(out, files.json),
    `${JSON.stringify({ ...o.header, episode: o.episode, label: o.label, task: s.task, stage_names: s.stageNames, frames: rows })}\n`,
  );
  if (o.plot) {
    files.plot = join('plots', `${stem}.png`);
    const fin = s.progress.at(-1)!;
    await writeEpisodePlot(join(out, files.plot), {
      title: `${o.modelName}: ${o.label} (${s.task}, ${s.frames} frames)`,
      subtitle: `final progress ${fin.toFixed(3)} | mean ${mean(s.progress)!.toFixed(3)}${s.dense ? ` | GRM final ${s.dense.at(-1)!.toFixed(3)}` : ''}${s.scored.every(Boolean) ? '' : ` | SARM on ${s.scored.filter(Boolean).length} frames, interpolated between`}`,
      stageNames: s.stageNames,
      sarm: s.sparse,
      stage: s.stage,
      grm: s.dense,
      trueProgress: o.truth.progress,
      trueStage: o.truth.stage,
    });
  }
  return files;
}

export interface RunTotals {
  episodes: number;
  scored: number;
  failed: number;
  frames: number;
  wall_s: number;
  /** Frames scored per second of wall time (decode + encode + heads + outputs). */
  fps_scored: number;
}

export function totalsOf(reports: readonly EpisodeReport[], wallS: number): RunTotals {
  const frames = reports.reduce((a, r) => a + r.frames, 0);
  return {
    episodes: reports.length,
    scored: reports.filter((r) => r.status === 'scored').length,
    failed: reports.filter((r) => r.status === 'failed').length,
    frames,
    wall_s: wallS,
    fps_scored: wallS > 0 ? frames / wallS : 0,
  };
}

/** The printed table: one line per episode, then the totals. */
export function summaryTable(reports: readonly EpisodeReport[], totals: RunTotals): string[] {
  const head = ['ep', 'task', 'frames', 'final', 'mean', 'max', 'success', 'status'];
  const lines = reports.map((r) => [
    String(r.episode),
    r.task ?? '-',
    String(r.frames),
    fixed(r.final_progress),
    fixed(r.mean_progress),
    fixed(r.max_progress),
    r.success === null ? '?' : r.success ? 'yes' : 'no',
    r.status === 'scored' ? 'ok' : `FAILED ${r.code}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const show = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === 1 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}`.trimEnd();
  const out = [show(head), ...lines.map(show)];
  out.push(
    `  total: ${totals.scored} of ${totals.episodes} episode(s) scored${totals.failed ? `, ${totals.failed} failed` : ''}; ${totals.frames} frames in ${totals.wall_s.toFixed(2)} s (${totals.fps_scored.toFixed(1)} frames/s)`,
  );
  for (const r of reports) if (r.status === 'failed') out.push(`  ${r.label}: ${r.code}: ${r.message}`);
  return out;
}
