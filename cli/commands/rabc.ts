// `stageward rabc`: RA-BC data filtering. Reads per-frame progress scores of a LeRobot v3.0 dataset
// (`sarm_progress.parquet`, as `stageward score` writes it), computes each sample's progress delta
// over the policy's action chunk and LeRobot's RA-BC weight (formula: sim/rabc/weights.ts), and
// writes, atomically:
//   <dataset>/rabc_weights.parquet   index, episode_index, frame_index, delta, weight
//   <dataset>/rabc_filtered.json     kept / dropped frames per episode as index ranges, mean weight
//                                    per episode, the episodes filtered out entirely
//   <out>/rabc_stats.json            mean weight, shares, delta mean/std, mu, sigma, kappa, chunk, counts
//   <out>/rabc_weights_hist.png      histograms of the weights and of the deltas
// Prints a summary; the last stdout line is the stats as one JSON object.
//
//   stageward rabc --dataset pp-demo --chunk 10
//   stageward rabc --dataset pp-demo --chunk 50 --kappa 0.02 --column progress_dense --out rabc-pp
//   stageward rabc --dataset their-data --progress scores/their-data.parquet --chunk 30 --out rabc-their

import { basename, join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { LeRobotDataset } from '../../datasets/reader.ts';
import {
  FILTERED_FILE, HISTOGRAM_FILE, PROGRESS_COLUMNS, PROGRESS_FILE, readProgress, STATS_FILE, WEIGHTS_FILE, writeFilteredList,
  writeHistogram, writeJson, writeRabcWeights, type ProgressColumn,
} from '../../offline/rabc/files.ts';
import { filteredList, summaryLines } from '../../offline/rabc/report.ts';
import { DEFAULT_KAPPA, rabcWeights, resolveRabcOptions } from '../../offline/rabc/weights.ts';
import { choiceOption } from '../options.ts';

interface RabcFlags {
  dataset: string;
  progress?: string;
  chunk: number;
  kappa: number;
  column: ProgressColumn;
  out?: string;
  plot: boolean;
}

/** Any number; the range is checked by resolveRabcOptions, which raises SW_ERR_RABC_OPTION. */
function numberArg(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || Number.isNaN(n)) throw new InvalidArgumentError('must be a number');
  return n;
}

export function rabcCommand(): Command {
  return new Command('rabc')
    .description(
      'RA-BC data filtering: weight each sample of a LeRobot dataset by the progress it makes over the action chunk ' +
        '(r = Phi(t+H) - Phi(t); weight 1 above kappa, 0 below 0, a soft weight from the dataset-wide mean and std in between; ' +
        'frames without a score get 1). Writes rabc_weights.parquet and rabc_filtered.json beside the dataset, and ' +
        `${STATS_FILE} and ${HISTOGRAM_FILE} into --out`,
    )
    .requiredOption('--dataset <dir>', 'LeRobot v3.0 dataset folder (the weights and filtered list are written into it)')
    .requiredOption('--chunk <frames>', "the policy's action-chunk length H in frames (an integer >= 1)", numberArg)
    .option('--progress <file>', `progress parquet with index, episode_index, frame_index and the --column (default: <dataset>/${PROGRESS_FILE})`)
    .option('--column <name>', `which progress to use: ${PROGRESS_COLUMNS.join(' or ')}`, choiceOption(PROGRESS_COLUMNS), 'progress_sparse')
    .option('--kappa <delta>', 'deltas above this get full weight (>= 0)', numberArg, DEFAULT_KAPPA)
    .option('--out <dir>', 'folder for the stats and the histogram (default: rabc-<dataset name> in the current folder)')
    .option('--no-plot', 'skip the histogram PNG')
    .addHelpText('after', [
      '',
      'Examples:',
      '  stageward rabc --dataset pp-demo --chunk 10',
      '  stageward rabc --dataset pp-demo --chunk 50 --kappa 0.02 --column progress_dense --out rabc-pp',
      '  stageward rabc --dataset their-data --progress scores/their-data.parquet --chunk 30',
      '',
      'A training script reads <dataset>/rabc_weights.parquet (index, episode_index, frame_index, delta, weight)',
      'and weights its loss per batch as sum(w * loss) / (sum(w) + 1e-6); in TypeScript, rabcWeights() and',
      'weightedLoss() from sim/rabc/weights.ts do the same in memory. The last stdout line is the stats as JSON.',
    ].join('\n'))
    .action(async (f: RabcFlags) => runRabc(f));
}

async function runRabc(f: RabcFlags): Promise<void> {
  const options = resolveRabcOptions({ chunk: f.chunk, kappa: f.kappa }); // fail before reading anything
  const ds = await LeRobotDataset.open(f.dataset);
  const progressPath = resolve(f.progress ?? join(ds.root, PROGRESS_FILE));
  const out = resolve(f.out ?? `rabc-${basename(ds.root)}`);
  console.log(`stageward rabc: ${ds.root} (${ds.episodes.length} episodes), ${f.column} from ${progressPath}, chunk ${options.chunk} frames, kappa ${options.kappa} -> ${out}`);

  const extents = ds.episodes.map((e) => ({ index: e.index, datasetFrom: e.datasetFrom, length: e.length }));
  const aligned = await readProgress(progressPath, extents, f.column);
  const result = rabcWeights(aligned.progress, options);
  const list = filteredList(result, aligned.episodes, { progressFile: progressPath, column: f.column });

  const weightsPath = join(ds.root, WEIGHTS_FILE);
  const filteredPath = join(ds.root, FILTERED_FILE);
  await writeRabcWeights(weightsPath, aligned.episodes, result);
  await writeFilteredList(filteredPath, list);
  const stats = {
    ...result.stats,
    column: f.column,
    episodes: aligned.episodes.length,
    filtered_episodes: list.filtered_episodes.length,
    unscored_episodes: aligned.unscoredEpisodes.length,
    kept_samples: list.kept_samples,
    dropped_samples: list.dropped_samples,
    progress_rows: aligned.rows,
  };
  await writeJson(join(out, STATS_FILE), {
    ...stats,
    dataset: ds.root,
    progress_file: progressPath,
    files: { weights: weightsPath, filtered: filteredPath, ...(f.plot ? { histogram: join(out, HISTOGRAM_FILE) } : {}) },
    created_at: new Date().toISOString(),
  });
  if (f.plot) await writeHistogram(join(out, HISTOGRAM_FILE), { title: `RA-BC on ${basename(ds.root)} (${f.column}, chunk ${options.chunk}, kappa ${options.kappa})`, result });

  for (const line of summaryLines(result.stats, list.filtered_episodes, aligned.episodes.length)) console.log(line);
  if (aligned.unscoredEpisodes.length > 0) console.log(`  episodes without any score (weight 1 throughout): ${aligned.unscoredEpisodes.join(', ')}`);
  console.log(`  wrote ${weightsPath}, ${filteredPath}, ${join(out, STATS_FILE)}${f.plot ? ` and ${join(out, HISTOGRAM_FILE)}` : ''}`);
  console.log(JSON.stringify(stats));
}
