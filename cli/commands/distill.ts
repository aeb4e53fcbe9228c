// `stageward distill`: make a package's image encoder cheaper to run by training a smaller one to give
// the same features (the PyTorch trainer's `python3 -m stageward_train.distill`); the SARM and GRM heads
// are kept as they are, so only encoder.onnx changes. Check the rewards with `stageward eval` on
// held-out datasets before serving the result (models/zoo/rebuild.sh does both).
//
//   stageward distill --teacher models/zoo/pick_place --bundle zoo-data/bundles/pp-train-mixed --out pp-fast
//   stageward distill --teacher m --bundle b1 --bundle b2 --out m-fast --channels 16,32,64,128 --time-budget-min 10
//
// Paths are resolved against the current directory before the trainer (which runs in models/train)
// sees them. The trainer prints a progress line every 30 s; a failure exits non-zero with its message.

import { Command, InvalidArgumentError } from 'commander';
import { resolve } from 'node:path';
import { runTrainer } from '../../models/python.ts';
import { choiceOption, intOption, numberOption, repeatOption } from '../options.ts';

export interface DistillFlags {
  teacher: string;
  bundle: string[];
  out: string;
  block?: string;
  norm?: string;
  channels?: string;
  timeBudgetMin?: number;
  maxSteps?: number;
  batch?: number;
  heldoutFrac?: number;
  seed?: number;
  version?: string;
}

/** The distiller's argv (after `python3`) for these flags, every path made absolute against `cwd`. */
export function distillerArgs(f: DistillFlags, cwd = process.cwd()): string[] {
  const abs = (p: string) => resolve(cwd, p);
  const args = ['-m', 'stageward_train.distill', '--teacher', abs(f.teacher)];
  for (const b of f.bundle) args.push('--bundle', abs(b));
  args.push('--out', abs(f.out));
  if (f.block !== undefined) args.push('--block', f.block);
  if (f.norm !== undefined) args.push('--norm', f.norm);
  if (f.channels !== undefined) args.push('--channels', f.channels);
  if (f.timeBudgetMin !== undefined) args.push('--time-budget-min', String(f.timeBudgetMin));
  if (f.maxSteps !== undefined) args.push('--max-steps', String(f.maxSteps));
  if (f.batch !== undefined) args.push('--batch', String(f.batch));
  if (f.heldoutFrac !== undefined) args.push('--heldout-frac', String(f.heldoutFrac));
  if (f.seed !== undefined) args.push('--seed', String(f.seed));
  if (f.version !== undefined) args.push('--version', f.version);
  return args;
}

function channelsOption(value: string): string {
  if (!/^\d+(,\d+)*$/.test(value)) throw new InvalidArgumentError('expected comma-separated channel counts, e.g. 32,64,64,128');
  return value;
}

export function distillCommand(): Command {
  return new Command('distill')
    .description("train a cheaper image encoder that gives a package's features, keeping its SARM and GRM heads")
    .requiredOption('--teacher <package>', 'model package whose encoder is copied (e.g. models/zoo/pick_place)')
    .requiredOption('--bundle <dir>', 'training bundle from `stageward dataset export` whose frames it learns from (repeat)', repeatOption)
    .requiredOption('--out <dir>', 'model package folder to write (replaced atomically)')
    .option(
      '--block <kind>',
      'separable (default: depthwise + 1x1 convolutions, about a quarter of the CPU time) or conv',
      choiceOption(['separable', 'conv'] as const),
    )
    .option('--norm <kind>', 'none (default) or group normalisation in the student', choiceOption(['none', 'group'] as const))
    .option('--channels <list>', "the student's channels per stride-2 layer (default: the teacher's)", channelsOption)
    .option('--time-budget-min <min>', 'wall-clock budget of the whole run (default 20)', numberOption(0.1, 24 * 60))
    .option('--max-steps <n>', 'stop after this many steps (default: fill the budget)', intOption(1, 10_000_000))
    .option('--batch <n>', 'images per step (default 128)', intOption(2, 4096))
    .option('--heldout-frac <f>', 'episodes held out per bundle for the figures in the card (default 0.1)', numberOption(0.01, 0.9))
    .option('--seed <n>', 'seed for the split, sampling, augmentation and initialisation', intOption(0, 2 ** 31 - 1))
    .option('--version <version>', "the package's version (default: the teacher's + -distilled)")
    .action((flags: DistillFlags) => {
      const { status } = runTrainer(distillerArgs(flags));
      if (status !== 0) throw new Error(`the distiller exited with status ${status} (its message is above)`);
    });
}
