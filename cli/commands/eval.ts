// `stageward eval`: evaluate a model package on annotated LeRobot datasets through the engine (the
// serving path, step by step) and write OUT/metrics.json (aggregate metrics, per-dataset metrics,
// per-episode rows, provenance) and OUT/plots/episode-XXXX.png (dK-episode-XXXX.png when several
// datasets are evaluated): evaluateDatasets in offline/eval/run.ts. Prints a summary table; the last
// stdout line is the aggregate metrics as one JSON object. Several --dataset flags are evaluated
// together, e.g. held-out demonstrations plus held-out failures, so AUROC sees both classes. Metric
// definitions: offline/eval/evaluate.ts.
//
//   stageward eval --model models/zoo/pick_place --dataset pp-heldout
//   stageward eval --model m --dataset pp-mixed --dataset pp-failed --task pick_place --out eval-pp --episodes 0-9
//   stageward eval --model m --dataset their-data --view-map front=observation.images.top,wrist=observation.images.hand
//   stageward eval --model models/zoo/pick_place --dataset pp-heldout --fill-view side   # as a robot without the side camera

import { join } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Command } from 'commander';
import type { EpisodeRow } from '../../offline/eval/evaluate.ts';
import { DEFAULT_EVAL_PROVIDERS, evaluateDatasets } from '../../offline/eval/run.ts';
import type { ExecutionProvider } from '../../models/runtime.ts';
import { episodeListOption, providersOption, repeatOption, smoothingOption, viewMapOption } from '../options.ts';
import type { SmoothingOption } from '../../models/engine.ts';
import { DEFAULT_EMA } from '../../models/progress.ts';
import { fixed } from '../../core/format.ts';

interface EvalFlags {
  model: string;
  dataset: string[];
  task?: string;
  out?: string;
  episodes?: number[];
  viewMap?: Record<string, string>;
  provider: ExecutionProvider[];
  plots: boolean;
  progress: boolean;
  smoothing?: SmoothingOption;
  fillView?: string[];
}

export function evalCommand(): Command {
  return new Command('eval')
    .description(
      'evaluate a model on annotated LeRobot datasets through the engine: VOC+/VOC-, stage accuracy, progress MAE, success AUROC (SARM and GRM), plots per episode',
    )
    .requiredOption('--model <dir>', 'model package folder')
    .requiredOption('--dataset <dir>', 'LeRobot v3.0 or v2.1 dataset folder; repeat to evaluate several together', repeatOption)
    .option(
      '--task <id>',
      "the model card's task for every episode (default: from each episode's recorded task id, the card's only task, or matching stage names)",
    )
    .option('--out <dir>', 'output folder (default: eval-<model name> in the current folder)')
    .option('--episodes <list>', 'episode indices per dataset, e.g. 0-9,12 (indices a dataset lacks are skipped)', episodeListOption)
    .option(
      '--view-map <pairs>',
      'model view = dataset view, comma-separated or repeated, e.g. front=observation.images.top',
      viewMapOption,
    )
    .option(
      '--provider <list>',
      'execution providers to try in order, comma-separated (cpu, webgpu, cuda, tensorrt)',
      providersOption,
      DEFAULT_EVAL_PROVIDERS,
    )
    .option(
      '--smoothing <spec>',
      "the engine's causal smoothing of Phi: none, ema, ema:ALPHA or ema:ALPHA,U0 (models/SHAPING.md); the SARM series scored is then the smoothed one, and GRM is not run",
      smoothingOption,
    )
    .option(
      '--fill-view <view>',
      "score as if the robot lacked this camera: the engine fills it as the card's missing_views says (repeat for several); measures the fidelity a server with missingViews fill gives",
      repeatOption,
    )
    .option('--no-plots', 'skip the per-episode PNG plots')
    .option('--no-progress', 'no progress bar')
    .action(async (f: EvalFlags) => runEval(f));
}

function printTable(rows: readonly EpisodeRow[], grm: boolean): void {
  const head = [
    'ds',
    'ep',
    'task',
    'ok',
    'frames',
    'VOC+',
    'VOC-',
    'acc',
    'MAE',
    'final',
    ...(grm ? ['gVOC+', 'gVOC-', 'gMAE', 'gfinal'] : []),
  ];
  const lines = rows.map((r) => [
    String(r.dataset),
    String(r.episode),
    r.task,
    r.success === null ? '?' : r.success ? 'yes' : 'no',
    String(r.frames),
    fixed(r.voc_plus),
    fixed(r.voc_minus),
    fixed(r.stage_accuracy),
    fixed(r.progress_mae),
    fixed(r.final_progress),
    ...(grm ? [fixed(r.grm_voc_plus), fixed(r.grm_voc_minus), fixed(r.grm_progress_mae), fixed(r.grm_final_progress)] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const show = (cells: string[]) => console.log(`  ${cells.map((c, i) => c.padStart(widths[i]!)).join('  ')}`);
  show(head);
  lines.forEach(show);
}

/** The command line these flags correspond to, for provenance. */
function commandLine(f: EvalFlags): string[] {
  const argv = ['stageward', 'eval', '--model', f.model, ...f.dataset.flatMap((d) => ['--dataset', d])];
  if (f.task !== undefined) argv.push('--task', f.task);
  if (f.out !== undefined) argv.push('--out', f.out);
  if (f.episodes !== undefined) argv.push('--episodes', f.episodes.join(','));
  if (f.viewMap !== undefined)
    argv.push(
      '--view-map',
      Object.entries(f.viewMap)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    );
  argv.push('--provider', f.provider.join(','));
  if (f.smoothing !== undefined)
    argv.push(
      '--smoothing',
      f.smoothing.kind === 'ema' ? `ema:${f.smoothing.alpha ?? DEFAULT_EMA.alpha},${f.smoothing.u0 ?? DEFAULT_EMA.u0}` : 'none',
    );
  for (const v of f.fillView ?? []) argv.push('--fill-view', v);
  if (!f.plots) argv.push('--no-plots');
  return argv;
}

async function runEval(f: EvalFlags): Promise<void> {
  let bar: SingleBar | undefined;
  const { card, rows, metrics, plots, metricsPath, htmlPath, out } = await evaluateDatasets(
    {
      model: f.model,
      datasets: f.dataset,
      providers: f.provider,
      plots: f.plots,
      command: commandLine(f),
      ...(f.task !== undefined ? { task: f.task } : {}),
      ...(f.out !== undefined ? { out: f.out } : {}),
      ...(f.episodes !== undefined ? { episodes: f.episodes } : {}),
      ...(f.viewMap !== undefined ? { viewMap: f.viewMap } : {}),
      ...(f.smoothing !== undefined ? { smoothing: f.smoothing } : {}),
      ...(f.fillView !== undefined ? { fill: f.fillView } : {}),
    },
    {
      onSetup: ({ card, providers, datasets, selections, out }) => {
        console.log(
          `stageward eval: model ${card.name} ${card.version} (${card.grm.present ? 'SARM + GRM' : 'SARM'}, providers ${JSON.stringify(providers)}) on ${datasets.length} dataset(s), ${selections.reduce((a, s) => a + s.length, 0)} episodes -> ${out}`,
        );
      },
      onPlanned: (total) => {
        bar = f.progress
          ? new SingleBar(
              {
                format: 'evaluating {bar} {percentage}% | {value}/{total} steps | last episode {episode} | ETA {eta_formatted}',
                etaBuffer: 200,
              },
              Presets.shades_classic,
            )
          : undefined;
        bar?.start(total, 0, { episode: '-' });
      },
      onStep: () => bar?.increment(),
      onEpisode: (k, row) => bar?.update({ episode: `${k}:${row.episode}` }),
      onEvaluationEnd: () => bar?.stop(),
    },
  );

  printTable(rows, card.grm.present);
  console.log(
    `  all: ${metrics.episodes} episodes (${metrics.successful} ok, ${metrics.failed} failed, ${metrics.unknown_outcome} unknown), ${metrics.frames} frames | ` +
      `VOC+ ${fixed(metrics.voc_plus)}  VOC- ${fixed(metrics.voc_minus)}  stage acc ${fixed(metrics.stage_accuracy)}  MAE ${fixed(metrics.progress_mae)}  AUROC ${fixed(metrics.auroc)}` +
      (card.grm.present
        ? ` | GRM VOC+ ${fixed(metrics.grm_voc_plus)}  VOC- ${fixed(metrics.grm_voc_minus)}  MAE ${fixed(metrics.grm_progress_mae)}  AUROC ${fixed(metrics.grm_auroc)}`
        : '') +
      `\n  labels' own VOC+ (the ceiling when progress goes back) ${fixed(metrics.label_voc_plus)}; on the ${metrics.monotone_episodes} episodes whose labels never go back: VOC+ ${fixed(metrics.voc_plus_monotone)}  VOC- ${fixed(metrics.voc_minus_monotone)}`,
  );
  if (metrics.progress_pearson !== null || metrics.delta_pearson_1s !== null)
    console.log(
      `  on-policy (vs annotation.true_progress): Pearson ${fixed(metrics.progress_pearson)}  1-s change Pearson ${fixed(metrics.delta_pearson_1s)}  ` +
        `stall drift ${fixed(metrics.stall_drift_per_s)}/s  false-high ${fixed(metrics.false_high_rate)}  ` +
        `uncertainty AUROC ${fixed(metrics.uncertainty_auroc)} (mean ${fixed(metrics.uncertainty_mean, 4)})`,
    );
  console.log(`  wrote ${metricsPath}, ${htmlPath}${f.plots ? ` and ${plots.length} plots in ${join(out, 'plots')}` : ''}`);
  console.log(JSON.stringify(metrics));
}
