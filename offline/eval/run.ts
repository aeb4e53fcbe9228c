// One evaluation run of a model package on annotated LeRobot datasets (what `stageward eval` runs):
// every selected episode through the engine (evaluate.ts), OUT/metrics.json (aggregate metrics,
// per-dataset metrics, per-episode rows, provenance), OUT/plots/episode-XXXX.png
// (dK-episode-XXXX.png when several datasets are evaluated together) and OUT/report.html: one
// self-contained page (html-report.ts) with interactive charts, the per-episode table and the key
// frames at predicted stage changes, taken from the frames the evaluation decodes (key-frames.ts).
//
//   const run = await evaluateDatasets({ model: 'models/zoo/pick_place', datasets: ['pp-heldout', 'pp-failed'] });
//   run.metrics.auroc

import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { StagewardError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../core/files.ts';
import { REPO_ROOT } from '../../core/paths.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import type { ModelCard } from '../../models/card.ts';
import type { SmoothingOption } from '../../models/engine.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import type { ExecutionProvider } from '../../models/runtime.ts';
import { writeEpisodePlot } from './episode-plot.ts';
import { EvalHtmlReport } from './html-report.ts';
import { aggregate, evaluateModel, plannedSteps, type AggregateMetrics, type EpisodeResult, type EpisodeRow } from './evaluate.ts';
import { fixed } from '../../core/format.ts';
import type { OnPolicySeries } from './on-policy.ts';

export const DEFAULT_EVAL_PROVIDERS: ExecutionProvider[] = ['cpu'];

export interface EvaluateDatasetsOptions {
  /** Model package folder. */
  model: string;
  /** LeRobot v3.0 dataset folders, evaluated together. */
  datasets: string[];
  /** The card's task for every episode; default per episode (evaluate.ts resolveTask). */
  task?: string;
  /** Output folder; default eval-<model name> in the current folder. */
  out?: string;
  /** Episode indices per dataset (indices a dataset lacks are skipped); default all. */
  episodes?: number[];
  /** Model view -> dataset view. */
  viewMap?: Record<string, string>;
  /** Execution providers to try in order; default DEFAULT_EVAL_PROVIDERS. */
  providers?: ExecutionProvider[];
  /** Write a plot per episode; default true. */
  plots?: boolean;
  /** The command line that asked for this run, for the provenance. */
  command?: string[];
  /** The engine's causal smoothing of Phi (evaluate.ts EvaluateOptions.smoothing). */
  smoothing?: SmoothingOption;
  /** Card views scored as missing, filled as the card says (evaluate.ts EvaluateOptions.fill). */
  fill?: string[];
}

export interface EvaluateDatasetsSetup {
  card: ModelCard;
  /** The providers each graph runs on. */
  providers: Record<string, ExecutionProvider>;
  datasets: LeRobotDataset[];
  /** Episodes per dataset. */
  selections: number[][];
  /** The output folder, absolute. */
  out: string;
}

export interface EvaluateDatasetsHooks {
  /** The model and datasets are open, the episodes chosen. */
  onSetup?: (setup: EvaluateDatasetsSetup) => void;
  /** Engine steps the run will take in all. */
  onPlanned?: (steps: number) => void;
  onStep?: () => void;
  /** After each episode (and its plot): the dataset's index and the episode's row. */
  onEpisode?: (dataset: number, row: EpisodeRow) => void;
  /** Every episode is evaluated (or the evaluation failed). */
  onEvaluationEnd?: () => void;
}

export interface EvaluateDatasetsResult {
  out: string;
  card: ModelCard;
  rows: EpisodeRow[];
  metrics: AggregateMetrics;
  /** Plot files written, relative to `out`, in row order. */
  plots: string[];
  /** metrics.json, absolute. */
  metricsPath: string;
  /** report.html, absolute. */
  htmlPath: string;
  /** The metrics.json document. */
  report: Record<string, unknown>;
}

function stagewardVersion(): string | null {
  try {
    return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}

/** An episode's plot file name: episode-XXXX.png, dK-episode-XXXX.png when several datasets are evaluated. */
export function plotName(result: EpisodeResult, datasets: number): string {
  const ep = `episode-${String(result.row.episode).padStart(4, '0')}.png`;
  return datasets > 1 ? `d${result.row.dataset}-${ep}` : ep;
}

async function plotEpisode(path: string, modelName: string, datasetName: string, r: EpisodeResult): Promise<void> {
  const row = r.row;
  const outcome = row.success === null ? 'outcome unknown' : row.success ? 'success' : 'failure';
  const parts = [
    `VOC+ ${fixed(row.voc_plus)}`,
    `VOC- ${fixed(row.voc_minus)}`,
    `stage acc ${fixed(row.stage_accuracy)}`,
    `MAE ${fixed(row.progress_mae)}`,
  ];
  if (row.grm_voc_plus !== null)
    parts.push(`GRM VOC+ ${fixed(row.grm_voc_plus)}`, `GRM VOC- ${fixed(row.grm_voc_minus)}`, `GRM MAE ${fixed(row.grm_progress_mae)}`);
  await writeEpisodePlot(path, {
    title: `${modelName} on ${datasetName}, episode ${row.episode} (${row.task}, ${outcome}, ${row.frames} frames)`,
    subtitle: parts.join(' | '),
    stageNames: r.stageNames,
    sarm: r.forward.sarm,
    stage: r.forward.stage,
    grm: r.forward.grm,
    trueProgress: r.labels?.progress ?? null,
    trueStage: r.labels?.stage ?? null,
  });
}

export async function evaluateDatasets(o: EvaluateDatasetsOptions, hooks: EvaluateDatasetsHooks = {}): Promise<EvaluateDatasetsResult> {
  const withPlots = o.plots ?? true;
  const model = await OnnxProgressModel.load(o.model, { providers: o.providers ?? DEFAULT_EVAL_PROVIDERS });
  try {
    const card = model.card;
    const out = resolve(o.out ?? `eval-${card.name}`);
    const datasets = await Promise.all(o.datasets.map((d) => LeRobotDataset.open(d)));
    const selections = datasets.map((ds) => {
      const all = ds.episodes.map((e) => e.index);
      return o.episodes ? o.episodes.filter((i) => all.includes(i)) : all;
    });
    selections.forEach((sel, k) => {
      if (sel.length === 0)
        throw new StagewardError('SW_ERR_DATASET_EPISODE', `--episodes: none of the listed episodes is in ${datasets[k]!.root}`);
    });
    hooks.onSetup?.({ card, providers: model.providers, datasets, selections, out });

    hooks.onPlanned?.(datasets.reduce((a, ds, k) => a + plannedSteps(ds, selections[k]), 0));
    const rows: EpisodeRow[] = [];
    const series: (OnPolicySeries | null)[] = [];
    const plots: string[] = [];
    const html = new EvalHtmlReport(card, o.fill);
    try {
      for (let k = 0; k < datasets.length; k++) {
        const ds = datasets[k]!;
        const result = await evaluateModel({
          model,
          dataset: ds,
          episodes: selections[k]!,
          datasetIndex: k,
          ...(o.task !== undefined ? { task: o.task } : {}),
          ...(o.viewMap !== undefined ? { viewMap: o.viewMap } : {}),
          ...(o.smoothing !== undefined ? { smoothing: o.smoothing } : {}),
          ...(o.fill !== undefined ? { fill: o.fill } : {}),
          onStep: () => hooks.onStep?.(),
          onForwardStep: html.observer,
          onEpisode: async (r) => {
            hooks.onEpisode?.(k, r.row);
            let plot: string | undefined;
            if (withPlots) {
              plot = join('plots', plotName(r, datasets.length));
              await plotEpisode(join(out, plot), card.name, basename(ds.root), r);
              plots.push(plot);
            }
            await html.add(r, basename(ds.root), plot);
          },
        });
        rows.push(...result.rows);
        series.push(...result.series);
      }
    } finally {
      hooks.onEvaluationEnd?.();
    }

    const metrics = aggregate(rows, series);
    const ofDataset = (k: number) => rows.map((r, i) => i).filter((i) => rows[i]!.dataset === k);
    const report = {
      ...metrics,
      per_dataset: datasets.map((ds, k) => ({
        dataset: k,
        root: ds.root,
        ...aggregate(
          ofDataset(k).map((i) => rows[i]!),
          ofDataset(k).map((i) => series[i]!),
        ),
      })),
      per_episode: rows.map((r, i) => ({ ...r, ...(withPlots ? { plot: plots[i] } : {}) })),
      provenance: {
        command: o.command,
        created_at: new Date().toISOString(),
        stageward_version: stagewardVersion(),
        node: process.version,
        model: {
          dir: model.dir,
          name: card.name,
          version: card.version,
          tasks: card.tasks,
          views: card.views,
          image: card.image,
          composition: card.composition,
          grm: card.grm,
          providers: model.providers,
          provenance: card.provenance,
        },
        datasets: datasets.map((ds, k) => ({
          root: ds.root,
          fps: ds.fps,
          views: ds.views,
          stage_names: ds.stageNames,
          priors: ds.priors,
          episodes: selections[k],
          view_map: Object.fromEntries(card.views.map((v) => [v, o.viewMap?.[v] ?? v])),
        })),
        method: {
          path: 'RewardEngine episodes stepped frame by frame (causal), frames decoded at the model image size',
          progress: card.grm.present ? 'both heads: SARM progress and GRM fused progress (no goal frames)' : 'SARM',
          labels:
            "per-frame stage and SARM progress from each dataset's subtask annotations (datasets/labels.ts) with the MODEL CARD's stage names and priors",
          voc: 'Spearman vs step index, mean over episodes not known to have failed; VOC- feeds the same frames reversed into a new episode',
          accuracy_mae: 'frame-weighted over annotated episodes',
          auroc: 'final progress, successful vs failed episodes (Mann-Whitney, ties 1/2)',
        },
      },
    };
    const metricsPath = join(out, 'metrics.json');
    await writeFileAtomic(metricsPath, `${JSON.stringify(report, null, 2)}\n`);
    const htmlPath = join(out, 'report.html');
    const { created_at: createdAt, stageward_version: version } = report.provenance;
    await writeFileAtomic(
      htmlPath,
      html.render({ metrics, datasets: datasets.map((ds) => ds.root), modelDir: model.dir, createdAt, version }),
    );
    return { out, card, rows, metrics, plots, metricsPath, htmlPath, report };
  } finally {
    await model.close();
  }
}
