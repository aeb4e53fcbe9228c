// `stageward rabc`: RA-BC data filtering (runRabc in offline/rabc/run.ts). Reads per-frame progress
// scores of a LeRobot v3.0 dataset (`sarm_progress.parquet`, as `stageward score` writes it), computes
// each sample's progress delta over the policy's action chunk and LeRobot's RA-BC weight (formula:
// offline/rabc/weights.ts), and writes, atomically:
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

import { Command, InvalidArgumentError } from 'commander';
import { HISTOGRAM_FILE, PROGRESS_COLUMNS, PROGRESS_FILE, STATS_FILE, type ProgressColumn } from '../../offline/rabc/files.ts';
import { summaryLines } from '../../offline/rabc/report.ts';
import { DEFAULT_PROGRESS_COLUMN, runRabc } from '../../offline/rabc/run.ts';
import { DEFAULT_KAPPA } from '../../offline/rabc/weights.ts';
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
    .option(
      '--progress <file>',
      `progress parquet with index, episode_index, frame_index and the --column (default: <dataset>/${PROGRESS_FILE})`,
    )
    .option(
      '--column <name>',
      `which progress to use: ${PROGRESS_COLUMNS.join(' or ')}`,
      choiceOption(PROGRESS_COLUMNS),
      DEFAULT_PROGRESS_COLUMN,
    )
    .option('--kappa <delta>', 'deltas above this get full weight (>= 0)', numberArg, DEFAULT_KAPPA)
    .option('--out <dir>', 'folder for the stats and the histogram (default: rabc-<dataset name> in the current folder)')
    .option('--no-plot', 'skip the histogram PNG')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  stageward rabc --dataset pp-demo --chunk 10',
        '  stageward rabc --dataset pp-demo --chunk 50 --kappa 0.02 --column progress_dense --out rabc-pp',
        '  stageward rabc --dataset their-data --progress scores/their-data.parquet --chunk 30',
        '',
        'A training script reads <dataset>/rabc_weights.parquet (index, episode_index, frame_index, delta, weight)',
        'and weights its loss per batch as sum(w * loss) / (sum(w) + 1e-6); in TypeScript, rabcWeights() and',
        'weightedLoss() from offline/rabc/weights.ts do the same in memory. The last stdout line is the stats as JSON.',
      ].join('\n'),
    )
    .action(async (f: RabcFlags) => rabc(f));
}

async function rabc(f: RabcFlags): Promise<void> {
  const run = await runRabc(
    {
      dataset: f.dataset,
      chunk: f.chunk,
      kappa: f.kappa,
      column: f.column,
      plot: f.plot,
      ...(f.progress !== undefined ? { progress: f.progress } : {}),
      ...(f.out !== undefined ? { out: f.out } : {}),
    },
    {
      onSetup: (s) =>
        console.log(
          `stageward rabc: ${s.root} (${s.episodes} episodes), ${s.column} from ${s.progressPath}, chunk ${s.chunk} frames, kappa ${s.kappa} -> ${s.out}`,
        ),
    },
  );
  const { result, list, aligned, stats, files } = run;
  for (const line of summaryLines(result.stats, list.filtered_episodes, aligned.episodes.length)) console.log(line);
  if (aligned.unscoredEpisodes.length > 0)
    console.log(`  episodes without any score (weight 1 throughout): ${aligned.unscoredEpisodes.join(', ')}`);
  console.log(`  wrote ${files.weights}, ${files.filtered}, ${files.stats}${files.histogram !== null ? ` and ${files.histogram}` : ''}`);
  console.log(JSON.stringify(stats));
}
