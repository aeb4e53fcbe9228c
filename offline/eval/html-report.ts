// The HTML report of `stageward eval` (OUT/report.html, drawn by core/html-report.ts): the aggregate
// metrics, final progress per episode, the per-episode table (id `episodes`, each row linking to its
// section), and per episode its progress (SARM, GRM, the label) with the predicted stage changes marked
// and the key frames at those changes (key-frames.ts). Also the per-episode sections that the score
// report (offline/score/html-report.ts) shares: `EpisodeSections` keeps the page bounded (at most
// MAX_EPISODE_SECTIONS sections, EPISODE_POINTS points per series, the report's thumbnail cap) and
// captures key frames only for episodes that will get a section.
//
//   const html = new EvalHtmlReport(card, fill);
//   evaluateModel({ ..., onForwardStep: html.observer, onEpisode: (r) => html.add(r, 'pp-heldout', plot) });
//   await writeFileAtomic(join(out, 'report.html'), html.render({ metrics, datasets, createdAt, version }));

import { basename } from 'node:path';
import {
  evenIndices,
  renderHtmlReport,
  REPORT_LIMITS,
  type ChartMarker,
  type ChartSeries,
  type ReportChart,
  type ReportSection,
  type TableRow,
} from '../../core/html-report.ts';
import { fixed } from '../../core/format.ts';
import type { ModelCard } from '../../models/card.ts';
import type { FrameSet } from '../../models/preprocess.ts';
import type { AggregateMetrics, EpisodeResult } from './evaluate.ts';
import { KEY_FRAMES_PER_EPISODE, KeyFrames, type KeyFrame } from './key-frames.ts';

/** Episodes that get a section (chart and key frames); the others have their table row only. */
export const MAX_EPISODE_SECTIONS = 50;
/** Points per per-episode series kept in memory and in the page. */
export const EPISODE_POINTS = 2000;

/** One chart of an episode section: series over the episode's frames. */
export interface EpisodeChart {
  /** Appended to the section id to make the chart id. */
  key: string;
  title: string;
  yLabel: string;
  yRange?: [number, number];
  series: { name: string; values: ArrayLike<number>; dash?: boolean }[];
}

export interface EpisodeSectionInput {
  id: string;
  title: string;
  lines: string[];
  frames: number;
  stageNames: readonly string[];
  /** Predicted stage index per frame: its changes are marked on every chart. */
  stage: ArrayLike<number>;
  charts: EpisodeChart[];
}

/** A marker at frame 0 and at each frame whose predicted stage differs from the frame before. Pure. */
export function stageMarkers(stage: ArrayLike<number>, stageNames: readonly string[]): ChartMarker[] {
  const out: ChartMarker[] = [];
  for (let t = 0; t < stage.length; t++)
    if (t === 0 || stage[t] !== stage[t - 1]) out.push({ x: t, label: stageNames[stage[t]!] ?? `stage ${stage[t]}` });
  return out;
}

/** An episode's section, its series downsampled to EPISODE_POINTS; a gallery when key frames were captured. Pure. */
export function episodeSection(o: EpisodeSectionInput, keyFrames: KeyFrame[] | null, omitted = 0): ReportSection {
  const keep = evenIndices(o.frames, EPISODE_POINTS);
  const markers = stageMarkers(o.stage, o.stageNames);
  const charts: ReportChart[] = o.charts.map((c) => ({
    id: `${o.id}-${c.key}`,
    title: c.title,
    xLabel: 'frame',
    yLabel: c.yLabel,
    x: keep,
    series: c.series.map((s): ChartSeries => ({ name: s.name, values: keep.map((i) => s.values[i]!), dash: s.dash ?? false })),
    markers,
    ...(c.yRange ? { yRange: c.yRange } : {}),
  }));
  return {
    id: o.id,
    title: o.title,
    lines: o.lines,
    charts,
    ...(keyFrames
      ? {
          gallery: {
            title: 'Key frames: the first frame and each predicted stage change',
            thumbs: keyFrames.map((k) => ({ caption: `frame ${k.frame}: ${o.stageNames[k.stage] ?? `stage ${k.stage}`}`, jpeg: k.jpeg })),
            omitted,
          },
        }
      : {}),
  };
}

/** The per-episode sections of a report, within its bounds; key frames of `view` (none when undefined). */
export class EpisodeSections {
  readonly sections: ReportSection[] = [];
  readonly #view: string | undefined;
  #thumbs = 0;
  #without = 0;

  constructor(view: string | undefined) {
    this.#view = view;
  }

  /** Key frames for the next episode, or null when it will get no section or there is no view to show. */
  keyFrames(): KeyFrames | null {
    if (this.#view === undefined || this.sections.length >= MAX_EPISODE_SECTIONS) return null;
    return new KeyFrames(this.#view, Math.min(KEY_FRAMES_PER_EPISODE, Math.max(0, REPORT_LIMITS.maxThumbnails - this.#thumbs)));
  }

  /** The episode's section when there is room: its id, for the table row's link; else undefined. */
  async add(o: EpisodeSectionInput, keyFrames: KeyFrames | null): Promise<string | undefined> {
    if (this.sections.length >= MAX_EPISODE_SECTIONS) {
      this.#without++;
      return undefined;
    }
    const frames = keyFrames ? await keyFrames.done() : null;
    this.#thumbs += frames?.length ?? 0;
    this.sections.push(episodeSection(o, frames, keyFrames?.omitted));
    return o.id;
  }

  /** What the page should say about episodes left without a section. */
  notes(): string[] {
    return this.#without > 0
      ? [`${this.#without} episode(s) have a table row but no chart section: a report draws at most ${MAX_EPISODE_SECTIONS}.`]
      : [];
  }
}

const stem = (episode: number) => `ep-${String(episode).padStart(4, '0')}`;

export interface EvalReportInfo {
  metrics: AggregateMetrics;
  /** Dataset roots, in their index order. */
  datasets: string[];
  modelDir: string;
  createdAt: string;
  version: string | null;
}

/** Collects an evaluation run's episodes (as they finish) and renders its report. */
export class EvalHtmlReport {
  readonly #card: ModelCard;
  readonly #episodes: EpisodeSections;
  readonly #rows: TableRow[] = [];
  readonly #final: { name: string; final: number; grm: number | null }[] = [];
  #current: KeyFrames | null = null;

  constructor(card: ModelCard, fill: readonly string[] = []) {
    this.#card = card;
    this.#episodes = new EpisodeSections(card.views.find((v) => !fill.includes(v)));
  }

  /** evaluate.ts EvaluateOptions.onForwardStep: key frames of the episode being evaluated. */
  readonly observer = (_episode: number, t: number, frames: FrameSet, stage: number): void => {
    if (t === 0) this.#current = this.#episodes.keyFrames();
    this.#current?.see(t, frames, stage);
  };

  /** After an episode (evaluate.ts onEpisode): its row, and its section while there is room. */
  async add(r: EpisodeResult, datasetName: string, plot?: string): Promise<void> {
    const row = r.row;
    const keyFrames = this.#current;
    this.#current = null;
    const outcome = row.success === null ? 'outcome unknown' : row.success ? 'success' : 'failure';
    const series = [{ name: 'SARM progress', values: r.forward.sarm }];
    if (r.forward.grm) series.push({ name: 'GRM fused progress', values: r.forward.grm });
    const link = await this.#episodes.add(
      {
        id: `d${row.dataset}-${stem(row.episode)}`,
        title: `${datasetName}, episode ${row.episode} (${row.task}, ${outcome}, ${row.frames} frames)`,
        lines: [
          `VOC+ ${fixed(row.voc_plus)} | VOC- ${fixed(row.voc_minus)} | stage accuracy ${fixed(row.stage_accuracy)} | MAE ${fixed(row.progress_mae)}${row.grm_voc_plus !== null ? ` | GRM VOC+ ${fixed(row.grm_voc_plus)}` : ''}`,
        ],
        frames: row.frames,
        stageNames: r.stageNames,
        stage: r.forward.stage,
        charts: [
          {
            key: 'progress',
            title: 'progress over the episode (dashed: the label); vertical lines: predicted stage changes',
            yLabel: 'progress',
            yRange: [0, 1],
            series: [...series, ...(r.labels ? [{ name: 'label progress', values: r.labels.progress, dash: true }] : [])],
          },
        ],
      },
      keyFrames,
    );
    this.#final.push({ name: `${datasetName} #${row.episode}`, final: row.final_progress, grm: row.grm_final_progress });
    this.#rows.push({
      cells: [
        row.episode,
        datasetName,
        row.task,
        row.success,
        row.frames,
        row.voc_plus,
        row.voc_minus,
        row.stage_accuracy,
        row.progress_mae,
        row.final_progress,
        row.grm_voc_plus,
        row.grm_final_progress,
        plot ?? null,
      ],
      ...(link ? { link } : {}),
    });
  }

  render(info: EvalReportInfo): string {
    const c = this.#card;
    const m = info.metrics;
    const names = info.datasets.map((d) => basename(d));
    const x = this.#final.map((_, i) => i);
    const anyGrm = this.#final.some((f) => f.grm !== null);
    return renderHtmlReport({
      kind: 'eval',
      title: `stageward eval: ${c.name} ${c.version} on ${names.join(', ')}`,
      subtitle: [
        `model ${info.modelDir} (views ${c.views.join(', ')}, ${c.image.width}x${c.image.height}, ${c.grm.present ? 'SARM + GRM heads' : 'SARM head'})`,
        ...info.datasets.map((d, k) => `dataset ${k}: ${d}`),
        `created ${info.createdAt} by stageward ${info.version ?? '?'}; engine episodes stepped frame by frame (causal)`,
      ],
      summary: [
        ['episodes', m.episodes],
        ['frames', m.frames],
        ['successful / failed / unknown', `${m.successful} / ${m.failed} / ${m.unknown_outcome}`],
        ['VOC+ (mean, not failed)', m.voc_plus],
        ['VOC- (mean, not failed)', m.voc_minus],
        ['label VOC+ (ceiling)', m.label_voc_plus],
        ['stage accuracy', m.stage_accuracy],
        ['progress MAE', m.progress_mae],
        ['AUROC (final progress)', m.auroc],
        ...(c.grm.present
          ? ([
              ['GRM VOC+', m.grm_voc_plus],
              ['GRM VOC-', m.grm_voc_minus],
              ['GRM progress MAE', m.grm_progress_mae],
              ['GRM AUROC', m.grm_auroc],
            ] as [string, number | null][])
          : []),
      ],
      notes: this.#episodes.notes(),
      charts: [
        {
          id: 'final-progress',
          title: 'final progress per episode (in table order)',
          xLabel: 'episode (table row)',
          yLabel: 'final progress',
          yRange: [0, 1],
          x,
          series: [
            { name: 'SARM final progress', values: this.#final.map((f) => f.final), points: true },
            ...(anyGrm ? [{ name: 'GRM final progress', values: this.#final.map((f) => f.grm), points: true }] : []),
          ],
        },
      ],
      tables: [
        {
          id: 'episodes',
          title: 'Episodes',
          columns: [
            'episode',
            'dataset',
            'task',
            'success',
            'frames',
            'VOC+',
            'VOC-',
            'stage acc',
            'MAE',
            'final',
            'GRM VOC+',
            'GRM final',
            'plot',
          ],
          rows: this.#rows,
        },
      ],
      sections: this.#episodes.sections,
    });
  }
}
