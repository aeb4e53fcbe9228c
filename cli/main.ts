// The `stageward` command line: one verb per file under cli/commands; each turns flags into options,
// calls library code and prints.
//
//   stageward demo            run the engine over one simulated expert episode, in-process
//   stageward start           the server plus a simulated robot streaming to it (npm start)
//   stageward serve           the reward server (WebSocket + HTTP)
//   stageward sim record      record expert demonstrations as a LeRobot v3.0 dataset
//   stageward sim train-bc    (RA-)weighted behaviour cloning of a state policy; sim eval-policy: its success rate
//   stageward dataset export  training bundle for the PyTorch trainer
//   stageward annotate        SARM subtask annotations for a LeRobot dataset from a hand-written keyframe file
//   stageward train           train a reward model from LeRobot datasets or training bundles (PyTorch) and export it
//   stageward distill         a cheaper image encoder trained to give a package's features (PyTorch); heads kept
//   stageward eval            VOC+/VOC-, stage accuracy, progress MAE, AUROC on held-out datasets
//   stageward score           per-frame progress and rewards for videos or a LeRobot dataset (+ sarm_progress.parquet)
//   stageward rabc            RA-BC weights and filtered samples from a dataset's progress scores
//   stageward rl              online RL (PoWER-style) in the simulator on sparse / progress / pbrs / pbrs-true rewards; learning curves
//   stageward bench engine    per-step latency of the engine against PyTorch eager

import { Command, CommanderError } from 'commander';
import { isStagewardError } from '../core/errors.ts';
import { modelCommand } from './commands/model.ts';
import { benchCommand } from './commands/bench.ts';
import { datasetCommand } from './commands/dataset.ts';
import { annotateCommand } from './commands/annotate.ts';
import { demoCommand } from './commands/demo.ts';
import { evalCommand } from './commands/eval.ts';
import { rabcCommand } from './commands/rabc.ts';
import { rlCommand } from './commands/rl.ts';
import { scoreCommand } from './commands/score.ts';
import { serveCommand } from './commands/serve.ts';
import { startCommand } from './commands/start.ts';
import { evalPolicyCommand, trainBcCommand } from './commands/policy.ts';
import { simCommand } from './commands/sim.ts';
import { trainCommand } from './commands/train.ts';
import { distillCommand } from './commands/distill.ts';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('stageward')
    .description('stageward: learned, stage-aware, policy-invariant rewards for robot learning')
    .exitOverride()
    .showHelpAfterError();
  program.addCommand(demoCommand());
  program.addCommand(serveCommand());
  program.addCommand(startCommand());
  program.addCommand(simCommand().addCommand(trainBcCommand()).addCommand(evalPolicyCommand()));
  program.addCommand(datasetCommand());
  program.addCommand(annotateCommand());
  program.addCommand(trainCommand());
  program.addCommand(distillCommand());
  program.addCommand(evalCommand());
  program.addCommand(scoreCommand());
  program.addCommand(rabcCommand());
  program.addCommand(rlCommand());
  program.addCommand(modelCommand());
  program.addCommand(benchCommand());
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (isStagewardError(err)) {
      console.error(`stageward: ${err.code}: ${err.message}`);
      return 2;
    }
    console.error(`stageward: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
