// The HTML report of `stageward score` (OUT/report.html, drawn by core/html-report.ts): the run's
// totals, final/mean/max progress per episode, the per-episode table (id `episodes`; a failed episode's
// row carries its error code), and per scored episode (within the bounds of offline/eval/html-report.ts
// EpisodeSections) its progress and shaped reward over the frames with the predicted stage changes
// marked, and the key frames at those changes, taken while the batch scorer steps the frames
// (batch-scorer.ts ScoreOptions.onStep, offline/eval/key-frames.ts).
//
//   const html = new ScoreHtmlReport(model.card, ds.root, options);
//   const kf = html.keyFrames();   // per source, before scoring it: onStep: (t, f, s) => kf?.see(t, f, s)
//   await html.add(report, score, truth, kf);
//   await writeFileAtomic(join(out, 'report.html'), html.render(totals, parquetPath));

import { renderHtmlReport, type TableRow } from '../../core/html-report.ts';
import type { ModelCard } from '../../models/card.ts';
import { EpisodeSections, type EpisodeChart } from '../eval/html-report.ts';
import type { KeyFrames } from '../eval/key-frames.ts';
import type { EpisodeScore } from './batch-scorer.ts';
import { episodeStem, type EpisodeReport, type RunTotals } from './report.ts';

/** Collects a scoring run's episodes (as they finish) and renders its report. */
export class ScoreHtmlReport {
  readonly #card: ModelCard;
  readonly #source: string;
  readonly #options: Record<string, unknown>;
  readonly #episodes: EpisodeSections;
  readonly #rows: TableRow[] = [];
  readonly #episodeIndex: number[] = [];
  readonly #final: (number | null)[] = [];
  readonly #mean: (number | null)[] = [];

  /** `source`: what is scored (the dataset root, or the videos); `options`: the run's, as summary.json has them. */
  constructor(card: ModelCard, source: string, options: Record<string, unknown>) {
    this.#card = card;
    this.#source = source;
    this.#options = options;
    this.#episodes = new EpisodeSections(card.views[0]);
  }

  /** Key frames for the next source (null when it will get no section). */
  keyFrames(): KeyFrames | null {
    return this.#episodes.keyFrames();
  }

  /** After a source: its row, and for a scored one its section while there is room. */
  async add(r: EpisodeReport, score: EpisodeScore | null, truth: ArrayLike<number> | null, keyFrames: KeyFrames | null): Promise<void> {
    let link: string | undefined;
    if (score) {
      const progress: EpisodeChart['series'] = [{ name: 'progress (reward potential)', values: score.progress }];
      if (score.progress.some((v, t) => v !== score.sparse[t])) progress.push({ name: 'SARM progress', values: score.sparse });
      if (score.dense) progress.push({ name: 'GRM fused progress', values: score.dense });
      if (truth && truth.length === score.frames) progress.push({ name: 'true progress', values: truth, dash: true });
      link = await this.#episodes.add(
        {
          id: episodeStem(r.episode),
          title: `${r.label} (${score.task}, ${score.frames} frames)`,
          lines: [
            `final progress ${r.final_progress!.toFixed(3)} | mean ${r.mean_progress!.toFixed(3)} | max ${r.max_progress!.toFixed(3)}${r.scored_frames < r.frames ? ` | SARM on ${r.scored_frames} frames, interpolated between` : ''}`,
          ],
          frames: score.frames,
          stageNames: score.stageNames,
          stage: score.stage,
          charts: [
            {
              key: 'progress',
              title: 'progress over the episode; vertical lines: predicted stage changes',
              yLabel: 'progress',
              yRange: [0, 1],
              series: progress,
            },
            {
              key: 'reward',
              title: 'shaped reward per frame',
              yLabel: 'reward',
              series: [{ name: 'shaped reward', values: score.reward }],
            },
          ],
        },
        keyFrames,
      );
    }
    this.#episodeIndex.push(r.episode);
    this.#final.push(r.final_progress);
    this.#mean.push(r.mean_progress);
    this.#rows.push({
      cells: [
        r.episode,
        r.label,
        r.task,
        r.status === 'scored' ? 'ok' : `failed: ${r.code}`,
        r.frames,
        r.final_progress,
        r.mean_progress,
        r.max_progress,
        r.final_progress_dense,
        r.success,
        r.wall_s,
        r.status === 'scored' ? null : (r.message ?? null),
      ],
      ...(link ? { link } : {}),
    });
  }

  /** The page, with the run's totals and sarm_progress.parquet's path when written. */
  render(t: RunTotals, parquet: string | null): string {
    const c = this.#card;
    const order = this.#episodeIndex.map((_, i) => i).sort((i, j) => this.#episodeIndex[i]! - this.#episodeIndex[j]!);
    return renderHtmlReport({
      kind: 'score',
      title: `stageward score: ${c.name} ${c.version} on ${this.#source}`,
      subtitle: [
        `model ${c.name} ${c.version} (views ${c.views.join(', ')}, ${c.image.width}x${c.image.height}); causal values, as the online engine gives them`,
        `options: ${Object.entries(this.#options)
          .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
          .join(', ')}`,
        `created ${new Date().toISOString()}`,
      ],
      summary: [
        ['episodes', t.episodes],
        ['scored', t.scored],
        ['failed', t.failed],
        ['frames', t.frames],
        ['wall time (s)', t.wall_s],
        ['frames per second', t.fps_scored],
        ['sarm_progress.parquet', parquet],
      ],
      notes: this.#episodes.notes(),
      charts: [
        {
          id: 'final-progress',
          title: 'final and mean progress per episode',
          xLabel: 'episode',
          yLabel: 'progress',
          yRange: [0, 1],
          x: order.map((i) => this.#episodeIndex[i]!),
          series: [
            { name: 'final progress', values: order.map((i) => this.#final[i]!), points: true },
            { name: 'mean progress', values: order.map((i) => this.#mean[i]!), points: true },
          ],
        },
      ],
      tables: [
        {
          id: 'episodes',
          title: 'Episodes',
          columns: ['episode', 'source', 'task', 'status', 'frames', 'final', 'mean', 'max', 'GRM final', 'success', 'wall s', 'error'],
          rows: this.#rows,
        },
      ],
      sections: this.#episodes.sections,
    });
  }
}
