// `stageward train`: train a reward model from training bundles with the PyTorch trainer
// (models/train, `python3 -m stageward_train.train`) and export it as a model package.
//
//   stageward train --bundle pp-train-mixed --bundle pp-train-expert --out models/zoo/pick_place
//   stageward train --bundle pp --out pp-model --task pick_place --seed 1 --time-budget-min 10 --eval-bundle pp-heldout-rand
//   stageward train --bundle pp --out pp-model --resume models/train/runs/pp-model/last.pt
//
// Paths are resolved against the current directory before the trainer (which runs in models/train)
// sees them. The trainer prints a progress line per epoch; a failure exits non-zero with its message.

import { Command } from 'commander';
import { resolve } from 'node:path';
import { runTrainer } from '../../models/python.ts';
import { intOption, numberOption, repeatOption } from '../options.ts';

export interface TrainFlags {
  bundle: string[];
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
  for (const b of f.bundle) args.push('--bundle', abs(b));
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
  return args;
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train a reward model (encoder, SARM and GRM heads) from training bundles and export a model package')
    .requiredOption('--bundle <dir>', 'training bundle from `stageward dataset export` (repeat for several)', repeatOption)
    .requiredOption('--out <dir>', 'model package folder to write (replaced atomically)')
    .option('--config <file>', 'model config JSON (default: models/train/configs/default.json)')
    .option('--task <id>', 'config task of the bundles: once for all or once per --bundle (default: matched by stage names)', repeatOption)
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
    .action((f: TrainFlags) => {
      const { status } = runTrainer(trainerArgs(f));
      if (status !== 0) throw new Error(`the trainer exited with status ${status} (its message is above)`);
    });
}
