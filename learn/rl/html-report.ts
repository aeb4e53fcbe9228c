// The HTML report of `stageward rl` (OUT/report.html, drawn by core/html-report.ts): the learning curve
// as interactive charts against rollouts (eval success with its 95% interval, train success and hover
// share; the learner's returns; episode lengths), the per-iteration table (id `iterations`), and the
// run's figures once it is over. The learner's episodes are simulated from state and never rendered on
// this path, so an rl report has no thumbnails; the page says so. Written after every iteration (with
// curve.png) and at the end with the summary.
//
//   await writeRlReport('runs/rl-pbrs-1', rows, { title, subtitle, summary: null });

import { join } from 'node:path';
import { writeFileAtomic } from '../../core/files.ts';
import { percent } from '../../core/format.ts';
import { renderHtmlReport, type ReportCell } from '../../core/html-report.ts';
import type { CurveRow } from './curve.ts';

/** The figures of a finished run the page shows (run.ts RlSummary has them all). */
export interface RlReportSummary {
  task: string;
  reward: string;
  reward_about: string;
  algorithm: string;
  start: string;
  rollouts: number;
  iterations: number;
  start_success: number;
  final_success: number;
  final_ci95: [number, number];
  best_success: number;
  best_rollouts: number;
  hover_share: number;
  mean_length: number;
  mean_final_true_progress: number;
  env_steps: number;
  env_steps_per_s: number | null;
  wall_s: number;
  created_at: string;
}

export interface RlReportOptions {
  title: string;
  subtitle: string;
  /** The finished run's figures; null while it runs. */
  summary: RlReportSummary | null;
}

const interval = (ci: [number, number]) => `${percent(ci[0])}-${percent(ci[1])}`;

/** The report page of a run's rows so far. Pure but for reading uPlot once. */
export function rlReportHtml(rows: readonly CurveRow[], o: RlReportOptions): string {
  const s = o.summary;
  const x = rows.map((r) => r.rollouts);
  const col = (f: (r: CurveRow) => number | null | undefined) => rows.map((r) => f(r) ?? null);
  const summary: [string, ReportCell][] = s
    ? [
        ['task', s.task],
        ['reward', `${s.reward}: ${s.reward_about}`],
        ['start policy', s.start],
        ['rollouts / iterations', `${s.rollouts} / ${s.iterations}`],
        ['start eval success', percent(s.start_success)],
        ['final eval success (95%)', `${percent(s.final_success)} (${interval(s.final_ci95)})`],
        ['best eval success', `${percent(s.best_success)} at ${s.best_rollouts} rollouts`],
        ['final hover share', s.hover_share],
        ['final mean length (steps)', s.mean_length],
        ['final mean true progress', s.mean_final_true_progress],
        ['env steps (per s)', `${s.env_steps} (${s.env_steps_per_s ?? '-'})`],
        ['wall time (s)', s.wall_s],
      ]
    : [
        ['rollouts so far', rows.at(-1)?.rollouts ?? 0],
        ['iterations so far', rows.at(-1)?.iteration ?? 0],
      ];
  return renderHtmlReport({
    kind: 'rl',
    title: o.title,
    subtitle: [o.subtitle, ...(s ? [s.algorithm, `created ${s.created_at}`] : [])],
    summary,
    notes: [
      'rl reports have no thumbnails: the learner runs the simulator from state and renders no camera frames for the report.',
      ...(s ? [] : ['The run is in progress: this page is rewritten after every iteration, and once more with the results at the end.']),
    ],
    charts: [
      {
        id: 'success',
        title: 'success rate against rollouts (eval: the deterministic policy on held-out seeds)',
        xLabel: 'rollouts (training episodes)',
        yLabel: 'success rate',
        yRange: [0, 1],
        x,
        series: [
          { name: 'eval success', values: col((r) => r.eval?.successRate) },
          { name: 'eval 95% low', values: col((r) => r.eval?.ci95[0]), dash: true },
          { name: 'eval 95% high', values: col((r) => r.eval?.ci95[1]), dash: true },
          { name: 'train success', values: col((r) => r.train?.successRate) },
          { name: 'train hover share', values: col((r) => r.train?.hoverShare) },
        ],
      },
      {
        id: 'returns',
        title: "returns against rollouts (the learner's reward, discounted; the simulator's, undiscounted)",
        xLabel: 'rollouts (training episodes)',
        yLabel: 'return',
        x,
        series: [
          { name: 'train mean return', values: col((r) => r.train?.meanReturn) },
          { name: 'train mean env return', values: col((r) => r.train?.meanEnvReturn) },
        ],
      },
      {
        id: 'length',
        title: 'mean episode length against rollouts',
        xLabel: 'rollouts (training episodes)',
        yLabel: 'steps',
        x,
        series: [
          { name: 'eval mean length', values: col((r) => r.eval?.meanLength) },
          { name: 'train mean length', values: col((r) => r.train?.meanLength) },
        ],
      },
    ],
    tables: [
      {
        id: 'iterations',
        title: 'Iterations (row 0: the start policy)',
        columns: [
          'rollouts',
          'iteration',
          'train success',
          'mean return',
          'mean env return',
          'mean length',
          'train hover',
          'eval success',
          'eval 95%',
          'eval episodes',
          'eval hover',
          'eval length',
          'eval true progress',
          'wall s',
        ],
        rows: rows.map((r) => ({
          cells: [
            r.rollouts,
            r.iteration,
            r.train ? percent(r.train.successRate) : null,
            r.train?.meanReturn ?? null,
            r.train?.meanEnvReturn ?? null,
            r.train?.meanLength ?? null,
            r.train?.hoverShare ?? null,
            r.eval ? percent(r.eval.successRate) : null,
            r.eval ? interval(r.eval.ci95) : null,
            r.eval?.episodes ?? null,
            r.eval?.hoverShare ?? null,
            r.eval?.meanLength ?? null,
            r.eval?.meanFinalTrueProgress ?? null,
            r.wallS,
          ],
        })),
      },
    ],
    sections: [],
  });
}

/** Write `<dir>/report.html` atomically; returns its path. */
export async function writeRlReport(dir: string, rows: readonly CurveRow[], o: RlReportOptions): Promise<string> {
  const path = join(dir, 'report.html');
  await writeFileAtomic(path, rlReportHtml(rows, o));
  return path;
}
