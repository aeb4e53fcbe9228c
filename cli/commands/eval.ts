// `stageward eval`: evaluate a model package on annotated LeRobot datasets through the engine (the
// serving path, step by step) and write OUT/metrics.json (aggregate metrics, per-dataset metrics,
// per-episode rows, provenance) and OUT/plots/episode-XXXX.png (dK-episode-XXXX.png when several
// datasets are evaluated). Prints a summary table; the last stdout line is the aggregate metrics as
// one JSON object. Several --dataset flags are evaluated together, e.g. held-out demonstrations plus
// held-out failures, so AUROC sees both classes. Metric definitions: models/evaluate.ts.
//
//   stageward eval --model models/zoo/pick_place --dataset pp-heldout
//   stageward eval --model m --dataset pp-mixed --dataset pp-failed --task pick_place --out eval-pp --episodes 0-9
//   stageward eval --model m --dataset their-data --view-map front=observation.images.top,wrist=observation.images.hand

import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { StagewardError } from '../../core/errors.ts';
import { aggregate, evaluateModel, plannedSteps, type EpisodeResult, type EpisodeRow } from '../../offline/eval/evaluate.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import { writeEpisodePlot } from '../../offline/eval/episode-plot.ts';
import type { ExecutionProvider } from '../../models/runtime.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import { IMAGE_KEY_PREFIX } from '../../datasets/format.ts';
import { writeFileAtomic } from '../../core/files.ts';
import { providersOption } from '../options.ts';
import { REPO_ROOT } from '../../core/paths.ts';
import { episodeListOption, viewMapOption } from '../options.ts';

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
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function evalCommand(): Command {
  return new Command('eval')
    .description('evaluate a model on annotated LeRobot datasets through the engine: VOC+/VOC-, stage accuracy, progress MAE, success AUROC (SARM and GRM), plots per episode')
    .requiredOption('--model <dir>', 'model package folder')
    .requiredOption('--dataset <dir>', 'LeRobot v3.0 dataset folder; repeat to evaluate several together', collect)
    .option('--task <id>', "the model card's task for every episode (default: from each episode's recorded task id, the card's only task, or matching stage names)")
    .option('--out <dir>', 'output folder (default: eval-<model name> in the current folder)')
    .option('--episodes <list>', 'episode indices per dataset, e.g. 0-9,12 (indices a dataset lacks are skipped)', episodeListOption)
    .option('--view-map <pairs>', 'model view = dataset view, comma-separated or repeated, e.g. front=observation.images.top', viewMapOption)
    .option('--provider <list>', 'execution providers to try in order, comma-separated (cpu, webgpu, cuda, tensorrt)', providersOption, ['cpu'])
    .option('--no-plots', 'skip the per-episode PNG plots')
    .option('--no-progress', 'no progress bar')
    .action(async (f: EvalFlags) => runEval(f));
}

const fmt = (v: number | null, digits = 3) => (v === null ? '-' : v.toFixed(digits));

function stagewardVersion(): string | null {
  try {
    return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}

function plotName(result: EpisodeResult, datasets: number): string {
  const ep = `episode-${String(result.row.episode).padStart(4, '0')}.png`;
  return datasets > 1 ? `d${result.row.dataset}-${ep}` : ep;
}

async function plotEpisode(path: string, modelName: string, datasetName: string, r: EpisodeResult): Promise<void> {
  const row = r.row;
  const outcome = row.success === null ? 'outcome unknown' : row.success ? 'success' : 'failure';
  const parts = [`VOC+ ${fmt(row.voc_plus)}`, `VOC- ${fmt(row.voc_minus)}`, `stage acc ${fmt(row.stage_accuracy)}`, `MAE ${fmt(row.progress_mae)}`];
  if (row.grm_voc_plus !== null) parts.push(`GRM VOC+ ${fmt(row.grm_voc_plus)}`, `GRM VOC- ${fmt(row.grm_voc_minus)}`, `GRM MAE ${fmt(row.grm_progress_mae)}`);
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

function printTable(rows: readonly EpisodeRow[], grm: boolean): void {
  const head = ['ds', 'ep', 'task', 'ok', 'frames', 'VOC+', 'VOC-', 'acc', 'MAE', 'final', ...(grm ? ['gVOC+', 'gVOC-', 'gMAE', 'gfinal'] : [])];
  const lines = rows.map((r) => [
    String(r.dataset), String(r.episode), r.task, r.success === null ? '?' : r.success ? 'yes' : 'no', String(r.frames),
    fmt(r.voc_plus), fmt(r.voc_minus), fmt(r.stage_accuracy), fmt(r.progress_mae), fmt(r.final_progress),
    ...(grm ? [fmt(r.grm_voc_plus), fmt(r.grm_voc_minus), fmt(r.grm_progress_mae), fmt(r.grm_final_progress)] : []),
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
  if (f.viewMap !== undefined) argv.push('--view-map', Object.entries(f.viewMap).map(([k, v]) => `${k}=${v}`).join(','));
  argv.push('--provider', f.provider.join(','));
  if (!f.plots) argv.push('--no-plots');
  return argv;
}

async function runEval(f: EvalFlags): Promise<void> {
  const model = await OnnxProgressModel.load(f.model, { providers: f.provider });
  try {
    const card = model.card;
    const out = resolve(f.out ?? `eval-${card.name}`);
    const datasets = await Promise.all(f.dataset.map((d) => LeRobotDataset.open(d)));
    const selections = datasets.map((ds) => {
      const all = ds.episodes.map((e) => e.index);
      return f.episodes ? f.episodes.filter((i) => all.includes(i)) : all;
    });
    selections.forEach((sel, k) => {
      if (sel.length === 0) throw new StagewardError('SW_ERR_DATASET_EPISODE', `--episodes: none of the listed episodes is in ${datasets[k]!.root}`);
    });
    console.log(`stageward eval: model ${card.name} ${card.version} (${card.grm.present ? 'SARM + GRM' : 'SARM'}, providers ${JSON.stringify(model.providers)}) on ${datasets.length} dataset(s), ${selections.reduce((a, s) => a + s.length, 0)} episodes -> ${out}`);

    const total = datasets.reduce((a, ds, k) => a + plannedSteps(ds, selections[k]), 0);
    const bar = f.progress ? new SingleBar({ format: 'evaluating {bar} {percentage}% | {value}/{total} steps | last episode {episode} | ETA {eta_formatted}', etaBuffer: 200 }, Presets.shades_classic) : undefined;
    bar?.start(total, 0, { episode: '-' });
    const rows: EpisodeRow[] = [];
    const plots: string[] = [];
    try {
      for (let k = 0; k < datasets.length; k++) {
        const ds = datasets[k]!;
        const result = await evaluateModel({
          model, dataset: ds, episodes: selections[k]!, datasetIndex: k,
          ...(f.task !== undefined ? { task: f.task } : {}),
          ...(f.viewMap !== undefined ? { viewMap: f.viewMap } : {}),
          onStep: () => bar?.increment(),
          onEpisode: async (r) => {
            bar?.update({ episode: `${k}:${r.row.episode}` });
            if (!f.plots) return;
            const name = join('plots', plotName(r, datasets.length));
            await plotEpisode(join(out, name), card.name, basename(ds.root), r);
            plots.push(name);
          },
        });
        rows.push(...result.rows);
      }
    } finally {
      bar?.stop();
    }

    const metrics = aggregate(rows);
    const report = {
      ...metrics,
      per_dataset: datasets.map((ds, k) => ({ dataset: k, root: ds.root, ...aggregate(rows.filter((r) => r.dataset === k)) })),
      per_episode: rows.map((r, i) => ({ ...r, ...(f.plots ? { plot: plots[i] } : {}) })),
      provenance: {
        command: commandLine(f),
        created_at: new Date().toISOString(),
        stageward_version: stagewardVersion(),
        node: process.version,
        model: {
          dir: model.dir, name: card.name, version: card.version, tasks: card.tasks, views: card.views, image: card.image,
          composition: card.composition, grm: card.grm, providers: model.providers, provenance: card.provenance,
        },
        datasets: datasets.map((ds, k) => ({
          root: ds.root, fps: ds.fps, views: ds.views, stage_names: ds.stageNames, priors: ds.priors,
          episodes: selections[k], view_map: Object.fromEntries(card.views.map((v) => [v, f.viewMap?.[v] ?? v])),
        })),
        method: {
          path: 'RewardEngine episodes stepped frame by frame (causal), frames decoded at the model image size',
          progress: card.grm.present ? 'both heads: SARM progress and GRM fused progress (no goal frames)' : 'SARM',
          labels: "per-frame stage and SARM progress from each dataset's subtask annotations (sim/labels.ts) with the MODEL CARD's stage names and priors",
          voc: 'Spearman vs step index, mean over episodes not known to have failed; VOC- feeds the same frames reversed into a new episode',
          accuracy_mae: 'frame-weighted over annotated episodes',
          auroc: 'final progress, successful vs failed episodes (Mann-Whitney, ties 1/2)',
        },
      },
    };
    await writeFileAtomic(join(out, 'metrics.json'), `${JSON.stringify(report, null, 2)}\n`);

    printTable(rows, card.grm.present);
    console.log(
      `  all: ${metrics.episodes} episodes (${metrics.successful} ok, ${metrics.failed} failed, ${metrics.unknown_outcome} unknown), ${metrics.frames} frames | ` +
        `VOC+ ${fmt(metrics.voc_plus)}  VOC- ${fmt(metrics.voc_minus)}  stage acc ${fmt(metrics.stage_accuracy)}  MAE ${fmt(metrics.progress_mae)}  AUROC ${fmt(metrics.auroc)}` +
        (card.grm.present ? ` | GRM VOC+ ${fmt(metrics.grm_voc_plus)}  VOC- ${fmt(metrics.grm_voc_minus)}  MAE ${fmt(metrics.grm_progress_mae)}  AUROC ${fmt(metrics.grm_auroc)}` : '') +
        `\n  labels' own VOC+ (the ceiling when progress goes back) ${fmt(metrics.label_voc_plus)}; on the ${metrics.monotone_episodes} episodes whose labels never go back: VOC+ ${fmt(metrics.voc_plus_monotone)}  VOC- ${fmt(metrics.voc_minus_monotone)}`,
    );
    console.log(`  wrote ${join(out, 'metrics.json')}${f.plots ? ` and ${plots.length} plots in ${join(out, 'plots')}` : ''}`);
    console.log(JSON.stringify(metrics));
  } finally {
    await model.close();
  }
}
