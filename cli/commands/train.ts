// `stageward train`: train a reward model with the PyTorch trainer (models/train, `python3 -m
// stageward_train.train`) and export it as a model package: from LeRobot datasets directly (the views,
// tasks, stages, priors and fps come from the datasets; bundles are cached, offline/train/), or from
// training bundles made by `stageward dataset export`.
//
//   stageward train --dataset my-robot-data --out models/my_robot
//   stageward train --dataset d1 --dataset d2 --views top=observation.images.top,wrist=observation.images.wrist --out m
//   stageward train --dataset new-data --from models/zoo/pick_place --time-budget-min 10 --out m2
//   stageward train --bundle pp-train-mixed --bundle pp-train-expert --out models/zoo/pick_place
//   stageward train --bundle pp --out pp-model --task pick_place --seed 1 --time-budget-min 10 --eval-bundle pp-heldout-rand
//   stageward train --bundle pp --out pp-model --resume models/train/runs/pp-model/last.pt
//
// Paths are resolved against the current directory before the trainer (which runs in models/train)
// sees them. The trainer prints a progress line per epoch; a failure exits non-zero with its message.

import { SingleBar, Presets } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { basename, join, resolve } from 'node:path';
import { TRAINER_DIR, runTrainer } from '../../models/python.ts';
import { prepareDatasetTraining, type BundleEvent } from '../../offline/train/run.ts';
import { parseViewChoices, type ViewChoice } from '../../offline/train/plan.ts';
import { choiceOption, intOption, numberOption, repeatOption } from '../options.ts';

export interface TrainFlags {
  bundle?: string[];
  dataset?: string[];
  views?: ViewChoice[];
  cacheDir?: string;
  strideS?: number;
  from?: string;
  provenance?: string;
  backbone?: string;
  backboneWeights?: string;
  progress?: boolean;
  out: string;
  config?: string;
  task?: string[];
  seed?: number;
  timeBudgetMin?: number;
  resume?: string;
  epochs?: number;
  headEpochs?: number;
  heldoutFrac?: number;
  evalBundle?: string[];
  workDir?: string;
  name?: string;
  version?: string;
  keepAllTasks?: boolean;
}

/** The trainer's argv (after `python3`) for these flags, every path made absolute against `cwd`. */
export function trainerArgs(f: TrainFlags, cwd = process.cwd()): string[] {
  const abs = (p: string) => resolve(cwd, p);
  const args = ['-m', 'stageward_train.train'];
  for (const b of f.bundle ?? []) args.push('--bundle', abs(b));
  args.push('--out', abs(f.out));
  if (f.config !== undefined) args.push('--config', abs(f.config));
  for (const t of f.task ?? []) args.push('--task', t);
  if (f.seed !== undefined) args.push('--seed', String(f.seed));
  if (f.timeBudgetMin !== undefined) args.push('--time-budget-min', String(f.timeBudgetMin));
  if (f.resume !== undefined) args.push('--resume', abs(f.resume));
  if (f.epochs !== undefined) args.push('--epochs', String(f.epochs));
  if (f.headEpochs !== undefined) args.push('--head-epochs', String(f.headEpochs));
  if (f.heldoutFrac !== undefined) args.push('--heldout-frac', String(f.heldoutFrac));
  for (const b of f.evalBundle ?? []) args.push('--eval-bundle', abs(b));
  if (f.workDir !== undefined) args.push('--work-dir', abs(f.workDir));
  if (f.name !== undefined) args.push('--name', f.name);
  if (f.version !== undefined) args.push('--version', f.version);
  if (f.keepAllTasks) args.push('--keep-all-tasks');
  if (f.from !== undefined) args.push('--from', abs(f.from));
  if (f.provenance !== undefined) args.push('--provenance', abs(f.provenance));
  return args;
}

/** Frozen pretrained backbones the trainer can put in front of the encoder's trained head. */
export const BACKBONES = ['conv', 'resnet18', 'mobilenet_v3_small', 'efficientnet_b0'] as const;

/** A model name from the output folder: lower case, other characters as `_` (the card's [a-z0-9_.-]). */
export function modelNameOf(out: string): string {
  return (
    basename(resolve(out))
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '_')
      .replace(/^[_.-]+/, '') || 'model'
  );
}

function shellQuote(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** `--dataset`: plan, export or reuse the bundles, and turn the flags into the bundle run's flags. */
async function fromDatasets(f: TrainFlags, argv: readonly string[]): Promise<TrainFlags> {
  const workDir = resolve(f.workDir ?? join(TRAINER_DIR, 'runs', basename(resolve(f.out))));
  const baseConfigPath =
    f.from !== undefined ? join(resolve(f.from), 'model.json') : resolve(f.config ?? join(TRAINER_DIR, 'configs', 'default.json'));
  let bar: SingleBar | null = null;
  const onBundle = (e: BundleEvent) => {
    if (e.kind === 'cached') console.log(`train: ${e.task} from ${e.dataset}: cached bundle ${e.dir}`);
    else if (e.kind === 'export-start') {
      console.log(`train: ${e.task} from ${e.dataset}: exporting ${e.frames} frames to ${e.dir}`);
      if (f.progress !== false && process.stderr.isTTY) {
        bar = new SingleBar(
          { format: 'export |{bar}| {value}/{total} frames | ETA {eta_formatted}', clearOnComplete: true },
          Presets.shades_classic,
        );
        bar.start(e.frames, 0);
      }
    } else if (e.kind === 'export-progress') bar?.update(e.done);
    else {
      bar?.stop();
      bar = null;
    }
  };
  const architecture =
    f.backbone !== undefined && f.backbone !== 'conv'
      ? { backbone: f.backbone, ...(f.backboneWeights !== undefined ? { backbone_weights: f.backboneWeights } : {}) }
      : undefined;
  const prepared = await prepareDatasetTraining({
    datasets: f.dataset!,
    baseConfigPath,
    workDir,
    ...(f.cacheDir !== undefined ? { cacheDir: f.cacheDir } : {}),
    command: shellQuote(['stageward', ...argv]),
    ...(f.views !== undefined ? { views: f.views } : {}),
    ...(f.strideS !== undefined ? { strideSeconds: f.strideS } : {}),
    name: f.name ?? modelNameOf(f.out),
    ...(f.version !== undefined ? { version: f.version } : {}),
    ...(architecture ? { architecture } : {}),
    onBundle,
  });
  const { plan } = prepared;
  const tasks = [...new Set(prepared.tasks)];
  console.log(
    `train: ${plan.views.length} view(s) ${plan.views.map((v) => (v.name === v.camera ? v.name : `${v.name}=${v.camera}`)).join(', ')}; ` +
      `${tasks.length} task(s) ${tasks.join(', ')}; window stride ${String((plan.config.window as { stride_frames: number }).stride_frames)} frames at ${String(plan.config.fps)} fps`,
  );
  return {
    ...f,
    bundle: prepared.bundles,
    task: prepared.tasks,
    config: prepared.configPath,
    provenance: prepared.provenancePath,
    workDir,
    name: undefined,
    version: undefined,
  };
}

function viewsOption(value: string): ViewChoice[] {
  try {
    return parseViewChoices(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/^--views: /, ''));
  }
}

function backboneOption(value: string): string {
  if (!(BACKBONES as readonly string[]).includes(value)) throw new InvalidArgumentError(`use one of ${BACKBONES.join(', ')}`);
  return value;
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train a reward model (encoder, SARM and GRM heads) from LeRobot datasets or training bundles and export a model package')
    .option('--dataset <dir>', 'LeRobot dataset (v3.0 or v2.1) with SARM subtask annotations (repeat for several)', repeatOption)
    .option('--bundle <dir>', 'training bundle from `stageward dataset export`, instead of --dataset (repeat for several)', repeatOption)
    .requiredOption('--out <dir>', 'model package folder to write (replaced atomically)')
    .option(
      '--views <list>',
      'with --dataset: cameras to train on, renamed: name=observation.images.KEY,... (default: every camera, named by its key)',
      viewsOption,
    )
    .option(
      '--stride-s <s>',
      "with --dataset: seconds between the window's past frames (default: the config's, 0.5 s)",
      numberOption(0.001, 3600),
    )
    .option('--cache-dir <dir>', 'with --dataset: where exported bundles are kept and reused (default ~/.cache/stageward/bundles)')
    .option(
      '--from <package>',
      'fine-tune: start the image encoder from this model package (e.g. models/zoo/pick_place); its image size and architecture are kept',
    )
    .option(
      '--backbone <name>',
      `with --dataset: image encoder, ${BACKBONES.join(', ')} (conv: the small trained CNN, the default; the others: a frozen torchvision model before a trained projection)`,
      backboneOption,
    )
    .option(
      '--backbone-weights <kind>',
      'with --backbone: pretrained (default; read from the local torchvision cache, never downloaded) or random (for tests)',
      choiceOption(['pretrained', 'random'] as const),
    )
    .option('--no-progress', 'no progress bar while exporting bundles')
    .option(
      '--config <file>',
      'model config JSON (default: models/train/configs/default.json; with --dataset, only its image, feature size, window and architecture are used)',
    )
    .option(
      '--task <id>',
      'with --bundle: config task of the bundles, once for all or once per --bundle (default: matched by stage names)',
      repeatOption,
    )
    .option('--seed <n>', 'seed for the split, sampling and initialisation', intOption(0, 2 ** 31 - 1))
    .option('--time-budget-min <min>', 'wall-clock budget of the whole run (default 30)', numberOption(0.1, 24 * 60))
    .option('--resume <ckpt>', 'continue from a checkpoint (<work dir>/last.pt) with the same bundles and seed')
    .option('--epochs <n>', 'encoder (phase 1) epochs at most (default: fill the budget)', intOption(1, 10_000))
    .option('--head-epochs <n>', 'SARM/GRM head (phase 2) epochs at most', intOption(1, 100_000))
    .option('--heldout-frac <f>', "episodes held out per bundle for the card's metrics (default 0.15)", numberOption(0, 0.9))
    .option('--eval-bundle <dir>', 'extra bundle evaluated at the end, e.g. a randomised held-out set (repeat)', repeatOption)
    .option('--work-dir <dir>', 'checkpoints and log.jsonl (default: models/train/runs/<out name>)')
    .option('--name <name>', "model name in the card (default: the config's)")
    .option('--version <version>', "model version in the card (default: the config's)")
    .option('--keep-all-tasks', "keep the config's tasks that no bundle trains in the card")
    .action(async (flags: TrainFlags, cmd: Command) => {
      if ((flags.dataset === undefined) === (flags.bundle === undefined))
        cmd.error('error: give --dataset (LeRobot datasets) or --bundle (exported bundles), not both and not neither');
      if (flags.bundle !== undefined && (flags.views ?? flags.strideS ?? flags.cacheDir ?? flags.backbone) !== undefined)
        cmd.error('error: --views, --stride-s, --cache-dir and --backbone apply to --dataset only');
      if (flags.dataset !== undefined && flags.task !== undefined)
        cmd.error('error: --task applies to --bundle only: with --dataset the tasks come from the datasets');
      const f =
        flags.dataset !== undefined
          ? await fromDatasets(flags, (cmd.parent as unknown as { rawArgs?: string[] } | null)?.rawArgs ?? [])
          : flags;
      const { status } = runTrainer(trainerArgs(f));
      if (status !== 0) throw new Error(`the trainer exited with status ${status} (its message is above)`);
    });
}
