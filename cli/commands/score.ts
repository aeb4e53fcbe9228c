// `stageward score`: offline scoring of videos or a LeRobot v3.0 dataset with a model package, with
// the online engine's causal numbers (the same progress, stage, tau and shaped reward that
// RewardEngine.step and the server give for the same frames), computed in batches.
//
//   stageward score --model models/zoo/pick_place --task pick_place --view front=a.mp4 --view side=b.mp4 --view wrist=c.mp4 --out OUT
//   stageward score --model models/zoo/pick_place --dataset pp-demo
//   stageward score --model m --dataset their-data --view-map front=observation.images.top,wrist=observation.images.hand --episodes 0-9 --dense
//   stageward score --model m --dataset pp-demo --stride 5 --shaping delta --no-plots
//   stageward score --model m --dataset pp-demo --smoothing ema:0.3,0.05
//   stageward score --model m --dataset pp-demo --shard 2/8 --out shared/score-pp   (one of 8 cluster tasks)
//   stageward score merge --dataset pp-demo --out shared/score-pp                    (after all 8)
//
// Writes OUT/summary.json, OUT/episodes/episode-XXXX.{csv,json} (per frame: time, stage, stage name,
// tau, progress, reward, ...; see offline/score/report.ts), OUT/plots/episode-XXXX.png, and for datasets
// <dataset>/sarm_progress.parquet (LeRobot's RA-BC input, see offline/score/progress-parquet.ts): the
// run is scoreWithPackage in offline/score/from-package.ts. Prints a table per episode and the totals.
// An episode that cannot be read (a corrupt or missing video, an unknown task) is reported with its
// error code and the others are still scored; the exit status is non-zero only when nothing could be
// scored.
//
// `--shard I/N` scores shard I's share of the episodes and writes a part under
// <dataset>/sarm_progress.parts/ instead of sarm_progress.parquet and summary.json; `score merge`
// checks the N parts and writes those two files, byte-identical to one run's (offline/score/shards.ts,
// offline/score/SHARDING.md).

import { lerobotTrainFlags } from '../../offline/score/lerobot-train.ts';
import { resolve } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { PROGRESS_SOURCES, type ProgressSource, type SmoothingOption } from '../../models/engine.ts';
import { DEFAULT_EMA } from '../../models/progress.ts';
import type { ExecutionProvider } from '../../models/runtime.ts';
import { SHAPING_MODES, type ShapingMode } from '../../models/shaping.ts';
import { DEFAULT_BATCH_FRAMES, DEFAULT_ENCODE_BATCH_IMAGES } from '../../offline/score/batch-scorer.ts';
import { SCORE_DEFAULTS, assertScored, scoreWithPackage } from '../../offline/score/from-package.ts';
import { summaryTable } from '../../offline/score/report.ts';
import { mergeScoreParts, SHARD_PARTS_DIR, type ShardSpec } from '../../offline/score/shards.ts';
import { choiceOption, intOption, numberOption, providersOption, smoothingOption } from '../options.ts';
import { episodeListOption, viewMapOption } from '../options.ts';
import { INFERENCE_THREADS, type InferenceThread } from '../../models/load.ts';

interface ScoreFlags {
  model?: string;
  dataset?: string;
  view?: Record<string, string>;
  task?: string;
  out?: string;
  viewMap?: Record<string, string>;
  episodes?: number[];
  shard?: ShardSpec;
  fps?: number;
  stride: number;
  dense?: boolean;
  head: ProgressSource;
  shaping: ShapingMode;
  gamma: number;
  smoothing?: SmoothingOption;
  batchFrames: number;
  encodeBatch: number;
  provider: ExecutionProvider[];
  threads: number;
  inferenceThread: InferenceThread;
  plots: boolean;
  parquet: boolean;
  progress: boolean;
}

/** `--view front=a.mp4` (repeatable) -> {front: 'a.mp4'} */
function viewFileOption(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const m = /^([^=]+)=(.+)$/.exec(value);
  if (!m) throw new InvalidArgumentError(`"${value}" is not VIEW=FILE`);
  const view = m[1]!.trim();
  if (previous?.[view] !== undefined) throw new InvalidArgumentError(`view "${view}" is given twice`);
  return { ...(previous ?? {}), [view]: m[2]!.trim() };
}

export function scoreCommand(): Command {
  const d = SCORE_DEFAULTS;
  // --model is checked in the action, not with requiredOption: commander checks a command's required
  // options for its subcommands too, and `score merge` needs no model.
  return new Command('score')
    .description(
      'score videos or a LeRobot v3.0 or v2.1 dataset offline: per-frame progress, stage, tau and shaped reward (the online causal values, batched), CSV/JSON/plots, and sarm_progress.parquet for RA-BC',
    )
    .option('--model <dir>', 'model package folder (e.g. models/zoo/pick_place); required')
    .option('--dataset <dir>', 'a LeRobot v3.0 or v2.1 dataset folder to score (writes <dir>/sarm_progress.parquet)')
    .option(
      '--view <view=file>',
      'a video file for one model view (repeat for every view); any container/codec ffmpeg decodes; views may differ in size and frame rate',
      viewFileOption,
    )
    .option(
      '--task <task>',
      "the model card's task (default: a dataset episode's own task or recorded task id; for videos the card's only task)",
    )
    .option('--out <dir>', 'output folder (default score-<dataset name>, or score-<model name> for videos)')
    .option(
      '--view-map <pairs>',
      'dataset: model view = dataset view, e.g. front=observation.images.top (default: observation.images.<model view>)',
      viewMapOption,
    )
    .option('--episodes <list>', 'dataset: episode indices, e.g. 0-9,12', episodeListOption)
    .option(
      '--shard <I/N>',
      `dataset: score shard I (0..N-1) of N only (episodes sorted by index, every N-th from position I, taken of --episodes when given), writing <dataset>/${SHARD_PARTS_DIR}/part-I-of-N.{parquet,json} instead of sarm_progress.parquet and summary.json; then \`stageward score merge\``,
      shardOption,
    )
    .option(
      '--fps <n>',
      "videos: timeline rate; each view contributes its latest frame with pts <= t (default the model card's fps)",
      numberOption(0.001, 1000),
    )
    .option(
      '--stride <n>',
      'run the SARM head on every n-th frame and the last, interpolate the rest linearly (scored frames keep their exact values; without GRM only the frames their windows read are encoded)',
      intOption(1, 100_000),
      d.stride,
    )
    .option(
      '--dense',
      "also the GRM head's fused progress (incremental + forward-anchored) as progress_dense in the CSV and in sarm_progress.parquet; needs a model with a GRM head. Not LeRobot's dense head (a SARM head on dense subtask annotations): with head_mode=dense, LeRobot reads this GRM progress",
    )
    .option(
      '--head <head>',
      "which head gives the `progress` column and the reward: sarm, grm, or both (their mean), as the engine's `progress` option",
      choiceOption(PROGRESS_SOURCES),
      d.progress,
    )
    .option(
      '--shaping <mode>',
      `the reward column: ${SHAPING_MODES.join(', ')} (models/shaping.ts)`,
      choiceOption(SHAPING_MODES),
      d.shaping,
    )
    .option('--gamma <g>', "the learner's discount for pbrs", numberOption(0, 1), d.gamma)
    .option(
      '--smoothing <spec>',
      `causal smoothing of the progress column and the reward (models/SHAPING.md): none (the default), or ema[:ALPHA[,U0]] (default alpha ${DEFAULT_EMA.alpha}, u0 ${DEFAULT_EMA.u0}); each step weighted down by the model's uncertainty when it has one`,
      smoothingOption,
    )
    .option('--batch-frames <n>', 'time steps per batch: one SARM and one GRM call per batch', intOption(1, 4096), DEFAULT_BATCH_FRAMES)
    .option(
      '--encode-batch <images>',
      'most images per encoder call (small batches stay in cache: fastest per image on CPU)',
      intOption(1, 65536),
      DEFAULT_ENCODE_BATCH_IMAGES,
    )
    .option('--provider <list>', 'execution providers to try in order (cpu, webgpu, cuda, tensorrt)', providersOption, d.providers)
    .option('--threads <n>', 'ONNX Runtime intra-op threads (0: one per core)', intOption(0, 256), d.threads)
    .option(
      '--inference-thread <where>',
      'run the graphs on a worker thread (decoding overlaps inference) or on the main thread',
      choiceOption(INFERENCE_THREADS),
      d.inferenceThread,
    )
    .option('--no-plots', 'skip the per-episode PNG plots')
    .option('--no-parquet', 'dataset: do not write sarm_progress.parquet')
    .option('--no-progress', 'no progress bar')
    .addHelpText(
      'after',
      [
        '',
        'Causal: the value at frame t uses frames 0..t only, exactly as the online engine and server compute it.',
        'Videos are aligned on one timeline at --fps: t_k = t0 + k/fps from the latest first frame to the earliest',
        'last frame; each view contributes its latest frame with pts <= t_k.',
        'Exit status: 0 when at least one episode was scored (failures are listed with their error codes), 2 when none was.',
        '',
        'Sharded (cluster jobs; offline/score/SHARDING.md): run `score ... --shard I/N` for I = 0..N-1, anywhere and in any',
        'order, then `score merge --dataset DIR`. The share depends only on the episodes and N. Give every shard the same',
        'model and value options (stride, head, dense, shaping, gamma, smoothing, task, view map), or merge refuses the',
        'parts; batch sizes, threads and providers may differ. A shard with no episodes (N above their count) writes an',
        'empty part and exits 0; one whose every episode failed still writes its part and exits 2.',
      ].join('\n'),
    )
    .addCommand(mergeCommand())
    .action(async (f: ScoreFlags, cmd: Command) => {
      if (f.model === undefined) cmd.error("error: required option '--model <dir>' not specified");
      await runScore({ ...f, model: f.model });
    });
}

/** `--shard 3/8` -> {index: 3, count: 8} */
export function shardOption(value: string): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError(`"${value}" is not I/N (e.g. 0/4: the first of 4 shards)`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1) throw new InvalidArgumentError(`"${value}": N must be at least 1`);
  if (count > 1_000_000) throw new InvalidArgumentError(`"${value}": N must be at most 1000000`);
  if (index >= count) throw new InvalidArgumentError(`"${value}": I must be in 0..${count - 1} (shards are numbered from 0)`);
  return { index, count };
}

interface MergeFlags {
  dataset?: string;
  out?: string;
  clean?: boolean;
  progress: boolean;
}

function mergeCommand(): Command {
  return new Command('merge')
    .description(
      `merge the parts of a sharded run (\`stageward score --shard I/N\`, in <dataset>/${SHARD_PARTS_DIR}/) into <dataset>/sarm_progress.parquet and OUT/summary.json, byte-identical to one run's`,
    )
    .option('--dataset <dir>', 'the dataset the shards scored; required')
    .option('--out <dir>', 'folder for summary.json (default score-<dataset name>, as the shards)')
    .option('--clean', `remove the merged parts (and ${SHARD_PARTS_DIR}/ once empty) after writing`)
    .option('--no-progress', 'no progress bar')
    .addHelpText(
      'after',
      [
        '',
        'Refuses, writing nothing: a missing shard (SW_ERR_SHARD_MISSING, naming each missing I), two parts for one I or',
        'overlapping episodes (SW_ERR_SHARD_DUPLICATE), and a part made from another dataset or with another N, model',
        'or value-changing option (SW_ERR_SHARD_FOREIGN). Episodes not in the run keep the values sarm_progress.parquet',
        'had, as with one run.',
        'Exit status: 0 when at least one episode was scored, 2 when none was or the parts were refused.',
      ].join('\n'),
    )
    .action(async (own: MergeFlags, cmd: Command) => {
      // The root command parses every option it and `score` know before it dispatches, so `--dataset`,
      // `--out` and `--no-progress` written after `merge` land in `score`'s values: take them from there,
      // and refuse the scoring options that would otherwise be dropped without a word.
      const parent = cmd.parent!;
      const shared = ['dataset', 'out', 'progress'];
      const stray = parent.options.filter(
        (o) => !shared.includes(o.attributeName()) && parent.getOptionValueSource(o.attributeName()) === 'cli',
      );
      if (stray.length > 0)
        cmd.error(`error: score merge takes --dataset, --out, --clean and --no-progress, not ${stray.map((o) => o.long).join(', ')}`);
      const up = parent.opts<ScoreFlags>();
      const dataset = own.dataset ?? up.dataset;
      if (dataset === undefined) cmd.error("error: required option '--dataset <dir>' not specified");
      const out = own.out ?? up.out;
      await runMerge({ dataset, ...(out !== undefined ? { out } : {}), clean: own.clean ?? false, progress: own.progress && up.progress });
    });
}

async function runScore(f: ScoreFlags & { model: string }): Promise<void> {
  const bar = f.progress
    ? new SingleBar(
        { format: 'scoring {bar} {percentage}% | {value}/{total} frames | {episode} | ETA {eta_formatted}', etaBuffer: 500 },
        Presets.shades_classic,
      )
    : undefined;
  let frames = 0;
  let planned = 0;
  let done = 0;
  let dataset = false;
  const result = await scoreWithPackage(
    {
      model: f.model,
      providers: f.provider,
      threads: f.threads,
      inferenceThread: f.inferenceThread,
      stride: f.stride,
      batchFrames: f.batchFrames,
      encodeBatchImages: f.encodeBatch,
      progress: f.head,
      dense: f.dense ?? false,
      shaping: f.shaping,
      gamma: f.gamma,
      ...(f.smoothing ? { smoothing: f.smoothing } : {}),
      plots: f.plots,
      parquet: f.parquet,
      ...(f.dataset !== undefined ? { dataset: f.dataset } : {}),
      ...(f.view !== undefined ? { views: f.view } : {}),
      ...(f.out !== undefined ? { out: f.out } : {}),
      ...(f.task !== undefined ? { task: f.task } : {}),
      ...(f.viewMap ? { viewMap: f.viewMap } : {}),
      ...(f.episodes ? { episodes: f.episodes } : {}),
      ...(f.shard ? { shard: f.shard } : {}),
      ...(f.fps !== undefined ? { fps: f.fps } : {}),
    },
    {
      onWarning: (message) => console.warn(`stageward score: ${message}`),
      onSetup: (s) => {
        dataset = s.kind === 'dataset';
        if (s.kind === 'dataset')
          console.log(
            `stageward score: model ${s.card.name} ${s.card.version} on ${s.root}${s.shard ? ` (shard ${s.shard.index}/${s.shard.count})` : ''} -> ${s.out}`,
          );
        else
          console.log(
            `stageward score: model ${s.card.name} ${s.card.version} on ${Object.entries(s.views)
              .map(([v, p]) => `${v}=${p}`)
              .join(' ')} at ${s.fps} fps -> ${s.out}`,
          );
      },
      onPlanned: (n) => {
        planned = n;
        bar?.start(n, 0, { episode: '-' });
      },
      onFrame: () => {
        frames++;
        if (frames > planned) bar?.setTotal((planned = frames)); // a video's frame count is estimated from its duration
        bar?.increment();
      },
      onSource: (r, s) => {
        if (!dataset) return;
        done += s?.plannedFrames ?? 0;
        frames = done;
        bar?.update(done, { episode: `episode ${r.episode} ${r.status === 'scored' ? 'ok' : r.code}` });
      },
      onScoringEnd: () => bar?.stop(),
    },
  );
  if (result.part) {
    const p = result.part;
    const where = `shard ${p.shard.index}/${p.shard.count}`;
    if (p.episodes === 0) console.log(`  ${where} has no episodes (there are fewer than ${p.shard.count} to share)`);
    else for (const line of summaryTable(result.reports, result.totals)) console.log(line);
    console.log(`  wrote ${p.manifest}${p.data ? ` and ${p.data} (${p.rows} rows)` : ''}`);
    console.log(
      `  when all ${p.shard.count} parts are there: stageward score merge --dataset ${f.dataset}${f.out ? ` --out ${f.out}` : ''}`,
    );
    console.log(
      JSON.stringify({ ...result.totals, out: resolve(result.out), shard: `${p.shard.index}/${p.shard.count}`, part_file: p.manifest }),
    );
    if (p.episodes > 0) assertScored(result);
    return;
  }
  for (const line of summaryTable(result.reports, result.totals)) console.log(line);
  if (result.parquet) {
    console.log(
      `  wrote ${result.parquet.path} (${result.parquet.rows} rows${result.parquet.keptEpisodes ? `, kept the previous values of ${result.parquet.keptEpisodes} episode(s) not scored now` : ''})`,
    );
    printLerobotHint(result.parquet.path, f.dense === true);
  }
  console.log(`  wrote ${resolve(result.out, 'summary.json')}${result.html ? ` and ${result.html}` : ''}`);
  console.log(JSON.stringify({ ...result.totals, out: resolve(result.out), progress_file: result.parquet?.path ?? null }));
  assertScored(result);
}

async function runMerge(f: MergeFlags & { dataset: string }): Promise<void> {
  const bar = f.progress ? new SingleBar({ format: 'reading parts {bar} {value}/{total} | {part}' }, Presets.shades_classic) : undefined;
  let result;
  try {
    result = await mergeScoreParts(
      { dataset: f.dataset, ...(f.out !== undefined ? { out: f.out } : {}), clean: f.clean ?? false },
      {
        onWarning: (message) => console.warn(`stageward score merge: ${message}`),
        onPlanned: (n) => bar?.start(n, 0, { part: '-' }),
        onPart: (file) => bar?.increment({ part: file }),
      },
    );
  } finally {
    bar?.stop();
  }
  console.log(`stageward score merge: ${result.parts.length} of ${result.shards} part(s) of ${resolve(f.dataset)}`);
  for (const line of summaryTable(result.reports, result.totals)) console.log(line);
  if (result.parquet) {
    console.log(
      `  wrote ${result.parquet.path} (${result.parquet.rows} rows${result.parquet.keptEpisodes ? `, kept the previous values of ${result.parquet.keptEpisodes} episode(s) not scored now` : ''})`,
    );
    printLerobotHint(result.parquet.path, false);
  }
  console.log(`  wrote ${resolve(result.out, 'summary.json')}${f.clean ? `; removed the parts` : ''}`);
  console.log(
    JSON.stringify({ ...result.totals, out: resolve(result.out), progress_file: result.parquet?.path ?? null, shards: result.shards }),
  );
  assertScored(result);
}

/** How to train with these values in LeRobot (offline/score/lerobot-train.ts says what each head means here). */
function printLerobotHint(progressFile: string, dense: boolean): void {
  console.log(`  RA-BC in LeRobot: lerobot-train <your flags> ${lerobotTrainFlags(progressFile).join(' ')}`);
  if (dense)
    console.log(
      '    (--sample_weighting.head_mode=dense reads progress_dense: here the GRM head, not a SARM head trained on dense subtask annotations)',
    );
}
